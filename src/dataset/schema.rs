//! The names of the columns every output has, as the rooms that write and
//! read a dataset share them; requested variables are named by the
//! manifest (`granule::columns`).

/// The granule's file name.
pub const GRANULE: &str = "granule";
/// The beam group (`gt1l` ... `gt3r`); also a partition key.
pub const BEAM: &str = "beam";
/// `strong`, `weak` or `unknown`.
pub const BEAM_STRENGTH: &str = "beam_strength";
pub const SPOT: &str = "spot";
/// Reference ground track; also a partition key.
pub const RGT: &str = "rgt";
/// Also a partition key.
pub const CYCLE: &str = "cycle";
/// Granule region, 1-14.
pub const REGION: &str = "region";
/// The land segment's row in its beam.
pub const SEGMENT_INDEX: &str = "segment_index";
/// The 20 m sub-segment of the land segment, 0-4 (`resolution: 20m` only).
pub const SUBSEGMENT: &str = "subsegment";
/// UTC, microseconds; `year` and `month` partitions come from it.
pub const TIME: &str = "time";
pub const LATITUDE: &str = "latitude";
pub const LONGITUDE: &str = "longitude";
/// The WKB point column.
pub const GEOMETRY: &str = "geometry";
/// The GeoParquet bbox covering column.
pub const BBOX: &str = "bbox";

/// The derived columns every output has, in order, before the requested
/// variables.
pub const DERIVED: [&str; 11] = [
    GRANULE,
    BEAM,
    BEAM_STRENGTH,
    SPOT,
    RGT,
    CYCLE,
    REGION,
    SEGMENT_INDEX,
    TIME,
    LATITUDE,
    LONGITUDE,
];
