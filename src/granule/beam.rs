//! One granule's rows, beam by beam: the segments inside the region and the
//! time window, cut by the filters, with the requested variables read only
//! for the kept row runs, and photon variables gathered per segment.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Float64Array, RecordBatch,
    TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array,
};
use rayon::prelude::*;

use super::columns::{DERIVED_COLUMNS, GEOMETRY_COLUMN, OutputVariable, SUBSEGMENTS};
use super::h5::{DatasetInfo, Hdf5Source, Node, PlannedRead, Values};
use super::photons::{PhotonRuns, merge_runs};
use crate::dataset::schema::{LATITUDE, LONGITUDE, SUBSEGMENT};

use super::meta::{BeamInfo, GranuleMeta, beams};
use super::variables::Level;
use super::{
    BEAMS, GranuleError, Request, Resolution, columns, position_names, unix_micros, variables,
};
use crate::values_of_dtype;

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

/// Extracts the rows of one granule. `file_name` is written in the `granule`
/// column; `meta` comes from `granule_meta`.
pub fn extract(
    source: &dyn Hdf5Source,
    file_name: &str,
    meta: GranuleMeta,
    request: &Request,
) -> Result<Extracted, GranuleError> {
    let mut counts = Vec::new();
    let mut beams_read = Vec::new();
    let found = beams(source, &meta)?;
    if found.is_empty() {
        return Err(GranuleError::Invalid(format!(
            "not an ATL08 granule: it has none of the beam groups {}",
            BEAMS.join(", ")
        )));
    }
    for beam in found {
        if !request.beams.keeps(&beam) {
            continue;
        }
        let land = format!("/{}/land_segments", beam.name);
        if source.node(&land)? != Node::Group || !has_positions(source, &land)? {
            counts.push(BeamCount {
                beam: beam.name.into(),
                strength: beam.strength.as_str().into(),
                segments: 0,
                kept: 0,
            });
            continue;
        }
        beams_read.push(BeamReader::new(
            source, request, &meta, beam, land, file_name,
        ));
    }
    let wants_photons = request
        .read_variables()
        .any(|v| v.spec.level == Level::Photon);

    // Each step declares the rows it will read (so remote bytes arrive in
    // one concurrent round of requests), then reads them for every beam.
    let positions: Vec<PlannedRead> = beams_read
        .iter()
        .flat_map(|b| position_names(request.resolution).map(|name| b.planned(name, None)))
        .collect();
    source.prepare(&positions)?;
    beams_read.par_iter_mut().try_for_each(|b| b.locate())?;

    // Time, the filters and the values are planned together for the rows
    // in the region (one round trip instead of two): the time window and
    // the night filter only drop rows from chunks already fetched.
    let mut values: Vec<PlannedRead> = Vec::new();
    for b in &beams_read {
        if b.is_empty() {
            continue;
        }
        let runs = b.selection.runs();
        values.push(b.planned("delta_time", Some(runs.clone())));
        if request.night_only {
            values.push(b.planned("night_flag", Some(runs.clone())));
        }
        for variable in request
            .read_variables()
            .filter(|v| v.spec.level == Level::Segment)
        {
            values.push(PlannedRead {
                path: b.path(variable.spec.path),
                runs: Some(runs.clone()),
            });
        }
        if wants_photons {
            for name in ["segment_id_beg", "segment_id_end", "ph_ndx_beg", "n_seg_ph"] {
                values.push(b.planned(name, Some(runs.clone())));
            }
        }
    }
    source.prepare(&values)?;
    beams_read.par_iter_mut().try_for_each(|b| b.cut())?;

    if wants_photons {
        beams_read
            .par_iter_mut()
            .try_for_each(|b| b.locate_photons())?;
        let mut photons: Vec<PlannedRead> = Vec::new();
        for b in &beams_read {
            if let Some(candidates) = &b.photon_candidates {
                photons.push(PlannedRead {
                    path: b.path("signal_photons/ph_segment_id"),
                    runs: Some(candidates.check.clone()),
                });
                for variable in request
                    .read_variables()
                    .filter(|v| v.spec.level == Level::Photon)
                {
                    photons.push(PlannedRead {
                        path: b.path(variable.spec.path),
                        runs: Some(candidates.runs.clone()),
                    });
                }
            }
        }
        source.prepare(&photons)?;
        beams_read
            .par_iter_mut()
            .try_for_each(|b| b.confirm_photons())?;
    }

    let built: Vec<(RecordBatch, u64, Vec<String>)> = beams_read
        .par_iter()
        .map(|b| b.build())
        .collect::<Result<_, _>>()?;
    let mut batches = Vec::new();
    let mut warnings = Vec::new();
    for (b, (batch, n_segments, notes)) in beams_read.iter().zip(built) {
        counts.push(BeamCount {
            beam: b.beam.name.into(),
            strength: b.beam.strength.as_str().into(),
            segments: n_segments,
            kept: batch.num_rows() as u64,
        });
        warnings.extend(notes);
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    counts.sort_by_key(|count| BEAMS.iter().position(|beam| *beam == count.beam));
    let batch = arrow::compute::concat_batches(&request.schema, &batches)
        .map_err(|err| GranuleError::Invalid(format!("joining beams: {err}")))?;
    Ok(Extracted {
        batch,
        meta,
        beams: counts,
        warnings,
    })
}

/// Whether a beam's `land_segments` group holds segment positions: latitude
/// or longitude. Clip tools (the R package ICESat2VegR) write a beam with
/// no segments as the group with only empty `canopy` and `terrain`
/// subgroups: that beam has no land segments, like one without the group.
/// With only one of the two, the beam is corrupt, and `locate` says which
/// is missing.
fn has_positions(source: &dyn Hdf5Source, land: &str) -> Result<bool, GranuleError> {
    for name in ["latitude", "longitude"] {
        if source.node(&format!("{land}/{name}"))? != Node::Missing {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Kept rows of a beam, ascending.
#[derive(Default)]
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

/// Photon rows located through `ph_ndx_beg`/`n_seg_ph`, to be confirmed.
struct PhotonCandidates {
    /// Each kept segment's photon rows.
    ranges: Vec<Range<u64>>,
    /// The rows to read (merged ranges).
    runs: Vec<Range<u64>>,
    /// `runs` widened by one photon each side, to check the neighbours.
    check: Vec<Range<u64>>,
    segment_first: Vec<f64>,
    segment_last: Vec<f64>,
    n_photons: u64,
}

/// One beam through the steps of `extract`.
struct BeamReader<'a> {
    source: &'a dyn Hdf5Source,
    request: &'a Request,
    meta: &'a GranuleMeta,
    beam: BeamInfo,
    land: String,
    file_name: &'a str,
    n_segments: u64,
    selection: Selection,
    latitude: Vec<f64>,
    longitude: Vec<f64>,
    /// At `resolution: 20m`, for each kept row: which of its sub-segments
    /// are kept (bit k for sub-segment k) and their positions.
    sub_kept: Vec<u8>,
    sub_latitude: Vec<[f64; SUBSEGMENTS]>,
    sub_longitude: Vec<[f64; SUBSEGMENTS]>,
    time: Vec<Option<i64>>,
    photon_candidates: Option<PhotonCandidates>,
    photons: Option<PhotonRuns>,
    warnings: Vec<String>,
}

impl<'a> BeamReader<'a> {
    fn new(
        source: &'a dyn Hdf5Source,
        request: &'a Request,
        meta: &'a GranuleMeta,
        beam: BeamInfo,
        land: String,
        file_name: &'a str,
    ) -> Self {
        BeamReader {
            source,
            request,
            meta,
            beam,
            land,
            file_name,
            n_segments: 0,
            selection: Selection::default(),
            latitude: Vec::new(),
            longitude: Vec::new(),
            sub_kept: Vec::new(),
            sub_latitude: Vec::new(),
            sub_longitude: Vec::new(),
            time: Vec::new(),
            photon_candidates: None,
            photons: None,
            warnings: Vec::new(),
        }
    }

    fn path(&self, relative: &str) -> String {
        format!("/{}/{relative}", self.beam.name)
    }

    /// A read of `land_segments/<name>` for `runs` (all rows when `None`).
    fn planned(&self, name: &str, runs: Option<Vec<Range<u64>>>) -> PlannedRead {
        PlannedRead {
            path: format!("{}/{name}", self.land),
            runs,
        }
    }

    fn is_empty(&self) -> bool {
        self.selection.rows.is_empty()
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

    /// Reads latitude/longitude and keeps the segments inside the region.
    fn locate(&mut self) -> Result<(), GranuleError> {
        if self.request.resolution == Resolution::Subsegment {
            return self.locate_20m();
        }
        let latitude_info = self.required("latitude", None)?;
        let n_segments = latitude_info.n_rows();
        if latitude_info.shape.len() != 1 {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/latitude has shape {:?}; expected one dimension",
                self.beam.name, latitude_info.shape
            )));
        }
        self.required("longitude", Some(n_segments))?;
        let latitude = self.read_f64("latitude", &[0..n_segments])?;
        if latitude.len() as u64 != n_segments {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/latitude: {} values read for {n_segments} rows",
                self.beam.name,
                latitude.len()
            )));
        }
        // Longitude only where the latitude lies strictly inside the
        // region's latitude range (every row `contains` can keep): a
        // granule spans a band of latitude many times the region's, and
        // the longitude chunks of the rest are never inflated. (Both are
        // fetched whole in one round, see `extract`.)
        let region = &self.request.region;
        let (south, north) = (region.bounds().min().y, region.bounds().max().y);
        let band = Selection {
            rows: latitude
                .iter()
                .enumerate()
                .filter(|&(_, &lat)| lat > south && lat < north)
                .map(|(row, _)| row as u32)
                .collect(),
        };
        let longitude = if band.rows.is_empty() {
            Vec::new()
        } else {
            self.read_f64("longitude", &band.runs())?
        };
        if longitude.len() != band.rows.len() {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/longitude: {} values read for {} rows",
                self.beam.name,
                longitude.len(),
                band.rows.len()
            )));
        }
        let (rows, longitude): (Vec<u32>, Vec<f64>) = band
            .rows
            .iter()
            .zip(longitude)
            .filter(|&(&row, lon)| region.contains(lon, latitude[row as usize]))
            .map(|(&row, lon)| (row, lon))
            .unzip();
        self.latitude = rows.iter().map(|&row| latitude[row as usize]).collect();
        self.longitude = longitude;
        self.selection = Selection { rows };
        self.n_segments = n_segments;
        Ok(())
    }

    /// `locate` at `resolution: 20m`: reads `latitude_20m` (five a row),
    /// then `longitude_20m` for the rows with a sub-segment strictly inside
    /// the region's latitude range, and keeps the sub-segments inside the
    /// region; a fill (or impossible) coordinate keeps none.
    fn locate_20m(&mut self) -> Result<(), GranuleError> {
        let [latitude_name, longitude_name] = position_names(Resolution::Subsegment);
        let mut shapes = Vec::new();
        for name in [latitude_name, longitude_name] {
            let info = self.required(name, None)?;
            if info.shape.len() != 2 || info.shape[1] != SUBSEGMENTS as u64 {
                return Err(GranuleError::Invalid(format!(
                    "{}/land_segments/{name} has shape {:?}; expected (N, {SUBSEGMENTS})",
                    self.beam.name, info.shape
                )));
            }
            shapes.push(info.n_rows());
        }
        let n_segments = shapes[0];
        if shapes[1] != n_segments {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/{longitude_name} has {} rows; {latitude_name} has {n_segments}",
                self.beam.name, shapes[1]
            )));
        }
        let latitude = self.read_f64(latitude_name, &[0..n_segments])?;
        if latitude.len() as u64 != n_segments * SUBSEGMENTS as u64 {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/{latitude_name}: {} values read for {n_segments} rows",
                self.beam.name,
                latitude.len()
            )));
        }
        let region = &self.request.region;
        let (south, north) = (region.bounds().min().y, region.bounds().max().y);
        let band = Selection {
            rows: latitude
                .chunks_exact(SUBSEGMENTS)
                .enumerate()
                .filter(|(_, row)| row.iter().any(|&lat| lat > south && lat < north))
                .map(|(row, _)| row as u32)
                .collect(),
        };
        let longitude = if band.rows.is_empty() {
            Vec::new()
        } else {
            self.read_f64(longitude_name, &band.runs())?
        };
        if longitude.len() != band.rows.len() * SUBSEGMENTS {
            return Err(GranuleError::Invalid(format!(
                "{}/land_segments/{longitude_name}: {} values read for {} rows",
                self.beam.name,
                longitude.len(),
                band.rows.len()
            )));
        }
        let usable = |lon: f64, lat: f64| lat.abs() <= 90.0 && lon.abs() <= 180.0;
        for (&row, lons) in band.rows.iter().zip(longitude.chunks_exact(SUBSEGMENTS)) {
            let start = row as usize * SUBSEGMENTS;
            let lats: [f64; SUBSEGMENTS] = latitude[start..start + SUBSEGMENTS]
                .try_into()
                .unwrap_or([f64::NAN; SUBSEGMENTS]);
            let lons: [f64; SUBSEGMENTS] = lons.try_into().unwrap_or([f64::NAN; SUBSEGMENTS]);
            let mut kept = 0u8;
            for k in 0..SUBSEGMENTS {
                if usable(lons[k], lats[k]) && region.contains(lons[k], lats[k]) {
                    kept |= 1 << k;
                }
            }
            if kept != 0 {
                let first = kept.trailing_zeros() as usize;
                self.selection.rows.push(row);
                self.latitude.push(lats[first]);
                self.longitude.push(lons[first]);
                self.sub_kept.push(kept);
                self.sub_latitude.push(lats);
                self.sub_longitude.push(lons);
            }
        }
        self.n_segments = n_segments;
        Ok(())
    }

    /// Reads time for the kept rows and cuts them to the window and filters.
    fn cut(&mut self) -> Result<(), GranuleError> {
        if self.is_empty() {
            return Ok(());
        }
        let time_info = self.required("delta_time", Some(self.n_segments))?;
        let delta_time = self.read_f64("delta_time", &self.selection.runs())?;
        let time_fill = fill_of(&time_info, variables::lookup("land_segments/delta_time"))
            .and_then(|fill| fill.get_f64(0));
        self.time = delta_time
            .iter()
            .map(|&seconds| {
                (Some(seconds) != time_fill && seconds.is_finite()).then(|| unix_micros(seconds))
            })
            .collect();
        let (window, except) = (self.request.time_window, self.request.except_window);
        if window.is_some() || except.is_some() {
            let keep: Vec<bool> = self
                .time
                .iter()
                .map(|t| match t {
                    // Without a window a fresh run keeps rows whose time is
                    // fill; a run with one could not have written them.
                    None => window.is_none(),
                    &Some(t) => {
                        window.is_none_or(|window| window.contains(t))
                            && !except.is_some_and(|except| except.contains(t))
                    }
                })
                .collect();
            self.retain(&keep);
        }
        if self.request.night_only && !self.is_empty() {
            self.required("night_flag", Some(self.n_segments))?;
            let night = self
                .source
                .read_runs(&format!("{}/night_flag", self.land), &self.selection.runs())?;
            let keep: Vec<bool> = (0..night.len())
                .map(|i| night.get_f64(i) == Some(1.0))
                .collect();
            self.retain(&keep);
        }
        Ok(())
    }

    fn retain(&mut self, keep: &[bool]) {
        retain_by(&mut self.selection.rows, keep);
        retain_by(&mut self.latitude, keep);
        retain_by(&mut self.longitude, keep);
        retain_by(&mut self.time, keep);
        if !self.sub_kept.is_empty() {
            retain_by(&mut self.sub_kept, keep);
            retain_by(&mut self.sub_latitude, keep);
            retain_by(&mut self.sub_longitude, keep);
        }
    }

    /// The photons of every kept segment are the rows of signal_photons
    /// whose `ph_segment_id` lies in [segment_id_beg, segment_id_end]. Here
    /// they are located through `ph_ndx_beg` (1-based) and `n_seg_ph`; the
    /// ids are checked in `confirm_photons`.
    fn locate_photons(&mut self) -> Result<(), GranuleError> {
        if self.is_empty() {
            return Ok(());
        }
        let ids_path = self.path("signal_photons/ph_segment_id");
        if self.source.node(&ids_path)? != Node::Dataset {
            self.warnings.push(format!(
                "{}: {}/signal_photons is missing; photon columns written as nulls",
                self.file_name, self.beam.name
            ));
            return Ok(());
        }
        let n_photons = self.source.dataset(&ids_path)?.n_rows();
        self.required("segment_id_beg", Some(self.n_segments))?;
        self.required("segment_id_end", Some(self.n_segments))?;
        let runs = self.selection.runs();
        let segment_first = self.read_f64("segment_id_beg", &runs)?;
        let segment_last = self.read_f64("segment_id_end", &runs)?;
        let index_path = format!("{}/ph_ndx_beg", self.land);
        let count_path = format!("{}/n_seg_ph", self.land);
        let mut ranges = Vec::with_capacity(segment_first.len());
        if self.source.node(&index_path)? == Node::Dataset
            && self.source.node(&count_path)? == Node::Dataset
        {
            let first = self.source.read_runs(&index_path, &runs)?;
            let count = self.source.read_runs(&count_path, &runs)?;
            for i in 0..segment_first.len() {
                let (Some(first), Some(count)) = (first.get_f64(i), count.get_f64(i)) else {
                    break;
                };
                if first < 1.0 || count < 0.0 || first - 1.0 + count > n_photons as f64 {
                    break;
                }
                let start = first as u64 - 1;
                ranges.push(start..start + count as u64);
            }
        }
        let usable = ranges.len() == segment_first.len()
            && !ranges.windows(2).any(|pair| pair[1].start < pair[0].end);
        if !usable {
            return self.photons_by_search(&segment_first, &segment_last, n_photons);
        }
        let runs = merge_runs(ranges.iter().cloned());
        let check = merge_runs(
            ranges
                .iter()
                .map(|range| range.start.saturating_sub(1)..(range.end + 1).min(n_photons)),
        );
        self.photon_candidates = Some(PhotonCandidates {
            ranges,
            runs,
            check,
            segment_first,
            segment_last,
            n_photons,
        });
        Ok(())
    }

    /// Confirms the located photons against `ph_segment_id` (ids inside,
    /// neighbours outside); when the index does not hold, finds them by
    /// binary search over the whole, sorted `ph_segment_id`.
    fn confirm_photons(&mut self) -> Result<(), GranuleError> {
        let Some(candidates) = self.photon_candidates.take() else {
            return Ok(());
        };
        let n_photons = candidates.n_photons;
        let ids = self.source.read_runs(
            &self.path("signal_photons/ph_segment_id"),
            &candidates.check,
        )?;
        let mut position_of = Vec::with_capacity(candidates.check.len());
        let mut offset = 0u64;
        for run in &candidates.check {
            position_of.push((run.clone(), offset));
            offset += run.end - run.start;
        }
        let id_at = |photon: u64| -> Option<f64> {
            let index = position_of.partition_point(|(run, _)| run.end <= photon);
            let (run, offset) = position_of.get(index)?;
            run.contains(&photon)
                .then(|| ids.get_f64((offset + photon - run.start) as usize))
                .flatten()
        };
        let confirmed = candidates
            .ranges
            .iter()
            .zip(
                candidates
                    .segment_first
                    .iter()
                    .zip(&candidates.segment_last),
            )
            .all(|(range, (&first_id, &last_id))| {
                let inside = (range.start..range.end)
                    .all(|photon| id_at(photon).is_some_and(|id| first_id <= id && id <= last_id));
                let before =
                    range.start == 0 || id_at(range.start - 1).is_some_and(|id| id < first_id);
                let after =
                    range.end >= n_photons || id_at(range.end).is_some_and(|id| id > last_id);
                inside && before && after
            });
        if !confirmed {
            return self.photons_by_search(
                &candidates.segment_first,
                &candidates.segment_last,
                n_photons,
            );
        }
        self.photons = Some(PhotonRuns::new(
            self.beam.name,
            candidates.ranges,
            n_photons,
        )?);
        Ok(())
    }

    fn photons_by_search(
        &mut self,
        first: &[f64],
        last: &[f64],
        n_photons: u64,
    ) -> Result<(), GranuleError> {
        let ids = self
            .source
            .read_all(&self.path("signal_photons/ph_segment_id"))?;
        let ids: Vec<f64> = (0..ids.len()).filter_map(|i| ids.get_f64(i)).collect();
        if !ids.is_sorted() {
            return Err(GranuleError::Invalid(format!(
                "{}/signal_photons/ph_segment_id is not sorted",
                self.beam.name
            )));
        }
        let ranges = first
            .iter()
            .zip(last)
            .map(|(&first, &last)| {
                ids.partition_point(|&id| id < first) as u64
                    ..ids.partition_point(|&id| id <= last) as u64
            })
            .collect();
        self.photons = Some(PhotonRuns::new(self.beam.name, ranges, n_photons)?);
        Ok(())
    }

    /// The batch of kept rows, the number of segments, and warnings.
    fn build(&self) -> Result<(RecordBatch, u64, Vec<String>), GranuleError> {
        let mut warnings = self.warnings.clone();
        let n_rows = self.selection.rows.len();
        let runs = self.selection.runs();
        let latitude = Float64Array::from(self.latitude.clone());
        let longitude = Float64Array::from(self.longitude.clone());
        let time = if self.time.len() == n_rows {
            self.time.clone()
        } else {
            vec![None; n_rows]
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(columns::repeated(self.file_name, n_rows)),
            Arc::new(columns::repeated(self.beam.name, n_rows)),
            Arc::new(columns::repeated(self.beam.strength.as_str(), n_rows)),
            Arc::new(UInt8Array::from(vec![self.beam.spot; n_rows])),
            Arc::new(UInt16Array::from(vec![self.meta.rgt; n_rows])),
            Arc::new(UInt8Array::from(vec![self.meta.cycle; n_rows])),
            Arc::new(UInt8Array::from(vec![self.meta.region; n_rows])),
            Arc::new(UInt32Array::from(self.selection.rows.clone())),
            Arc::new(TimestampMicrosecondArray::from(time).with_timezone("UTC")),
        ];
        let geometry = columns::wkb_points(&longitude, &latitude);
        columns.push(Arc::new(latitude));
        columns.push(Arc::new(longitude));
        let mut column = |variable: &OutputVariable| {
            if n_rows == 0 {
                Ok(columns::null_column(variable, 0))
            } else {
                self.variable_column(variable, &runs, n_rows, &mut warnings)
            }
        };
        let mut names: Vec<&str> = DERIVED_COLUMNS.to_vec();
        for variable in &self.request.variables {
            columns.push(column(variable)?);
            names.push(&variable.name);
        }
        columns.push(geometry);
        names.push(GEOMETRY_COLUMN);
        // The filter also sees the variables only it reads (never written),
        // after the output columns.
        let filter = self.request.row_filter.as_ref();
        for variable in filter.iter().flat_map(|filter| &filter.hidden) {
            columns.push(column(variable)?);
            names.push(&variable.name);
        }
        let schema = filter.map_or_else(|| self.request.schema.clone(), |f| f.schema.clone());
        let building =
            |err| GranuleError::Invalid(format!("{}: building rows: {err}", self.beam.name));
        let wide = match self.request.resolution {
            Resolution::Segment => RecordBatch::try_new(schema, columns).map_err(building)?,
            Resolution::Subsegment => {
                let segments =
                    RecordBatch::try_from_iter(names.into_iter().zip(columns)).map_err(building)?;
                self.subsegments(&segments, schema).map_err(building)?
            }
        };
        let mut keep = self.drop_fill(&wide);
        if let Some(filter) = filter
            && wide.num_rows() > 0
        {
            let flags = filter.predicate.keep(&wide).map_err(|err| {
                GranuleError::Invalid(format!(
                    "{}: filters.where '{}': {err}",
                    self.beam.name, filter.text
                ))
            })?;
            for (row, flag) in keep.iter_mut().enumerate() {
                *flag &= flags.is_valid(row) && flags.value(row);
            }
        }
        let wide = if keep.iter().all(|&flag| flag) {
            wide
        } else {
            arrow::compute::filter_record_batch(&wide, &BooleanArray::from(keep))
                .map_err(|err| GranuleError::Invalid(format!("filtering rows: {err}")))?
        };
        let written = wide.columns()[..self.request.schema.fields().len()].to_vec();
        let batch = RecordBatch::try_new(self.request.schema.clone(), written).map_err(building)?;
        Ok((batch, self.n_segments, warnings))
    }

    /// The rows of `segments` (one per kept land segment) as one row per
    /// kept 20 m sub-segment, laid out as `schema`: `subsegment` added, the
    /// position and geometry of the sub-segment's own point, variables with
    /// a value per sub-segment as that value, every other column repeated.
    fn subsegments(
        &self,
        segments: &RecordBatch,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        let (mut rows, mut subsegment) = (Vec::new(), Vec::new());
        let (mut latitude, mut longitude) = (Vec::new(), Vec::new());
        for (row, &kept) in self.sub_kept.iter().enumerate() {
            for k in 0..SUBSEGMENTS {
                if kept & (1 << k) != 0 {
                    rows.push(row as u32);
                    subsegment.push(k as u8);
                    latitude.push(self.sub_latitude[row][k]);
                    longitude.push(self.sub_longitude[row][k]);
                }
            }
        }
        let values: Vec<u32> = rows
            .iter()
            .zip(&subsegment)
            .map(|(&row, &k)| row * SUBSEGMENTS as u32 + u32::from(k))
            .collect();
        let (rows, values) = (UInt32Array::from(rows), UInt32Array::from(values));
        let (latitude, longitude) = (Float64Array::from(latitude), Float64Array::from(longitude));
        let mut columns: Vec<ArrayRef> = Vec::new();
        for field in schema.fields() {
            let name = field.name().as_str();
            let column: ArrayRef = match name {
                SUBSEGMENT => Arc::new(UInt8Array::from(subsegment.clone())),
                LATITUDE => Arc::new(latitude.clone()),
                LONGITUDE => Arc::new(longitude.clone()),
                GEOMETRY_COLUMN => columns::wkb_points(&longitude, &latitude),
                _ => {
                    let source = segments.column_by_name(name).ok_or_else(|| {
                        arrow::error::ArrowError::SchemaError(format!("no column {name}"))
                    })?;
                    match source.as_any().downcast_ref::<FixedSizeListArray>() {
                        Some(list) if !field.data_type().is_nested() => {
                            arrow::compute::take(list.values(), &values, None)?
                        }
                        _ => arrow::compute::take(source, &rows, None)?,
                    }
                }
            };
            columns.push(column);
        }
        RecordBatch::try_new(schema, columns)
    }

    /// One flag per row: false where a `drop_fill` column is null.
    fn drop_fill(&self, batch: &RecordBatch) -> Vec<bool> {
        let mut keep = vec![true; batch.num_rows()];
        for name in &self.request.drop_fill {
            if let Some(column) = batch.column_by_name(name) {
                for (row, flag) in keep.iter_mut().enumerate() {
                    *flag &= column.is_valid(row);
                }
            }
        }
        keep
    }

    fn variable_column(
        &self,
        variable: &OutputVariable,
        runs: &[Range<u64>],
        n_rows: usize,
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
                if info.n_rows() != self.n_segments {
                    return Err(GranuleError::Invalid(format!(
                        "{}/{} has {} rows; latitude has {}",
                        self.beam.name,
                        variable.spec.path,
                        info.n_rows(),
                        self.n_segments
                    )));
                }
                let values = self.source.read_runs(&path, runs)?;
                columns::variable_array(variable, values, fill.as_ref(), n_rows, None)
            }
            Level::Photon => match &self.photons {
                Some(photons) if photons.offsets.len() == n_rows + 1 => {
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
                _ => Ok(columns::null_column(variable, n_rows)),
            },
        }
    }
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
}
