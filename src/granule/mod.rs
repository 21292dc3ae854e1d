//! HDF5 -> Arrow for one granule: beams, variables, fills. No async and no
//! I/O policy: it reads through the `Hdf5Source` it is given.
//!
//! Per beam: read latitude/longitude, keep the segments inside the region,
//! then read time (and night_flag) for the kept row runs only, cut by the
//! time window and filters, and read every requested variable only for the
//! final runs (the notebook's contiguous-run trick). Photon variables are
//! gathered per segment through `ph_ndx_beg`/`n_seg_ph`, verified against
//! `ph_segment_id`.

mod beam;
pub mod columns;
pub mod h5;
mod inflate;
#[cfg(feature = "hdf5")]
pub mod libhdf5;
mod meta;
pub mod name;
mod photons;
pub mod reader;
pub mod variables;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};

pub use beam::{BeamCount, Extracted, extract};
pub use columns::{OutputVariable, output_schema};
pub use h5::{DatasetInfo, Dtype, FirstData, Hdf5Source, Node, PlannedRead, Values};
pub use meta::{BeamInfo, GranuleMeta, Strength, beams, granule_meta};
pub use name::GranuleName;

use crate::region::Region;
use variables::Level;

/// Why one granule could not be read. The run records it and goes on.
#[derive(Debug, thiserror::Error)]
pub enum GranuleError {
    #[error("not a readable HDF5 file: {0}")]
    NotHdf5(String),
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The six beam groups, in output order.
pub const BEAMS: [&str; 6] = ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"];

/// Seconds from the Unix epoch to the ATLAS SDP epoch, 2018-01-01T00:00:00Z.
pub const ATLAS_EPOCH_UNIX_S: i64 = 1_514_764_800;

/// Microseconds since the Unix epoch of a `delta_time` (seconds since the
/// ATLAS SDP epoch), rounded to the nearest microsecond (ties away from
/// zero). The whole seconds are split off first so the fraction is scaled
/// without the rounding error of scaling ~1e8 s by 1e6.
pub fn unix_micros(delta_time: f64) -> i64 {
    let whole = delta_time.floor();
    let fraction = delta_time - whole;
    (ATLAS_EPOCH_UNIX_S + whole as i64) * 1_000_000 + (fraction * 1e6).round() as i64
}

/// Which beams to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeamSelection {
    All,
    Strong,
    Weak,
    Named(Vec<String>),
}

impl BeamSelection {
    fn keeps(&self, beam: &BeamInfo) -> bool {
        match self {
            BeamSelection::All => true,
            BeamSelection::Strong => beam.strength == Strength::Strong,
            BeamSelection::Weak => beam.strength == Strength::Weak,
            BeamSelection::Named(names) => names.iter().any(|name| name == beam.name),
        }
    }

    /// Whether the beam named `name` may be kept, before its strength is known.
    fn may_keep(&self, name: &str) -> bool {
        match self {
            BeamSelection::Named(names) => names.iter().any(|candidate| candidate == name),
            _ => true,
        }
    }

    /// Whether the beam named `name` may be kept by strength, as far as its
    /// group's attribute tells before any data is read (without it, the
    /// strength comes from `sc_orient`, read later: then it may).
    fn may_keep_strength(&self, source: &dyn Hdf5Source, name: &str) -> bool {
        let wanted = match self {
            BeamSelection::Strong => Strength::Strong,
            BeamSelection::Weak => Strength::Weak,
            _ => return true,
        };
        match meta::attribute_strength(source, name) {
            Ok(Some(strength)) => strength == wanted,
            _ => true,
        }
    }
}

/// An inclusive time window, microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub start_us: i64,
    pub end_us: i64,
}

impl TimeWindow {
    pub fn contains(&self, time_us: i64) -> bool {
        self.start_us <= time_us && time_us <= self.end_us
    }

    /// Whether `[start, end]` meets the window.
    pub fn meets(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start.timestamp_micros() <= self.end_us && end.timestamp_micros() >= self.start_us
    }
}

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// One row per 100 m land segment.
    #[default]
    Segment,
    /// One row per 20 m sub-segment with a position (`latitude_20m`,
    /// `longitude_20m`): the region test uses that point.
    Subsegment,
}

/// What to extract from every granule of a run.
#[derive(Debug, Clone)]
pub struct Request {
    pub variables: Vec<OutputVariable>,
    pub beams: BeamSelection,
    pub night_only: bool,
    /// Scalar output columns whose fill (null) drops the row.
    pub drop_fill: Vec<String>,
    pub time_window: Option<TimeWindow>,
    /// Rows whose time lies here are dropped: what an earlier run over a
    /// narrower window already wrote of this granule (a dataset that grows).
    pub except_window: Option<TimeWindow>,
    /// `filters.where`: rows it does not keep are dropped.
    pub row_filter: Option<RowFilter>,
    pub region: Arc<Region>,
    pub resolution: Resolution,
    /// The output columns.
    pub schema: SchemaRef,
}

impl Request {
    /// Every variable read: the output columns', then those only the row
    /// filter reads.
    pub fn read_variables(&self) -> impl Iterator<Item = &OutputVariable> {
        let hidden = self.row_filter.iter().flat_map(|filter| &filter.hidden);
        self.variables.iter().chain(hidden)
    }
}

/// Decides which rows of a batch are kept. Implemented outside the granule
/// room (`filter`, with DataFusion), so decoding does not depend on a query
/// engine.
pub trait RowPredicate: Send + Sync {
    /// One flag per row of `batch` (laid out as `RowFilter::schema`);
    /// a null flag does not keep its row.
    fn keep(&self, batch: &arrow::array::RecordBatch)
    -> Result<arrow::array::BooleanArray, String>;
}

/// A row filter and what it reads.
#[derive(Clone)]
pub struct RowFilter {
    /// The expression as the manifest gives it, for messages.
    pub text: String,
    /// Variables the filter names that are not output columns: read for
    /// it, never written.
    pub hidden: Vec<OutputVariable>,
    /// The batch the predicate sees: the output columns, then `hidden`.
    pub schema: SchemaRef,
    pub predicate: Arc<dyn RowPredicate>,
}

impl std::fmt::Debug for RowFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowFilter")
            .field("text", &self.text)
            .field("hidden", &self.hidden)
            .finish_non_exhaustive()
    }
}

/// Granule-level datasets `granule_meta` reads.
const META_PATHS: [&str; 6] = [
    "/orbit_info/rgt",
    "/orbit_info/cycle_number",
    "/orbit_info/sc_orient",
    "/ancillary_data/start_region",
    "/ancillary_data/data_start_utc",
    "/ancillary_data/data_end_utc",
];

/// The datasets of a beam's positions at `resolution`, under `land_segments`.
pub fn position_names(resolution: Resolution) -> [&'static str; 2] {
    match resolution {
        Resolution::Segment => ["latitude", "longitude"],
        Resolution::Subsegment => ["latitude_20m", "longitude_20m"],
    }
}

/// Every dataset `granule_meta` and `extract` may read for `request`, in
/// every beam: known before any row is read, so the metadata of all of them
/// can be walked at once (`Hdf5Source::preload`).
pub fn request_paths(request: &Request) -> Vec<String> {
    let mut paths: Vec<String> = META_PATHS.iter().map(|path| path.to_string()).collect();
    let [latitude, longitude] = position_names(request.resolution);
    let positions = [
        format!("land_segments/{latitude}"),
        format!("land_segments/{longitude}"),
    ];
    let mut relative: Vec<&str> = positions.iter().map(String::as_str).collect();
    relative.push("land_segments/delta_time");
    if request.night_only {
        relative.push("land_segments/night_flag");
    }
    relative.extend(request.read_variables().map(|v| v.spec.path));
    if request
        .read_variables()
        .any(|v| v.spec.level == Level::Photon)
    {
        relative.extend([
            "land_segments/segment_id_beg",
            "land_segments/segment_id_end",
            "land_segments/ph_ndx_beg",
            "land_segments/n_seg_ph",
            "signal_photons/ph_segment_id",
        ]);
    }
    for beam in BEAMS {
        if request.beams.may_keep(beam) {
            paths.extend(relative.iter().map(|path| format!("/{beam}/{path}")));
        }
    }
    paths
}

/// Walks ahead the metadata of every dataset the request may read
/// (`request_paths`), all at once, and fetches the data every request
/// starts with as soon as its chunks are known: the granule's facts
/// (`granule_meta`) and the positions of the beams it may keep (the first
/// step of `extract`), so that fetch overlaps the rest of the walk.
pub fn preload(source: &dyn Hdf5Source, request: &Request) {
    let mut paths: Vec<String> = META_PATHS.iter().map(|path| path.to_string()).collect();
    let positions = position_names(request.resolution);
    for beam in BEAMS.iter().filter(|beam| request.beams.may_keep(beam)) {
        for position in positions {
            paths.push(format!("/{beam}/land_segments/{position}"));
        }
    }
    let keep = |path: &str| match path.trim_start_matches('/').split_once('/') {
        Some((beam, rest)) if rest.starts_with("land_segments/") => {
            request.beams.may_keep_strength(source, beam)
        }
        _ => true,
    };
    source.preload(&request_paths(request), &FirstData { paths, keep: &keep });
}
