mod util;

#[cfg(feature = "hdf5")]
mod bad_granules;
#[cfg(feature = "hdf5")]
mod bulk;
mod cli;
#[cfg(feature = "hdf5")]
mod cloud;
mod manifest_errors;
#[cfg(feature = "hdf5")]
mod nasa;
#[cfg(feature = "hdf5")]
mod oracle;
mod orbit;
#[cfg(feature = "hdf5")]
mod pipeline;
#[cfg(all(feature = "hdf5", feature = "query"))]
mod query;
// Checks the report's numbers against `icesat2 query`.
#[cfg(all(feature = "hdf5", feature = "query"))]
mod report;
#[cfg(feature = "hdf5")]
mod servers;
mod tracks;
