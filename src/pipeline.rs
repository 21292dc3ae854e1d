//! The run: the planned granules not yet done are read and filtered on a
//! rayon pool sized by `--threads` (network reads go through the shared
//! tokio runtime, merged and concurrent, see `store::remote`), handed over a
//! bounded channel to the dataset writer on this thread, which buffers rows
//! per partition and commits them at checkpoints through the journal
//! (`sink::journal`). One granule's failure is recorded and the run goes on;
//! a killed run resumes where its last checkpoint ended.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::granule::name::GranuleKey;
use crate::granule::reader::ReaderFile;
use crate::granule::{self, GranuleError, GranuleName, TimeWindow};
use crate::killpoint;
use crate::plan::{Plan, PlannedGranule, Shard};
use crate::report::quicklook::{self, RunTally};
use crate::report::stats::{Binning, Tally};
use crate::report::{
    self, BeamCountRecord, FileRecord, GranuleDetail, GranuleNote, GranuleTally, RunReport, Timings,
};
use crate::sink::{self, DatasetWriter, WriterLock, journal};
use crate::store;

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Worker threads; every core when `None`.
    pub threads: Option<usize>,
    pub shard: Option<Shard>,
    /// Remove an earlier run's output first.
    pub fresh: bool,
}

/// A granule handed to the writer, waiting for its checkpoint: its detail
/// (when read), notes for the report, and why it had no rows (when skipped).
type Waiting = (Option<GranuleDetail>, Vec<String>, Option<String>);

/// What the report says of granules: recorded only once a checkpoint
/// commits them.
#[derive(Default)]
struct Ledger {
    waiting: HashMap<String, Waiting>,
    details: Vec<GranuleDetail>,
    files: Vec<FileRecord>,
    skipped_granules: Vec<GranuleNote>,
    warnings: Vec<String>,
}

impl Ledger {
    /// Commits what the writer holds (while the run still holds its
    /// lock) and moves the granules it committed from waiting into the
    /// report.
    fn checkpoint(
        &mut self,
        writer: &mut DatasetWriter,
        lock: &WriterLock,
    ) -> Result<(), sink::SinkError> {
        lock.check()?;
        let Some(record) = writer.checkpoint()? else {
            return Ok(());
        };
        self.files.extend(record.files.iter().map(FileRecord::from));
        for name in &record.granules {
            if let Some((detail, notes, skipped)) = self.waiting.remove(name) {
                self.details.extend(detail);
                self.warnings.extend(notes);
                if let Some(reason) = skipped {
                    self.skipped_granules.push(GranuleNote {
                        granule: name.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

/// What became of one granule.
enum Outcome {
    /// With what the quick-look counts of its rows.
    Done(Box<GranuleDetail>, Vec<String>, RecordBatch, Box<Tally>),
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
    let output_error = |err: sink::SinkError| anyhow::anyhow!("output.path: {err}");
    plan.output.prepare().map_err(output_error)?;
    let run_id = report::new_run_id(started);
    let worker = match options.shard {
        Some(shard) => format!("s{}of{}", shard.index, shard.count),
        None => "all".to_string(),
    };
    // Held until the report is written: one writer per worker and output.
    let lock = WriterLock::acquire(&plan.output, &worker, &run_id).map_err(output_error)?;
    let mut warnings = plan.warnings.clone();
    // The earlier dataset is deleted while this run reads (`Removal`); a
    // removal an earlier `--fresh` began is finished first, whatever this
    // run asks.
    let pending_removal = plan.output.removal_pending().map_err(output_error)?;
    if pending_removal && !options.fresh {
        let note = "finished removing the dataset an interrupted --fresh run began to remove";
        eprintln!("{note}");
        warnings.push(note.to_string());
    }
    let removal = (options.fresh || pending_removal)
        .then(|| plan.output.remove_dataset())
        .transpose()
        .map_err(|err| anyhow::anyhow!("--fresh: {err}"))?;
    plan.output.mark_dataset().map_err(output_error)?;
    let identity = journal::Identity {
        manifest_sha256: plan.manifest_sha256.clone(),
        dataset_sha256: plan.dataset_sha256.clone(),
        window: plan
            .request
            .time_window
            .map_or([i64::MIN, i64::MAX], |window| {
                [window.start_us, window.end_us]
            }),
    };
    let recovered = journal::recover(&plan.output, &identity, &worker).map_err(output_error)?;
    if !recovered.undone.is_empty() {
        let note = format!(
            "{} journal records named files that are gone ({}): their other files were \
             removed and their granules are read again",
            recovered.undone.len(),
            recovered.undone.join(", ")
        );
        eprintln!("{note}");
        warnings.push(note);
    }
    if recovered.republished > 0 || recovered.orphans_removed > 0 {
        let note = format!(
            "recovered an interrupted run: moved {} committed files into place, removed {} uncommitted files",
            recovered.republished, recovered.orphans_removed
        );
        eprintln!("{note}");
        warnings.push(note);
    }

    // Granules already in the dataset by whatever revision or release
    // (a manifest without `release` reads the newest CMR lists, which
    // changes): another of one of them is not read, or the same segments
    // would be there twice.
    let any_release = |name: &GranuleName| {
        let mut key = name.key();
        key.5.clear();
        key
    };
    let done_revisions: HashMap<GranuleKey, &String> = recovered
        .done
        .iter()
        .filter_map(|name| GranuleName::parse(name).map(|parsed| (any_release(&parsed), name)))
        .collect();
    let replacement = if plan.replace_newer {
        replacements(plan, &recovered, &done_revisions, options.shard.is_some())
            .map_err(|message| anyhow::anyhow!("update: newer_revisions: {message}"))?
    } else {
        Replacement::default()
    };
    if !replacement.records.is_empty() {
        let note = format!(
            "replacing {} granules by newer revisions ({}): their journal records ({}) are \
             written again with their other {} granules, in one commit",
            replacement.newer.len(),
            replacement
                .newer
                .iter()
                .map(|(new, old)| format!("{old} -> {new}"))
                .collect::<Vec<_>>()
                .join(", "),
            replacement.records.len(),
            replacement.reread.len()
        );
        eprintln!("{note}");
        warnings.push(note);
    }
    let mut skipped_granules: Vec<GranuleNote> = Vec::new();
    // With the rows of the window each was read for dropped, for granules
    // the dataset holds from a narrower window (a dataset that grows).
    let mut to_read: Vec<(&PlannedGranule, Option<TimeWindow>)> = Vec::new();
    let mut grown = 0;
    let mut tally = GranuleTally::default();
    for granule in &plan.granules {
        if options
            .shard
            .is_some_and(|shard| !shard.owns(&granule.granule.name))
        {
            continue;
        }
        tally.planned += 1;
        let name = &granule.granule.name;
        if replacement.newer.contains_key(name) || replacement.reread.contains(name) {
            to_read.push((granule, None));
        } else if let Some((newer, _)) = replacement.newer.iter().find(|(_, old)| *old == name) {
            skipped_granules.push(GranuleNote {
                granule: name.clone(),
                reason: format!("replaced by its newer revision {newer}"),
            });
        } else if let Some(reason) = &granule.skip {
            skipped_granules.push(GranuleNote {
                granule: granule.granule.name.clone(),
                reason: reason.clone(),
            });
        } else if let Some(covered) = recovered.done.contains(&granule.granule.name).then(|| {
            recovered
                .covered
                .get(&granule.granule.name)
                .copied()
                .unwrap_or(identity.window)
        }) {
            if covers(covered, &granule.granule.name, identity.window) {
                tally.already_done += 1;
            } else {
                grown += 1;
                let except = TimeWindow {
                    start_us: covered[0],
                    end_us: covered[1],
                };
                to_read.push((granule, Some(except)));
            }
        } else if let Some(other) = GranuleName::parse(&granule.granule.name)
            .and_then(|parsed| done_revisions.get(&any_release(&parsed)))
        {
            skipped_granules.push(GranuleNote {
                granule: granule.granule.name.clone(),
                reason: format!(
                    "another revision of this granule ({other}) is already in the dataset; \
                     its rows are kept (--fresh reads this one instead)"
                ),
            });
        } else {
            to_read.push((granule, None));
        }
    }
    let replacing: BTreeSet<String> = replacement
        .newer
        .keys()
        .chain(&replacement.reread)
        .cloned()
        .collect();
    let replaced_records = replacement.records.clone();
    if grown > 0 {
        let note = format!(
            "growing the dataset's time window: {grown} granules it holds are read again for \
             their rows outside the window they were read for"
        );
        eprintln!("{note}");
        warnings.push(note);
    }
    if tally.already_done > 0 {
        eprintln!(
            "resuming: {} granules already done, {} to read",
            tally.already_done,
            to_read.len()
        );
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
    let mut writer = DatasetWriter::new(
        &plan.output,
        &plan.partition_by,
        plan.writer,
        &run_id,
        &worker,
        &identity,
    )
    .map_err(output_error)?;
    writer.replace_records(replaced_records);

    let mut ledger = Ledger {
        skipped_granules,
        warnings,
        ..Ledger::default()
    };

    let region: Vec<Vec<[f64; 2]>> = plan
        .request
        .region
        .polygons()
        .flat_map(|polygon| std::iter::once(polygon.exterior()).chain(polygon.interiors()))
        .map(|ring| ring.coords().map(|c| [c.x, c.y]).collect())
        .collect();
    // The quick-look's counts of the rows written, kept as they are
    // decoded: the quick-look reads back only the dataset's other files.
    let binning = quicklook::run_binning(&plan.request.schema, &region);
    let mut counted = Tally::new(&binning);

    let cancel = AtomicBool::new(false);
    // A replacement's granules are read first, on their own, and committed
    // in one record with it; then the rest.
    let (first, rest): (Vec<_>, Vec<_>) = to_read
        .iter()
        .copied()
        .partition(|(granule, _)| replacing.contains(&granule.granule.name));
    let mut position = 0;
    let mut written: Result<(), sink::SinkError> = Ok(());
    for (phase, granules) in [first, rest].iter().enumerate() {
        let replacement_phase = phase == 0 && !replacing.is_empty();
        if granules.is_empty() && !replacement_phase {
            continue;
        }
        let mut replacement_failed: Option<(String, String)> = None;
        // A replacement's quick-look counts, kept apart until it commits.
        let mut replacement_counted = Tally::new(&binning);
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<(String, Outcome)>(pool.current_num_threads() * 2);
        // On a writer error the receiver is dropped as this closure returns,
        // so decode threads blocked on the full channel wake (their send
        // fails) and, seeing `cancel`, take no more granules: the scope ends.
        written = std::thread::scope(|scope| {
            let receiver = receiver;
            let cancel = &cancel;
            let pool = &pool;
            let binning = &binning;
            scope.spawn(move || {
                pool.install(|| {
                    granules
                        .par_iter()
                        .for_each_with(sender, |sender, (granule, except)| {
                            if cancel.load(Ordering::Relaxed) {
                                return;
                            }
                            let outcome = process_guarded(plan, granule, *except, binning);
                            let _ = sender.send((granule.granule.name.clone(), outcome));
                        })
                })
            });
            for (name, outcome) in receiver.iter() {
                position += 1;
                if let (true, Outcome::Failed(reason)) = (replacement_phase, &outcome) {
                    replacement_failed.get_or_insert((name.clone(), reason.clone()));
                }
                let line = match &outcome {
                    Outcome::Done(detail, _, _, _) => format!(
                        "{name}: {} rows, {} requests, {:.1} MB fetched, {:.1} MB decoded",
                        detail.rows,
                        detail.requests,
                        detail.bytes_read as f64 / 1e6,
                        detail.bytes_decoded as f64 / 1e6
                    ),
                    Outcome::Skipped(reason) => format!("{name}: skipped ({reason})"),
                    Outcome::Failed(reason) => format!("{name}: FAILED: {reason}"),
                };
                if interactive {
                    progress.inc(1);
                    progress.set_message(line);
                } else {
                    eprintln!("[{position}/{total}] {line}");
                }
                let added = match outcome {
                    Outcome::Done(detail, notes, batch, tally) => {
                        writer.add(&name, &batch).map(|()| {
                            ledger.waiting.insert(name, (Some(*detail), notes, None));
                            if replacement_phase {
                                replacement_counted =
                                    std::mem::take(&mut replacement_counted).merge(*tally);
                            } else {
                                counted = std::mem::take(&mut counted).merge(*tally);
                            }
                        })
                    }
                    Outcome::Skipped(reason) => writer.add_empty(&name).map(|()| {
                        ledger
                            .waiting
                            .insert(name, (None, Vec::new(), Some(reason)));
                    }),
                    Outcome::Failed(reason) => {
                        tally.failed.push(GranuleNote {
                            granule: name,
                            reason,
                        });
                        Ok(())
                    }
                };
                let result = added.and_then(|()| {
                    if writer.checkpoint_due() {
                        ledger.checkpoint(&mut writer, &lock)
                    } else {
                        Ok(())
                    }
                });
                if let Err(err) = result {
                    cancel.store(true, Ordering::Relaxed);
                    return Err(err);
                }
            }
            Ok(())
        });
        if written.is_err() {
            break;
        }
        if replacement_phase {
            match replacement_failed {
                // The old records stay; what this phase read is dropped.
                Some((failed, reason)) => {
                    writer.discard_uncommitted();
                    let failed_names: BTreeSet<&String> =
                        tally.failed.iter().map(|note| &note.granule).collect();
                    for (granule, _) in granules {
                        let name = &granule.granule.name;
                        ledger.waiting.remove(name);
                        if failed_names.contains(name) {
                            continue;
                        }
                        if let Some(old) = replacement.newer.get(name) {
                            ledger.skipped_granules.push(GranuleNote {
                                granule: name.clone(),
                                reason: format!(
                                    "not yet replacing {old}: {failed}, read for the \
                                     replacement, failed ({reason}); the next run tries again"
                                ),
                            });
                        } else {
                            // Read again for the replacement: its rows stay
                            // in its record.
                            tally.already_done += 1;
                        }
                    }
                    for note in &mut ledger.skipped_granules {
                        if let Some((newer, _)) = replacement
                            .newer
                            .iter()
                            .find(|(_, old)| **old == note.granule)
                        {
                            note.reason = format!(
                                "kept: its newer revision {newer} could not replace it in this run"
                            );
                        }
                    }
                }
                None => {
                    writer.replacement_complete();
                    counted = std::mem::take(&mut counted).merge(replacement_counted);
                }
            }
        }
        written = ledger.checkpoint(&mut writer, &lock);
        if written.is_err() {
            break;
        }
    }
    progress.finish_and_clear();
    written.map_err(output_error)?;
    drop(writer);

    let Ledger {
        details,
        files,
        skipped_granules,
        mut warnings,
        ..
    } = ledger;
    if let Some(Err(err)) = removal.map(sink::Removal::finish) {
        let note = format!("--fresh: the earlier dataset was not all removed: {err}");
        eprintln!("{note}");
        warnings.push(note);
    }
    tally.done = details.len() as u64;
    tally.skipped = skipped_granules.len() as u64;
    let extract_s = clock.elapsed().as_secs_f64();
    let report = RunReport {
        run_id,
        name: plan.name.clone(),
        manifest: plan.manifest_path.display().to_string(),
        manifest_sha256: plan.manifest_sha256.clone(),
        manifest_text: plan.manifest_text.clone(),
        region,
        tracks: plan.tracks.rgts.iter().copied().collect(),
        started,
        finished: Utc::now(),
        shard: options.shard.map(|shard| shard.to_string()),
        rows_written: files.iter().map(|file| file.rows).sum(),
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
        files,
    };
    let path = report.write(&plan.output).map_err(output_error)?;
    let run = RunTally {
        tally: counted,
        files: report.files.iter().map(|file| file.path.clone()).collect(),
    };
    write_quicklook(plan, &report.run_id, &run);
    Ok((report, path))
}

/// Granules replaced by newer revisions (`update: newer_revisions`).
#[derive(Default)]
struct Replacement {
    /// Each newer granule this run reads, and the one it replaces.
    newer: BTreeMap<String, String>,
    /// The journal records holding the replaced granules: rewritten whole.
    records: Vec<String>,
    /// Their other granules, read again.
    reread: BTreeSet<String>,
}

/// The granules of `plan` that are newer revisions (or releases) of
/// granules the dataset holds, and what replacing them takes: every
/// journal record holding one is written again, in one commit, with its
/// other granules read again. Refused (one line, why) where that cannot
/// keep every row exactly once: a sharded run (another worker may write
/// the same records), a record granule this run's source does not list,
/// or a granule in two records (a grown dataset).
fn replacements(
    plan: &Plan,
    recovered: &journal::Recovered,
    done_revisions: &HashMap<GranuleKey, &String>,
    sharded: bool,
) -> Result<Replacement, String> {
    let version = |name: &GranuleName| {
        (
            name.release.parse::<u32>().unwrap_or(0),
            name.revision.parse::<u32>().unwrap_or(0),
        )
    };
    let mut replacement = Replacement::default();
    for granule in plan.to_read() {
        let name = &granule.granule.name;
        if recovered.done.contains(name) {
            continue;
        }
        let Some(parsed) = GranuleName::parse(name) else {
            continue;
        };
        let mut key = parsed.key();
        key.5.clear();
        let Some(&old) = done_revisions.get(&key) else {
            continue;
        };
        let old_parsed = GranuleName::parse(old).ok_or("unreadable granule name")?;
        if version(&parsed) > version(&old_parsed) {
            replacement.newer.insert(name.clone(), old.clone());
        }
    }
    if replacement.newer.is_empty() {
        return Ok(replacement);
    }
    if sharded {
        return Err(
            "replacing granules needs a run without --shard (the records hold \
                    granules of other workers' runs)"
                .into(),
        );
    }
    let replaced: BTreeSet<&String> = replacement.newer.values().collect();
    let mut records: BTreeSet<&String> = BTreeSet::new();
    for old in &replaced {
        records.extend(recovered.records_of.get(*old).into_iter().flatten());
    }
    let offered: BTreeSet<&String> = plan.to_read().map(|g| &g.granule.name).collect();
    for (granule, names) in &recovered.records_of {
        if replaced.contains(granule) || !names.iter().any(|name| records.contains(name)) {
            continue;
        }
        if names.len() > 1 {
            return Err(format!(
                "{granule} is in {} journal records (the dataset grew); replacing the records \
                 holding it is not supported: run with --fresh",
                names.len()
            ));
        }
        if !offered.contains(granule) {
            return Err(format!(
                "record {} also holds {granule}, which this run's source and window do not \
                 offer; run with them as they were, or with --fresh",
                names[0]
            ));
        }
        replacement.reread.insert(granule.clone());
    }
    replacement.records = records.into_iter().cloned().collect();
    Ok(replacement)
}

/// Whether a granule the dataset holds, read for the time window
/// `covered`, has no rows of `window` left to read: the part of its time
/// range (from its name, as planning takes it: the start and 600 s on)
/// inside `window` lies inside `covered`. A name that gives no time needs
/// all of `window` covered.
fn covers(covered: [i64; 2], name: &str, window: [i64; 2]) -> bool {
    let (start, end) = match GranuleName::parse(name) {
        Some(parsed) => {
            let start = parsed.start.timestamp_micros();
            (start, start.saturating_add(600_000_000))
        }
        None => (i64::MIN, i64::MAX),
    };
    let (start, end) = (start.max(window[0]), end.min(window[1]));
    start > end || (covered[0] <= start && end <= covered[1])
}

/// `process`, with a panic in the decoder turned into this granule's failure.
fn process_guarded(
    plan: &Plan,
    granule: &PlannedGranule,
    except: Option<TimeWindow>,
    binning: &Binning,
) -> Outcome {
    let work = || process(plan, granule, except, binning);
    match std::panic::catch_unwind(AssertUnwindSafe(work)) {
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
}

/// Reads one granule; `except`: a time window whose rows are dropped (the
/// dataset holds them already).
fn process(
    plan: &Plan,
    planned: &PlannedGranule,
    except: Option<TimeWindow>,
    binning: &Binning,
) -> Result<Outcome, GranuleFailure> {
    let growing;
    let request = match except {
        Some(_) => {
            growing = granule::Request {
                except_window: except,
                ..plan.request.clone()
            };
            &growing
        }
        None => &plan.request,
    };
    let clock = Instant::now();
    let name = &planned.granule.name;
    let opened = store::open(&planned.granule, &plan.access)?;
    let counters = opened.counters.clone();
    let file = ReaderFile::open_with_prefetch(opened.storage, opened.prefetch)?;
    killpoint::reached("fetch");
    granule::preload(&file, request);
    let meta = granule::granule_meta(&file, name)?;
    if let (Some(window), Some(start), Some(end)) = (request.time_window, meta.start, meta.end)
        && !window.meets(start, end)
    {
        return Ok(Outcome::Skipped("outside the time window".to_string()));
    }
    let extracted = granule::extract(&file, name, meta, request)?;
    killpoint::reached("decode");
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
        round_trips: counters
            .round_trips
            .load(std::sync::atomic::Ordering::Relaxed),
        seconds: clock.elapsed().as_secs_f64(),
        beams: extracted.beams.iter().map(BeamCountRecord::from).collect(),
    };
    let mut tally = Tally::new(binning);
    tally.add_granule(
        &extracted.batch,
        name,
        extracted
            .beams
            .iter()
            .map(|beam| (beam.beam.as_str(), beam.strength.as_str(), beam.kept)),
    );
    Ok(Outcome::Done(
        Box::new(detail),
        extracted.warnings,
        extracted.batch,
        Box::new(tally),
    ))
}

/// Writes the quick-look report `_runs/<run id>.html`, from what `run`
/// counted of its files and the dataset's other files read back. The run
/// is done by now: a failure here is a warning, not a failed run.
fn write_quicklook(plan: &Plan, run_id: &str, run: &RunTally) {
    let written = quicklook::summarize(&plan.output.to_string(), None, Some(run))
        .and_then(|summary| quicklook::render_html(&summary))
        .and_then(|html| {
            plan.output
                .put(
                    &crate::dataset::layout::run_file(run_id, "html"),
                    html.into_bytes(),
                )
                .map_err(|err| crate::report::ReportError(err.to_string()))
        });
    if let Err(err) = written {
        eprintln!("warning: quick-look report not written: {err}");
    }
}
