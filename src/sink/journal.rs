//! The run journal (`_runs/journal/`): one record per checkpoint of each
//! worker, listing the granules whose every row is in the record's files.
//! Writing the record is the commit point; moving the files into place
//! follows and is redone by `recover` if the worker died in between.
//!
//! The order that makes a SIGKILL at any moment safe:
//! 1. files are written under `_runs/staging/` (hidden) and made durable;
//! 2. the record is written whole (temporary file, fsync, rename; one PUT);
//! 3. each file is moved to its partition folder.
//!
//! Before 2 nothing is visible and nothing is done: the staged files are
//! orphans, removed by the next run, which reads those granules again.
//! After 2 the granules are done; any file still staged is moved by the next
//! run. A granule is in at most one record per time window: a run that
//! grows the dataset's window reads a granule it holds again only for the
//! rows outside the window it was read for, so no row is written twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::commit::is_hidden;
use super::{Output, SinkError};

/// One checkpoint of one worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommitRecord {
    pub run_id: String,
    /// The worker: `all`, or `s<K>of<N>` for `--shard K/N`.
    pub worker: String,
    pub sequence: u64,
    pub manifest_sha256: String,
    /// `Identity::dataset_sha256` of the run (absent in records written
    /// before datasets could grow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_sha256: Option<String>,
    /// `Identity::window` of the run (absent as above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<[i64; 2]>,
    /// Records this one replaces (`update: newer_revisions`): its granules
    /// hold every row those records held but for the granules a newer
    /// revision replaced. Committing this record retires them: their files
    /// and then the records are removed (finished by `recover` when a run
    /// died part way).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
    /// Granules whose rows are all in `files` (some with no rows).
    pub granules: Vec<String>,
    pub files: Vec<CommittedFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommittedFile {
    /// Name under `_runs/staging/`.
    pub staged: String,
    /// Path under the dataset root, where readers see it.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

impl CommitRecord {
    /// Checks that every file the record names is where a run puts one: a
    /// plain name under `_runs/staging/`, and `key=value/.../part-*.parquet`
    /// under the root. A crafted record must not move or remove files
    /// anywhere else.
    fn check(&self, name: &str, output: &Output) -> Result<(), SinkError> {
        if let Some(bad) = self
            .replaces
            .iter()
            .find(|record| !is_plain_component(record) || !record.ends_with(".json"))
        {
            return Err(SinkError::Io {
                path: format!("{output}/{}/{name}", crate::dataset::layout::JOURNAL),
                message: format!(
                    "journal record replaces '{}', which is not a journal record; remove the \
                     record or run with --fresh",
                    bad.escape_debug()
                ),
            });
        }
        for file in &self.files {
            let bad = if !is_staged_name(&file.staged) {
                Some(&file.staged)
            } else if !is_data_path(&file.path) {
                Some(&file.path)
            } else {
                None
            };
            if let Some(bad) = bad {
                return Err(SinkError::Io {
                    path: format!("{output}/{}/{name}", crate::dataset::layout::JOURNAL),
                    message: format!(
                        "journal record names '{}', which is not a file of the dataset; \
                         remove the record or run with --fresh",
                        bad.escape_debug()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The record's file name; unique per worker and run.
    pub fn file_name(&self) -> String {
        format!("{}-{}-{:06}.json", self.run_id, self.worker, self.sequence)
    }

    /// Writes the record (the commit point), then publishes its files.
    pub fn commit(&self, output: &Output) -> Result<(), SinkError> {
        let bytes =
            serde_json::to_vec_pretty(self).map_err(|err| SinkError::Encode(err.to_string()))?;
        output.put_journal_record(&self.file_name(), bytes)?;
        if !self.replaces.is_empty() {
            let replaced: Vec<(String, CommitRecord)> = records(output)?
                .into_iter()
                .filter(|(name, _)| self.replaces.contains(name))
                .collect();
            for (name, record) in replaced {
                retire(output, &name, &record)?;
            }
        }
        for file in &self.files {
            output.publish(&file.staged, &file.path)?;
            crate::killpoint::reached("publish");
        }
        Ok(())
    }
}

/// Whether `name` is a staged file's name: one plain component.
fn is_staged_name(name: &str) -> bool {
    name.ends_with(".parquet.staged") && is_plain_component(name)
}

/// What a run's rows depend on, written into each of its records. A run
/// adds to a dataset whose records it matches: written from the same
/// manifest, or from one that differs only by a wider time window or
/// another source (a dataset that grows: a new cycle every 91 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The manifest's text.
    pub manifest_sha256: String,
    /// Everything the rows depend on but the time window and the granules
    /// offered: product, release, region, variables, filters, partitioning.
    pub dataset_sha256: String,
    /// The run's time window, microseconds since the Unix epoch, inclusive;
    /// open ends are `i64::MIN` / `i64::MAX`.
    pub window: [i64; 2],
}

impl Identity {
    /// Whether this run may add to a dataset holding `record`; if not, why.
    fn admits(&self, record: &CommitRecord) -> Result<(), String> {
        if record.manifest_sha256 == self.manifest_sha256 {
            return Ok(());
        }
        if record.dataset_sha256.as_deref() != Some(self.dataset_sha256.as_str()) {
            return Err(
                "was written from a manifest whose region, variables, filters, release \
                        or partitioning differ (a dataset grows only by its time window and \
                        source)"
                    .into(),
            );
        }
        match record.window {
            Some([start, end]) if self.window[0] <= start && end <= self.window[1] => Ok(()),
            Some(window) => Err(format!(
                "holds rows of the time window {}, which this manifest's {} does not contain \
                 (a dataset grows by an earlier time.start or a later time.end)",
                show_window(window),
                show_window(self.window)
            )),
            None => Err("was written from another manifest".into()),
        }
    }
}

/// `[start, end]` in RFC 3339, open ends as `..`.
fn show_window([start, end]: [i64; 2]) -> String {
    let show = |us: i64, open: i64| {
        if us == open {
            "..".to_string()
        } else {
            chrono::DateTime::from_timestamp_micros(us)
                .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_else(|| us.to_string())
        }
    };
    format!("[{}, {}]", show(start, i64::MIN), show(end, i64::MAX))
}

/// Whether `path` is where a run puts a data file: hive folders
/// (`key=value`) then `part-*.parquet`, relative, nothing hidden.
fn is_data_path(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let Some(file) = parts.pop() else {
        return false;
    };
    file.starts_with("part-")
        && file.ends_with(".parquet")
        && is_plain_component(file)
        && parts.iter().all(|folder| {
            is_plain_component(folder)
                && folder
                    .split_once('=')
                    .is_some_and(|(key, value)| !key.is_empty() && !value.is_empty())
        })
}

/// A file or folder name with no way out of its folder and nothing hidden.
fn is_plain_component(name: &str) -> bool {
    !name.is_empty()
        && name != ".."
        && !is_hidden(name)
        && !name.contains(['/', '\\', ':'])
        && !name.chars().any(char::is_control)
}

/// Removes a replaced record's files (published or still staged), then
/// the record: killed in between, the replacing record names it again.
fn retire(output: &Output, name: &str, record: &CommitRecord) -> Result<(), SinkError> {
    for file in &record.files {
        output.remove_file(&file.path)?;
        output.remove_staged(&file.staged)?;
    }
    crate::killpoint::reached("retire");
    output.remove_file(&format!("{}/{name}", crate::dataset::layout::JOURNAL))
}

/// Every journal record, parsed and checked: (name, record).
fn records(output: &Output) -> Result<Vec<(String, CommitRecord)>, SinkError> {
    let mut records = Vec::new();
    for (name, bytes) in output.journal_records()? {
        let record: CommitRecord = serde_json::from_slice(&bytes).map_err(|err| SinkError::Io {
            path: format!("{output}/{}/{name}", crate::dataset::layout::JOURNAL),
            message: format!("unreadable journal record: {err}"),
        })?;
        record.check(&name, output)?;
        records.push((name, record));
    }
    Ok(records)
}

/// The data files every journal record names (whatever manifest wrote
/// them): what `--fresh` removes.
pub fn named_files(output: &Output) -> Result<Vec<String>, SinkError> {
    Ok(records(output)?
        .into_iter()
        .flat_map(|(_, record)| record.files.into_iter().map(|file| file.path))
        .collect())
}

/// What earlier runs left: granules done, and what recovery did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every granule in a record, with the rows its record committed.
    pub done: BTreeSet<String>,
    /// For each of `done`, the time window its rows were read for (the
    /// widest of its records': windows only grow).
    pub covered: BTreeMap<String, [i64; 2]>,
    /// For each of `done`, the records naming it.
    pub records_of: BTreeMap<String, Vec<String>>,
    pub records: usize,
    /// Committed files that were still staged and have now been moved.
    pub republished: usize,
    /// Staged files of this worker that no record names, now removed.
    pub orphans_removed: usize,
    /// Records whose files were not all there any more, undone: their
    /// remaining files removed, their granules to be read again.
    pub undone: Vec<String>,
}

/// Reads the journal, finishes the publishing of committed files, and
/// removes this worker's uncommitted staged files. A record with a file
/// that is gone (neither staged nor in place) is undone: its other files
/// are removed, then the record, and its granules are read again. Fails if
/// the dataset was written from another manifest.
pub fn recover(output: &Output, identity: &Identity, worker: &str) -> Result<Recovered, SinkError> {
    let mut recovered = Recovered::default();
    let records = records(output)?;
    for (name, record) in &records {
        if let Err(why) = identity.admits(record) {
            return Err(SinkError::Io {
                path: output.to_string(),
                message: format!(
                    "holds a dataset that {why} (journal record {name}); run with --fresh to \
                     replace it, or choose another output.path"
                ),
            });
        }
    }
    // Staged files are listed before the data files: a file another
    // worker publishes meanwhile is then seen in one listing or the other.
    let staged: BTreeSet<String> = output.staged_files()?.into_iter().collect();
    let published: BTreeSet<String> = if records.is_empty() {
        BTreeSet::new()
    } else {
        output.data_files()?.into_iter().collect()
    };
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    // Records a committed record replaces: their retiring is finished.
    let retired: BTreeSet<String> = records
        .iter()
        .flat_map(|(_, record)| record.replaces.iter().cloned())
        .collect();
    // Records with a file gone are undone, and with them every record
    // sharing a granule with one undone (a grown dataset holds a granule's
    // rows of different windows in different records): the granule is then
    // read again whole, never only for the window a surviving record says.
    let whole = |record: &CommitRecord| {
        record
            .files
            .iter()
            .all(|file| staged.contains(&file.staged) || published.contains(&file.path))
    };
    let live = || records.iter().filter(|(name, _)| !retired.contains(name));
    // Each record to undo with its distance from a record with a file gone.
    let mut undo: BTreeMap<&String, usize> = live()
        .filter(|(_, record)| !whole(record))
        .map(|(name, _)| (name, 0))
        .collect();
    for depth in 1.. {
        let undone_granules: BTreeSet<&String> = live()
            .filter(|(name, _)| undo.contains_key(name))
            .flat_map(|(_, record)| &record.granules)
            .collect();
        let more: Vec<&String> = live()
            .filter(|(name, record)| {
                !undo.contains_key(name)
                    && record
                        .granules
                        .iter()
                        .any(|granule| undone_granules.contains(granule))
            })
            .map(|(name, _)| name)
            .collect();
        if more.is_empty() {
            break;
        }
        undo.extend(more.into_iter().map(|name| (name, depth)));
    }
    // The farthest first, the records with a file gone last: killed part
    // way, the next run finds those still incomplete and undoes the rest
    // again (files first, then the record, each time).
    let mut undo_order: Vec<(&String, usize)> = undo.into_iter().collect();
    undo_order.sort_by_key(|&(name, depth)| (std::cmp::Reverse(depth), name));
    for &(name, _) in &undo_order {
        let Some((_, record)) = records.iter().find(|(candidate, _)| candidate == name) else {
            continue;
        };
        for file in &record.files {
            if staged.contains(&file.staged) {
                output.remove_staged(&file.staged)?;
            }
            if published.contains(&file.path) {
                output.remove_file(&file.path)?;
            }
        }
        output.remove_file(&format!("{}/{name}", crate::dataset::layout::JOURNAL))?;
        recovered.undone.push(name.clone());
    }
    let undone: BTreeSet<String> = undo_order.iter().map(|(name, _)| (*name).clone()).collect();
    for (name, record) in records {
        if retired.contains(&name) {
            retire(output, &name, &record)?;
            continue;
        }
        if undone.contains(&name) {
            continue;
        }
        recovered.records += 1;
        let window = record.window.unwrap_or(identity.window);
        for granule in &record.granules {
            let covered = recovered.covered.entry(granule.clone()).or_insert(window);
            *covered = [covered[0].min(window[0]), covered[1].max(window[1])];
        }
        for granule in &record.granules {
            let names = recovered.records_of.entry(granule.clone()).or_default();
            names.push(name.clone());
        }
        recovered.done.extend(record.granules.iter().cloned());
        for file in record.files {
            referenced.insert(file.staged.clone());
            pending.insert(file.staged, file.path);
        }
    }
    for staged in staged {
        if let Some(path) = pending.get(&staged) {
            output.publish(&staged, path)?;
            recovered.republished += 1;
        } else if is_workers(&staged, worker) && !referenced.contains(&staged) {
            output.remove_staged(&staged)?;
            recovered.orphans_removed += 1;
        }
    }
    Ok(recovered)
}

/// Whether staged file `name` was written by `worker` (names are
/// `<run id>-<worker>-<sequence>.parquet`); other workers' files may belong
/// to a run still going.
fn is_workers(name: &str, worker: &str) -> bool {
    name.contains(&format!("-{worker}-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dataset_paths_are_accepted_from_a_record() {
        for good in [
            "part-a.parquet",
            "year=2019/month=04/part-20190101T000000Z-1-all-000001.parquet",
            "beam=gt1l/part-x.parquet",
        ] {
            assert!(is_data_path(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../part-a.parquet",
            "year=2019/../../part-a.parquet",
            "year=2019/../part-a.parquet",
            "..",
            "year=2019/.hidden/part-a.parquet",
            "_runs/part-a.parquet",
            "notes/part-a.parquet",
            "year=/part-a.parquet",
            "=1/part-a.parquet",
            "year=2019//part-a.parquet",
            "year=2019/data.parquet",
            "year=2019/part-a.csv",
            "C:\\part-a.parquet",
            "year=2019\\..\\part-a.parquet",
            "year=2019/part-\n.parquet",
        ] {
            assert!(!is_data_path(bad), "{bad:?}");
        }
        assert!(is_staged_name(
            "20190101T000000Z-1-all-000001.parquet.staged"
        ));
        for bad in [
            "../x.parquet.staged",
            "a/x.parquet.staged",
            ".x.parquet.staged",
            "x.parquet",
            "",
        ] {
            assert!(!is_staged_name(bad), "{bad:?}");
        }
    }
}
