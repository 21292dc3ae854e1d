//! HDF5 -> Arrow for one granule: beams, variables, fills. No async and no
//! I/O policy: it reads through the `Hdf5Source` it is given.
//!
//! Per beam: read latitude/longitude, keep the segments inside the region,
//! then read time (and night_flag) for the kept row runs only, cut by the
//! time window and filters, and read every requested variable only for the
//! final runs (the notebook's contiguous-run trick). Photon variables are
//! gathered per segment through `ph_ndx_beg`/`n_seg_ph`, verified against
//! `ph_segment_id`.

pub mod columns;
pub mod h5;
#[cfg(feature = "hdf5")]
pub mod libhdf5;
pub mod name;
pub mod reader;
pub mod variables;

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, NaiveDateTime, Utc};

pub use columns::{OutputVariable, output_schema};
pub use h5::{DatasetInfo, Dtype, Hdf5Source, Node, Values};
pub use name::GranuleName;

use crate::region::Region;
use crate::values_of_dtype;
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

/// What to extract from every granule of a run.
#[derive(Debug, Clone)]
pub struct Request {
    pub variables: Vec<OutputVariable>,
    pub beams: BeamSelection,
    pub night_only: bool,
    /// Scalar output columns whose fill (null) drops the row.
    pub drop_fill: Vec<String>,
    pub time_window: Option<TimeWindow>,
    pub region: Arc<Region>,
    pub schema: SchemaRef,
}

/// Strong or weak, from the beam group's attributes or `sc_orient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Strong,
    Weak,
    Unknown,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Strong => "strong",
            Strength::Weak => "weak",
            Strength::Unknown => "unknown",
        }
    }
}

/// A beam group's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeamInfo {
    pub name: &'static str,
    pub strength: Strength,
    pub spot: Option<u8>,
}

/// Granule-level facts: from orbit_info and ancillary_data, else the file name.
#[derive(Debug, Clone, PartialEq)]
pub struct GranuleMeta {
    pub rgt: u16,
    pub cycle: u8,
    /// Granule region 1-14; 0 when neither the name nor the file tells.
    pub region: u8,
    pub sc_orient: Option<i64>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Counts for one beam of one granule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BeamCount {
    pub beam: String,
    pub strength: String,
    /// Land segments in the beam.
    pub segments: u64,
    /// Segments written.
    pub kept: u64,
}

/// The rows one granule contributes, with what was seen on the way.
#[derive(Debug)]
pub struct Extracted {
    pub batch: RecordBatch,
    pub meta: GranuleMeta,
    pub beams: Vec<BeamCount>,
    pub warnings: Vec<String>,
}

/// Reads granule-level facts. `file_name` is the granule's file name as stored.
pub fn granule_meta(source: &dyn Hdf5Source, file_name: &str) -> Result<GranuleMeta, GranuleError> {
    let name = GranuleName::parse(file_name);
    let rgt = first_number(source, "/orbit_info/rgt")?
        .map(|value| value as u16)
        .or(name.as_ref().map(|name| name.rgt))
        .ok_or_else(|| {
            GranuleError::Invalid(
                "no orbit_info/rgt, and the file name does not give the RGT".into(),
            )
        })?;
    let cycle = first_number(source, "/orbit_info/cycle_number")?
        .map(|value| value as u8)
        .or(name.as_ref().map(|name| name.cycle))
        .ok_or_else(|| {
            GranuleError::Invalid(
                "no orbit_info/cycle_number, and the file name does not give the cycle".into(),
            )
        })?;
    let region = match name.as_ref() {
        Some(name) => name.region,
        None => match first_number(source, "/ancillary_data/start_region")? {
            Some(value) => value as u8,
            None => region_from_latitudes(source)?.unwrap_or(0),
        },
    };
    let sc_orient = first_number(source, "/orbit_info/sc_orient")?.map(|value| value as i64);
    let start = utc_text(source, "/ancillary_data/data_start_utc")?
        .or(name.as_ref().map(|name| name.start));
    let end = utc_text(source, "/ancillary_data/data_end_utc")?.or(name
        .as_ref()
        .map(|name| name.start + chrono::Duration::seconds(600)));
    Ok(GranuleMeta {
        rgt,
        cycle,
        region,
        sc_orient,
        start,
        end,
    })
}

/// The granule region of the first beam's segments: the latitude band of
/// their middle, ascending when latitude grows along the track.
fn region_from_latitudes(source: &dyn Hdf5Source) -> Result<Option<u8>, GranuleError> {
    for beam in BEAMS {
        let path = format!("/{beam}/land_segments/latitude");
        if source.node(&path)? != Node::Dataset {
            continue;
        }
        let n = source.dataset(&path)?.n_rows();
        if n == 0 {
            continue;
        }
        let ends = source.read_runs(&path, &[0..1, n - 1..n])?;
        let (Some(first), Some(last)) = (ends.get_f64(0), ends.get_f64(1)) else {
            continue;
        };
        return Ok(Some(crate::orbit::granule_region(
            (first + last) / 2.0,
            last >= first,
        )));
    }
    Ok(None)
}

/// The first value of a numeric dataset, if present.
fn first_number(source: &dyn Hdf5Source, path: &str) -> Result<Option<f64>, GranuleError> {
    if source.node(path)? != Node::Dataset {
        return Ok(None);
    }
    let info = source.dataset(path)?;
    if info.dtype.is_none() || info.shape.iter().product::<u64>() == 0 {
        return Ok(None);
    }
    Ok(source.read_runs(path, &[0..1])?.get_f64(0))
}

/// A UTC instant stored as text (`2020-08-21T12:26:13.123456Z`), if present and parseable.
fn utc_text(source: &dyn Hdf5Source, path: &str) -> Result<Option<DateTime<Utc>>, GranuleError> {
    if source.node(path)? != Node::Dataset {
        return Ok(None);
    }
    let Ok(strings) = source.read_strings(path) else {
        return Ok(None);
    };
    Ok(strings.first().and_then(|text| parse_utc(text)))
}

fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim().trim_end_matches('\0');
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|naive| naive.and_utc())
        })
}

/// The beams present in the file, with strength and spot.
pub fn beams(source: &dyn Hdf5Source, meta: &GranuleMeta) -> Result<Vec<BeamInfo>, GranuleError> {
    let mut found = Vec::new();
    for name in BEAMS {
        let path = format!("/{name}");
        if source.node(&path)? != Node::Group {
            continue;
        }
        let strength = match source
            .attr_text(&path, "atlas_beam_type")?
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("strong") => Strength::Strong,
            Some("weak") => Strength::Weak,
            _ => strength_from_orientation(name, meta.sc_orient),
        };
        let spot = source
            .attr_text(&path, "atlas_spot_number")?
            .and_then(|text| text.trim().parse::<f64>().ok())
            .map(|spot| spot as u8)
            .filter(|spot| (1..=6).contains(spot))
            .or_else(|| spot_from_orientation(name, meta.sc_orient));
        found.push(BeamInfo {
            name,
            strength,
            spot,
        });
    }
    Ok(found)
}

fn strength_from_orientation(beam: &str, sc_orient: Option<i64>) -> Strength {
    let left = beam.ends_with('l');
    match sc_orient {
        Some(0) if left => Strength::Strong,
        Some(0) => Strength::Weak,
        Some(1) if left => Strength::Weak,
        Some(1) => Strength::Strong,
        _ => Strength::Unknown,
    }
}

fn spot_from_orientation(beam: &str, sc_orient: Option<i64>) -> Option<u8> {
    let index = BEAMS.iter().position(|candidate| *candidate == beam)? as u8;
    match sc_orient {
        // Backward: gt1l 1, gt1r 2, ..., gt3r 6.
        Some(0) => Some(index + 1),
        // Forward: gt1l 6, gt1r 5, ..., gt3r 1.
        Some(1) => Some(6 - index),
        _ => None,
    }
}

/// Extracts the rows of one granule. `file_name` is written in the `granule`
/// column; `meta` comes from `granule_meta`.
pub fn extract(
    source: &dyn Hdf5Source,
    file_name: &str,
    meta: GranuleMeta,
    request: &Request,
) -> Result<Extracted, GranuleError> {
    let mut batches = Vec::new();
    let mut counts = Vec::new();
    let mut warnings = Vec::new();
    for beam in beams(source, &meta)? {
        if !request.beams.keeps(&beam) {
            continue;
        }
        let land = format!("/{}/land_segments", beam.name);
        if source.node(&land)? != Node::Group {
            counts.push(BeamCount {
                beam: beam.name.into(),
                strength: beam.strength.as_str().into(),
                segments: 0,
                kept: 0,
            });
            continue;
        }
        let (batch, n_segments) = BeamReader {
            source,
            request,
            meta: &meta,
            beam: &beam,
            land,
            file_name,
        }
        .read(&mut warnings)?;
        counts.push(BeamCount {
            beam: beam.name.into(),
            strength: beam.strength.as_str().into(),
            segments: n_segments,
            kept: batch.num_rows() as u64,
        });
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    let batch = arrow::compute::concat_batches(&request.schema, &batches)
        .map_err(|err| GranuleError::Invalid(format!("joining beams: {err}")))?;
    Ok(Extracted {
        batch,
        meta,
        beams: counts,
        warnings,
    })
}

/// Kept rows of a beam, ascending.
struct Selection {
    rows: Vec<u32>,
}

impl Selection {
    /// Maximal runs of consecutive rows.
    fn runs(&self) -> Vec<Range<u64>> {
        let mut runs: Vec<Range<u64>> = Vec::new();
        for &row in &self.rows {
            let row = u64::from(row);
            match runs.last_mut() {
                Some(run) if run.end == row => run.end += 1,
                _ => runs.push(row..row + 1),
            }
        }
        runs
    }
}

/// Keeps the elements of `values` where `keep` is true.
fn retain_by<T: Copy>(values: &mut Vec<T>, keep: &[bool]) {
    let mut index = 0;
    values.retain(|_| {
        let kept = keep[index];
        index += 1;
        kept
    });
}

struct BeamReader<'a> {
    source: &'a dyn Hdf5Source,
    request: &'a Request,
    meta: &'a GranuleMeta,
    beam: &'a BeamInfo,
    land: String,
    file_name: &'a str,
}

impl BeamReader<'_> {
    fn path(&self, relative: &str) -> String {
        format!("/{}/{relative}", self.beam.name)
    }

    /// A segment-level dataset that must exist, with its row count checked.
    fn required(&self, name: &str, n_rows: Option<u64>) -> Result<DatasetInfo, GranuleError> {
        let path = format!("{}/{name}", self.land);
        if self.source.node(&path)? != Node::Dataset {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments has no {name}",
                self.beam.name
            )));
        }
        let info = self.source.dataset(&path)?;
        if let Some(n_rows) = n_rows
            && (info.n_rows() != n_rows || info.shape.len() != 1)
        {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/{name} has shape {:?}; latitude has {n_rows} rows",
                self.beam.name, info.shape
            )));
        }
        Ok(info)
    }

    fn read_f64(&self, name: &str, runs: &[Range<u64>]) -> Result<Vec<f64>, GranuleError> {
        let path = format!("{}/{name}", self.land);
        let values = self.source.read_runs(&path, runs)?;
        Ok(match values {
            Values::F32(v) => v.into_iter().map(f64::from).collect(),
            Values::F64(v) => v,
            other => (0..other.len()).filter_map(|i| other.get_f64(i)).collect(),
        })
    }

    /// The batch of kept rows, and the number of segments in the beam.
    fn read(&self, warnings: &mut Vec<String>) -> Result<(RecordBatch, u64), GranuleError> {
        let latitude_info = self.required("latitude", None)?;
        let n_segments = latitude_info.n_rows();
        if latitude_info.shape.len() != 1 {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/latitude has shape {:?}; expected one dimension",
                self.beam.name, latitude_info.shape
            )));
        }
        self.required("longitude", Some(n_segments))?;
        let whole = [0..n_segments];
        let latitude = self.read_f64("latitude", &whole)?;
        let longitude = self.read_f64("longitude", &whole)?;
        let region = &self.request.region;
        let mut selection = Selection {
            rows: (0..n_segments as u32)
                .filter(|&row| region.contains(longitude[row as usize], latitude[row as usize]))
                .collect(),
        };
        let mut latitude: Vec<f64> = selection
            .rows
            .iter()
            .map(|&row| latitude[row as usize])
            .collect();
        let mut longitude: Vec<f64> = selection
            .rows
            .iter()
            .map(|&row| longitude[row as usize])
            .collect();

        // Time, cut to the window.
        let time_info = self.required("delta_time", Some(n_segments))?;
        let delta_time = self.read_f64("delta_time", &selection.runs())?;
        let time_fill = fill_of(&time_info, variables::lookup("land_segments/delta_time"))
            .and_then(|fill| fill.get_f64(0));
        let mut time: Vec<Option<i64>> = delta_time
            .iter()
            .map(|&seconds| {
                (Some(seconds) != time_fill && seconds.is_finite()).then(|| unix_micros(seconds))
            })
            .collect();
        if let Some(window) = self.request.time_window {
            let keep: Vec<bool> = time
                .iter()
                .map(|t| t.is_some_and(|t| window.contains(t)))
                .collect();
            self.retain(
                &mut selection,
                &mut latitude,
                &mut longitude,
                &mut time,
                &keep,
            );
        }

        if self.request.night_only && !selection.rows.is_empty() {
            self.required("night_flag", Some(n_segments))?;
            let night = self
                .source
                .read_runs(&format!("{}/night_flag", self.land), &selection.runs())?;
            let keep: Vec<bool> = (0..night.len())
                .map(|i| night.get_f64(i) == Some(1.0))
                .collect();
            self.retain(
                &mut selection,
                &mut latitude,
                &mut longitude,
                &mut time,
                &keep,
            );
        }

        let runs = selection.runs();
        let n_rows = selection.rows.len();
        let photon_offsets = if n_rows > 0
            && self
                .request
                .variables
                .iter()
                .any(|v| v.spec.level == Level::Photon)
        {
            self.photon_ranges(&runs, n_rows, n_segments, warnings)?
        } else {
            None
        };

        let latitude = Float64Array::from(latitude);
        let longitude = Float64Array::from(longitude);
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.file_name; n_rows])),
            Arc::new(StringArray::from(vec![self.beam.name; n_rows])),
            Arc::new(StringArray::from(vec![self.beam.strength.as_str(); n_rows])),
            Arc::new(UInt8Array::from(vec![self.beam.spot; n_rows])),
            Arc::new(UInt16Array::from(vec![self.meta.rgt; n_rows])),
            Arc::new(UInt8Array::from(vec![self.meta.cycle; n_rows])),
            Arc::new(UInt8Array::from(vec![self.meta.region; n_rows])),
            Arc::new(UInt32Array::from(selection.rows.clone())),
            Arc::new(TimestampMicrosecondArray::from(time).with_timezone("UTC")),
        ];
        let geometry = columns::wkb_points(&longitude, &latitude);
        columns.push(Arc::new(latitude));
        columns.push(Arc::new(longitude));
        for variable in &self.request.variables {
            columns.push(self.variable_column(
                variable,
                &runs,
                n_rows,
                n_segments,
                photon_offsets.as_ref(),
                warnings,
            )?);
        }
        columns.push(geometry);
        let batch = RecordBatch::try_new(self.request.schema.clone(), columns).map_err(|err| {
            GranuleError::Invalid(format!("{}: building rows: {err}", self.beam.name))
        })?;
        Ok((self.drop_fill(batch)?, n_segments))
    }

    fn retain(
        &self,
        selection: &mut Selection,
        latitude: &mut Vec<f64>,
        longitude: &mut Vec<f64>,
        time: &mut Vec<Option<i64>>,
        keep: &[bool],
    ) {
        retain_by(&mut selection.rows, keep);
        retain_by(latitude, keep);
        retain_by(longitude, keep);
        retain_by(time, keep);
    }

    fn drop_fill(&self, batch: RecordBatch) -> Result<RecordBatch, GranuleError> {
        if self.request.drop_fill.is_empty() || batch.num_rows() == 0 {
            return Ok(batch);
        }
        let mut keep = vec![true; batch.num_rows()];
        for name in &self.request.drop_fill {
            if let Some(column) = batch.column_by_name(name) {
                for (row, flag) in keep.iter_mut().enumerate() {
                    *flag &= column.is_valid(row);
                }
            }
        }
        arrow::compute::filter_record_batch(&batch, &BooleanArray::from(keep))
            .map_err(|err| GranuleError::Invalid(format!("dropping fill rows: {err}")))
    }

    fn variable_column(
        &self,
        variable: &OutputVariable,
        runs: &[Range<u64>],
        n_rows: usize,
        n_segments: u64,
        photon_offsets: Option<&PhotonRuns>,
        warnings: &mut Vec<String>,
    ) -> Result<ArrayRef, GranuleError> {
        let path = self.path(variable.spec.path);
        if self.source.node(&path)? != Node::Dataset {
            warnings.push(format!(
                "{}: {}/{} is missing; written as nulls",
                self.file_name, self.beam.name, variable.spec.path
            ));
            return Ok(columns::null_column(variable, n_rows));
        }
        let info = self.source.dataset(&path)?;
        let Some(_) = info.dtype else {
            return Err(GranuleError::Invalid(format!(
                "{}/{} is not numeric ({})",
                self.beam.name, variable.spec.path, info.type_name
            )));
        };
        if info.row_width() != variable.spec.width as u64 {
            return Err(GranuleError::Invalid(format!(
                "{}/{} has shape {:?}; expected {} value(s) per row",
                self.beam.name, variable.spec.path, info.shape, variable.spec.width
            )));
        }
        let fill = fill_of(&info, Some(variable.spec));
        match variable.spec.level {
            Level::Segment => {
                if info.n_rows() != n_segments {
                    return Err(GranuleError::Invalid(format!(
                        "{}/{} has {} rows; latitude has {n_segments}",
                        self.beam.name,
                        variable.spec.path,
                        info.n_rows()
                    )));
                }
                let values = self.source.read_runs(&path, runs)?;
                columns::variable_array(variable, values, fill.as_ref(), n_rows, None)
            }
            Level::Photon => match photon_offsets {
                Some(photons) => {
                    if info.n_rows() != photons.n_photons {
                        return Err(GranuleError::Invalid(format!(
                            "{}/{} has {} rows; ph_segment_id has {}",
                            self.beam.name,
                            variable.spec.path,
                            info.n_rows(),
                            photons.n_photons
                        )));
                    }
                    let values = self.source.read_runs(&path, &photons.runs)?;
                    columns::variable_array(
                        variable,
                        values,
                        fill.as_ref(),
                        n_rows,
                        Some(&photons.offsets),
                    )
                }
                None => Ok(columns::null_column(variable, n_rows)),
            },
        }
    }

    /// The photons of every kept segment: rows of signal_photons whose
    /// `ph_segment_id` lies in [segment_id_beg, segment_id_end]. Located by
    /// `ph_ndx_beg`/`n_seg_ph` and verified against `ph_segment_id` (ids
    /// inside, neighbours outside); when the index does not hold, found by
    /// binary search over the whole, sorted `ph_segment_id`.
    fn photon_ranges(
        &self,
        runs: &[Range<u64>],
        n_rows: usize,
        n_segments: u64,
        warnings: &mut Vec<String>,
    ) -> Result<Option<PhotonRuns>, GranuleError> {
        let ids_path = self.path("signal_photons/ph_segment_id");
        if self.source.node(&ids_path)? != Node::Dataset {
            warnings.push(format!(
                "{}: {}/signal_photons is missing; photon columns written as nulls",
                self.file_name, self.beam.name
            ));
            return Ok(None);
        }
        let n_photons = self.source.dataset(&ids_path)?.n_rows();
        self.required("segment_id_beg", Some(n_segments))?;
        self.required("segment_id_end", Some(n_segments))?;
        let beg = self.read_f64("segment_id_beg", runs)?;
        let end = self.read_f64("segment_id_end", runs)?;
        let hinted = self.photon_ranges_from_index(runs, &beg, &end, n_photons, &ids_path)?;
        let ranges = match hinted {
            Some(ranges) => ranges,
            None => {
                let ids = self.source.read_all(&ids_path)?;
                let ids: Vec<f64> = (0..ids.len()).filter_map(|i| ids.get_f64(i)).collect();
                if !ids.is_sorted() {
                    return Err(GranuleError::Invalid(format!(
                        "{}/signal_photons/ph_segment_id is not sorted",
                        self.beam.name
                    )));
                }
                beg.iter()
                    .zip(&end)
                    .map(|(&first, &last)| {
                        ids.partition_point(|&id| id < first) as u64
                            ..ids.partition_point(|&id| id <= last) as u64
                    })
                    .collect()
            }
        };
        debug_assert_eq!(ranges.len(), n_rows);
        let offsets = OffsetBuffer::from_lengths(
            ranges
                .iter()
                .map(|range| (range.end - range.start) as usize),
        );
        let mut merged: Vec<Range<u64>> = Vec::new();
        for range in ranges.into_iter().filter(|range| !range.is_empty()) {
            match merged.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => merged.push(range),
            }
        }
        Ok(Some(PhotonRuns {
            runs: merged,
            offsets,
            n_photons,
        }))
    }

    /// Photon ranges from `ph_ndx_beg` (1-based) and `n_seg_ph`, if both exist and
    /// `ph_segment_id` confirms them.
    fn photon_ranges_from_index(
        &self,
        runs: &[Range<u64>],
        beg: &[f64],
        end: &[f64],
        n_photons: u64,
        ids_path: &str,
    ) -> Result<Option<Vec<Range<u64>>>, GranuleError> {
        let index_path = format!("{}/ph_ndx_beg", self.land);
        let count_path = format!("{}/n_seg_ph", self.land);
        if self.source.node(&index_path)? != Node::Dataset
            || self.source.node(&count_path)? != Node::Dataset
        {
            return Ok(None);
        }
        let first = self.source.read_runs(&index_path, runs)?;
        let count = self.source.read_runs(&count_path, runs)?;
        let mut ranges = Vec::with_capacity(beg.len());
        for i in 0..beg.len() {
            let (Some(first), Some(count)) = (first.get_f64(i), count.get_f64(i)) else {
                return Ok(None);
            };
            if first < 1.0 || count < 0.0 || first - 1.0 + count > n_photons as f64 {
                return Ok(None);
            }
            let start = first as u64 - 1;
            ranges.push(start..start + count as u64);
        }
        if ranges.windows(2).any(|pair| pair[1].start < pair[0].end) {
            return Ok(None);
        }
        // Verify: read each range with one photon of margin on both sides.
        let mut check: Vec<Range<u64>> = Vec::new();
        for range in &ranges {
            let padded = range.start.saturating_sub(1)..(range.end + 1).min(n_photons);
            match check.last_mut() {
                Some(last) if last.end >= padded.start => last.end = last.end.max(padded.end),
                _ => check.push(padded),
            }
        }
        let ids = self.source.read_runs(ids_path, &check)?;
        let mut position_of = Vec::with_capacity(check.len());
        let mut offset = 0u64;
        for run in &check {
            position_of.push((run.clone(), offset));
            offset += run.end - run.start;
        }
        let id_at = |photon: u64| -> Option<f64> {
            let index = position_of.partition_point(|(run, _)| run.end <= photon);
            let (run, offset) = position_of.get(index)?;
            (run.contains(&photon))
                .then(|| ids.get_f64((offset + photon - run.start) as usize))
                .flatten()
        };
        for (range, (&first_id, &last_id)) in ranges.iter().zip(beg.iter().zip(end)) {
            let inside_ok = (range.start..range.end)
                .all(|photon| id_at(photon).is_some_and(|id| first_id <= id && id <= last_id));
            let before_ok =
                range.start == 0 || id_at(range.start - 1).is_some_and(|id| id < first_id);
            let after_ok =
                range.end >= n_photons || id_at(range.end).is_some_and(|id| id > last_id);
            if !(inside_ok && before_ok && after_ok) {
                return Ok(None);
            }
        }
        Ok(Some(ranges))
    }
}

/// Photon rows to read for a beam's kept segments, and each segment's share.
struct PhotonRuns {
    runs: Vec<Range<u64>>,
    offsets: OffsetBuffer<i32>,
    n_photons: u64,
}

/// The fill marker of a dataset: its `_FillValue` attribute; for a file
/// stored without attributes, the fill the product defines (the catalog).
/// Never the HDF5 fill-value property.
fn fill_of(info: &DatasetInfo, spec: Option<&variables::Variable>) -> Option<Values> {
    if let Some(fill) = &info.fill_attribute {
        return Some(fill.clone());
    }
    let fill = spec?.fill?;
    let dtype = info.dtype?;
    Some(values_of_dtype!(dtype, T => vec![fill as T]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_join_consecutive_rows() {
        let selection = Selection {
            rows: vec![1, 2, 3, 7, 9, 10],
        };
        assert_eq!(selection.runs(), vec![1..4, 7..8, 9..11]);
    }

    #[test]
    fn orientation_gives_strength_and_spot() {
        assert_eq!(strength_from_orientation("gt1l", Some(0)), Strength::Strong);
        assert_eq!(strength_from_orientation("gt1r", Some(1)), Strength::Strong);
        assert_eq!(
            strength_from_orientation("gt2l", Some(2)),
            Strength::Unknown
        );
        assert_eq!(spot_from_orientation("gt1r", Some(1)), Some(5));
        assert_eq!(spot_from_orientation("gt3l", Some(1)), Some(2));
        assert_eq!(spot_from_orientation("gt2l", Some(0)), Some(3));
    }

    #[test]
    fn times_round_to_the_microsecond() {
        assert_eq!(unix_micros(0.0), ATLAS_EPOCH_UNIX_S * 1_000_000);
        assert_eq!(
            unix_micros(1.0000004),
            ATLAS_EPOCH_UNIX_S * 1_000_000 + 1_000_000
        );
        assert_eq!(
            unix_micros(40_900_673.401_504_5),
            (ATLAS_EPOCH_UNIX_S + 40_900_673) * 1_000_000 + 401_505
        );
        assert_eq!(unix_micros(-0.25), ATLAS_EPOCH_UNIX_S * 1_000_000 - 250_000);
    }

    #[test]
    fn parses_ancillary_times() {
        assert_eq!(
            parse_utc("2020-08-21T12:26:13.123456Z")
                .unwrap()
                .timestamp_micros()
                % 1_000_000,
            123_456
        );
        assert!(parse_utc("2020-08-21T12:26:13Z").is_some());
    }
}
