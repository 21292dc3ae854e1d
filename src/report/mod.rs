//! The run report (`_runs/<run id>.json`): what was planned, done, skipped
//! and failed, with counters and timings; and the run's exit status.
//! `quicklook` turns a dataset and its run reports into the HTML summary
//! (`_runs/<run id>.html`, `icesat2 report`), drawn by `charts`.

pub mod charts;
mod kernels;
pub mod quicklook;
pub mod scan;
pub mod stats;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dataset::layout::RUNS;
use crate::granule::BeamCount;
use crate::sink::journal::CommittedFile;
use crate::sink::{Output, SinkError};

/// Why a report could not be made: one line for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(pub String);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunReport {
    pub run_id: String,
    pub name: String,
    pub manifest: String,
    pub manifest_sha256: String,
    /// The manifest as written (it names credential files, never holds secrets).
    #[serde(default)]
    pub manifest_text: String,
    /// The region's rings (outer rings and holes), lon/lat.
    #[serde(default)]
    pub region: Vec<Vec<[f64; 2]>>,
    /// The RGTs selected for the region.
    #[serde(default)]
    pub tracks: Vec<u16>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// `K/N` when the run was one shard of several.
    pub shard: Option<String>,
    pub granules: GranuleTally,
    /// Rows committed by this run.
    pub rows_written: u64,
    pub bytes_read: u64,
    pub requests: u64,
    pub bytes_decoded: u64,
    pub warnings: Vec<String>,
    pub timings: Timings,
    /// Granules left out without being read, with the reason.
    pub skipped_granules: Vec<GranuleNote>,
    /// One entry per granule read.
    pub details: Vec<GranuleDetail>,
    /// Files this run committed.
    pub files: Vec<FileRecord>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GranuleTally {
    pub planned: u64,
    /// Done by this run.
    pub done: u64,
    /// Done by earlier runs into the same output (from the journal), not read again.
    pub already_done: u64,
    pub skipped: u64,
    pub failed: Vec<GranuleNote>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GranuleNote {
    pub granule: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    pub plan_s: f64,
    pub extract_s: f64,
    pub total_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GranuleDetail {
    pub granule: String,
    pub rows: u64,
    pub bytes_read: u64,
    pub requests: u64,
    /// Decompressed bytes of the chunks read.
    pub bytes_decoded: u64,
    /// Bytes fetched twice by planned reads (zero unless something is wrong).
    pub refetched_bytes: u64,
    /// Chunk-sized reads the read planner did not announce.
    pub unplanned_reads: u64,
    /// Bytes fetched for the metadata walk (remote granules).
    pub metadata_bytes: u64,
    /// Sequential round trips to the granule's storage (remote granules).
    #[serde(default)]
    pub round_trips: u64,
    pub seconds: f64,
    pub beams: Vec<BeamCountRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BeamCountRecord {
    pub beam: String,
    pub strength: String,
    pub segments: u64,
    pub kept: u64,
}

impl From<&BeamCount> for BeamCountRecord {
    fn from(count: &BeamCount) -> Self {
        BeamCountRecord {
            beam: count.beam.clone(),
            strength: count.strength.clone(),
            segments: count.segments,
            kept: count.kept,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRecord {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

impl From<&CommittedFile> for FileRecord {
    fn from(file: &CommittedFile) -> Self {
        FileRecord {
            path: file.path.clone(),
            rows: file.rows,
            bytes: file.bytes,
        }
    }
}

impl RunReport {
    /// 0 when every planned granule was done or skipped, 2 when some failed.
    pub fn exit_code(&self) -> u8 {
        if self.granules.failed.is_empty() {
            0
        } else {
            2
        }
    }

    /// Writes the report to `<output>/_runs/<run id>.json`; returns where.
    pub fn write(&self, output: &Output) -> Result<String, SinkError> {
        let relative = crate::dataset::layout::run_file(&self.run_id, "json");
        let text =
            serde_json::to_vec_pretty(self).map_err(|err| SinkError::Encode(err.to_string()))?;
        output.put(&relative, text)?;
        Ok(format!("{output}/{relative}"))
    }
}

/// Every run report under `output`'s `_runs/`, oldest first. A report
/// that cannot be parsed is an error naming it.
pub fn run_reports(output: &Output) -> Result<Vec<RunReport>, SinkError> {
    let mut reports = Vec::new();
    for name in output.list_names(RUNS)? {
        if !name.ends_with(".json") {
            continue;
        }
        let relative = format!("{RUNS}/{name}");
        let bytes = output.get(&relative)?;
        let report: RunReport = serde_json::from_slice(&bytes).map_err(|err| SinkError::Io {
            path: format!("{output}/{relative}"),
            message: format!("not a run report: {err}"),
        })?;
        reports.push(report);
    }
    reports.sort_by(|a, b| (a.started, &a.run_id).cmp(&(b.started, &b.run_id)));
    Ok(reports)
}

/// A run id: start time and a short random suffix, safe as a file name.
pub fn new_run_id(started: DateTime<Utc>) -> String {
    let nanos = started.timestamp_subsec_nanos();
    let salt = (u64::from(std::process::id()) << 32) ^ u64::from(nanos);
    format!(
        "{}-{:08x}",
        started.format("%Y%m%dT%H%M%SZ"),
        (salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
    )
}
