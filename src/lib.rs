//! `icesat2`: ICESat-2 ATL08 land segments from NASA granules into an
//! analysis-ready, hive-partitioned GeoParquet dataset. See ARCHITECTURE.md.

// Row runs are slices of ranges; a one-run read is written `&[0..n]`.
#![allow(clippy::single_range_in_vec_init)]
// The public API is what the modules export, and its docs link only to
// items that exist (as object_store has them).
#![warn(unreachable_pub, rustdoc::broken_intra_doc_links)]

pub mod atomic;
pub mod catalog;
pub mod cli;
pub mod dataset;
pub mod filter;
pub mod granule;
pub mod killpoint;
pub mod manifest;
pub mod orbit;
pub mod pipeline;
pub mod plan;
#[cfg(feature = "query")]
pub mod query;
pub mod region;
pub mod report;
pub mod sink;
pub mod store;
#[cfg(feature = "hdf5")]
pub mod synth;
