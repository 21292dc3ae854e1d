//! `icesat2`: ICESat-2 ATL08 land segments from NASA granules into an
//! analysis-ready, hive-partitioned GeoParquet dataset. See ARCHITECTURE.md.

pub mod granule;
pub mod orbit;
pub mod region;
