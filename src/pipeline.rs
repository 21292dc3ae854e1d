//! The run: every planned granule read, filtered and written, in parallel on
//! a rayon pool sized by `--threads`; one granule's failure is recorded and
//! the run goes on.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::granule::reader::ReaderFile;
use crate::granule::{self, GranuleError};
use crate::plan::{Plan, PlannedGranule, Shard};
use crate::report::{
    self, BeamCountRecord, FileRecord, GranuleDetail, GranuleNote, GranuleTally, RunReport, Timings,
};
use crate::sink::{self, WriterSettings};
use crate::store;

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Worker threads; every core when `None`.
    pub threads: Option<usize>,
    pub shard: Option<Shard>,
    /// Remove an earlier run's output first.
    pub fresh: bool,
    pub settings: WriterSettings,
}

/// What became of one granule.
enum Outcome {
    Done(GranuleDetail, Vec<String>),
    Skipped(String),
    Failed(String),
}

/// Runs `plan`; writes the dataset and the run report. Errors only for
/// problems with the output itself; granule failures are in the report.
pub fn run(
    plan: &Plan,
    options: &RunOptions,
    plan_seconds: f64,
) -> anyhow::Result<(RunReport, String)> {
    let started = Utc::now();
    let clock = Instant::now();
    if options.fresh {
        plan.output
            .remove_dataset()
            .map_err(|err| anyhow::anyhow!("--fresh: {err}"))?;
    }
    plan.output
        .prepare()
        .map_err(|err| anyhow::anyhow!("output.path: {err}"))?;

    let mut skipped_granules: Vec<GranuleNote> = Vec::new();
    let mut to_read: Vec<&PlannedGranule> = Vec::new();
    let mut planned = 0u64;
    for granule in &plan.granules {
        if options
            .shard
            .is_some_and(|shard| !shard.owns(&granule.granule.name))
        {
            continue;
        }
        planned += 1;
        match &granule.skip {
            Some(reason) => skipped_granules.push(GranuleNote {
                granule: granule.granule.name.clone(),
                reason: reason.clone(),
            }),
            None => to_read.push(granule),
        }
    }

    let progress = ProgressBar::new(to_read.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} granules {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let interactive = !progress.is_hidden();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0))
        .build()
        .map_err(|err| anyhow::anyhow!("--threads: {err}"))?;
    let total = to_read.len();
    let done_count = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<(String, Outcome)> = pool.install(|| {
        to_read
            .par_iter()
            .map(|granule| {
                let outcome = process_guarded(plan, granule, &options.settings);
                let position = done_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let line = match &outcome {
                    Outcome::Done(detail, _) => format!(
                        "{}: {} rows, {} requests, {:.1} MB fetched, {:.1} MB decoded",
                        granule.granule.name,
                        detail.rows,
                        detail.requests,
                        detail.bytes_read as f64 / 1e6,
                        detail.bytes_decoded as f64 / 1e6
                    ),
                    Outcome::Skipped(reason) => {
                        format!("{}: skipped ({reason})", granule.granule.name)
                    }
                    Outcome::Failed(reason) => {
                        format!("{}: FAILED: {reason}", granule.granule.name)
                    }
                };
                if interactive {
                    progress.inc(1);
                    progress.set_message(line);
                } else {
                    eprintln!("[{position}/{total}] {line}");
                }
                (granule.granule.name.clone(), outcome)
            })
            .collect()
    });
    progress.finish_and_clear();

    let mut tally = GranuleTally {
        planned,
        ..GranuleTally::default()
    };
    let mut details = Vec::new();
    let mut warnings = plan.warnings.clone();
    for (name, outcome) in outcomes {
        match outcome {
            Outcome::Done(detail, notes) => {
                details.push(detail);
                warnings.extend(notes);
            }
            Outcome::Skipped(reason) => skipped_granules.push(GranuleNote {
                granule: name,
                reason,
            }),
            Outcome::Failed(reason) => tally.failed.push(GranuleNote {
                granule: name,
                reason,
            }),
        }
    }
    tally.done = details.len() as u64;
    tally.skipped = skipped_granules.len() as u64;
    let extract_s = clock.elapsed().as_secs_f64();
    let report = RunReport {
        run_id: report::new_run_id(started),
        name: plan.name.clone(),
        manifest: plan.manifest_path.display().to_string(),
        manifest_sha256: plan.manifest_sha256.clone(),
        started,
        finished: Utc::now(),
        shard: options.shard.map(|shard| shard.to_string()),
        rows_written: details.iter().map(|detail| detail.rows).sum(),
        bytes_read: details.iter().map(|detail| detail.bytes_read).sum(),
        requests: details.iter().map(|detail| detail.requests).sum(),
        bytes_decoded: details.iter().map(|detail| detail.bytes_decoded).sum(),
        granules: tally,
        warnings,
        timings: Timings {
            plan_s: plan_seconds,
            extract_s,
            total_s: plan_seconds + clock.elapsed().as_secs_f64(),
        },
        skipped_granules,
        details,
    };
    let path = report.write(&plan.output)?;
    Ok((report, path))
}

/// `process`, with a panic in the decoder turned into this granule's failure.
fn process_guarded(plan: &Plan, granule: &PlannedGranule, settings: &WriterSettings) -> Outcome {
    match std::panic::catch_unwind(AssertUnwindSafe(|| process(plan, granule, settings))) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(err)) => Outcome::Failed(err.to_string()),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_string());
            Outcome::Failed(format!("internal error while decoding: {message}"))
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum GranuleFailure {
    #[error("cannot open: {0}")]
    Open(#[from] store::StoreError),
    #[error(transparent)]
    Decode(#[from] GranuleError),
    #[error("writing output: {0}")]
    Write(#[from] sink::SinkError),
}

fn process(
    plan: &Plan,
    planned: &PlannedGranule,
    settings: &WriterSettings,
) -> Result<Outcome, GranuleFailure> {
    let clock = Instant::now();
    let name = &planned.granule.name;
    let opened = store::open(&planned.granule, &plan.access)?;
    let counters = opened.counters.clone();
    let file = ReaderFile::open_with_prefetch(opened.storage, opened.prefetch)?;
    let meta = granule::granule_meta(&file, name)?;
    if let (Some(window), Some(start), Some(end)) = (plan.request.time_window, meta.start, meta.end)
        && !window.meets(start, end)
    {
        return Ok(Outcome::Skipped("outside the time window".to_string()));
    }
    let extracted = granule::extract(&file, name, meta, &plan.request)?;
    let files = sink::write_granule(
        &plan.output,
        name,
        &extracted.batch,
        &plan.partition_by,
        settings,
    )?;
    let detail = GranuleDetail {
        granule: name.clone(),
        rows: extracted.batch.num_rows() as u64,
        bytes_read: counters.bytes(),
        requests: counters.requests(),
        bytes_decoded: file.decoded_bytes(),
        refetched_bytes: counters
            .refetched
            .load(std::sync::atomic::Ordering::Relaxed),
        unplanned_reads: counters
            .unplanned
            .load(std::sync::atomic::Ordering::Relaxed),
        metadata_bytes: counters.metadata.load(std::sync::atomic::Ordering::Relaxed),
        seconds: clock.elapsed().as_secs_f64(),
        beams: extracted.beams.iter().map(BeamCountRecord::from).collect(),
        files: files.iter().map(FileRecord::from).collect(),
    };
    Ok(Outcome::Done(detail, extracted.warnings))
}
