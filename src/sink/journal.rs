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
//! run. A granule is in at most one record, so no row is written twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Output, SinkError};

/// One checkpoint of one worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommitRecord {
    pub run_id: String,
    /// The worker: `all`, or `s<K>of<N>` for `--shard K/N`.
    pub worker: String,
    pub sequence: u64,
    pub manifest_sha256: String,
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
    /// The record's file name; unique per worker and run.
    pub fn file_name(&self) -> String {
        format!("{}-{}-{:06}.json", self.run_id, self.worker, self.sequence)
    }

    /// Writes the record (the commit point), then publishes its files.
    pub fn commit(&self, output: &Output) -> Result<(), SinkError> {
        let bytes =
            serde_json::to_vec_pretty(self).map_err(|err| SinkError::Encode(err.to_string()))?;
        output.put_journal_record(&self.file_name(), bytes)?;
        for file in &self.files {
            output.publish(&file.staged, &file.path)?;
            crate::killpoint::reached("publish");
        }
        Ok(())
    }
}

/// What earlier runs left: granules done, and what recovery did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every granule in a record, with the rows its record committed.
    pub done: BTreeSet<String>,
    pub records: usize,
    /// Committed files that were still staged and have now been moved.
    pub republished: usize,
    /// Staged files of this worker that no record names, now removed.
    pub orphans_removed: usize,
}

/// Reads the journal, finishes the publishing of committed files, and
/// removes this worker's uncommitted staged files. Fails if the dataset was
/// written from another manifest.
pub fn recover(
    output: &Output,
    manifest_sha256: &str,
    worker: &str,
) -> Result<Recovered, SinkError> {
    let mut recovered = Recovered::default();
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    for (name, bytes) in output.journal_records()? {
        let record: CommitRecord = serde_json::from_slice(&bytes).map_err(|err| SinkError::Io {
            path: format!("{output}/{}/{name}", super::output::JOURNAL),
            message: format!("unreadable journal record: {err}"),
        })?;
        if record.manifest_sha256 != manifest_sha256 {
            return Err(SinkError::Io {
                path: output.to_string(),
                message: format!(
                    "holds a dataset written from another manifest (journal record {name}); \
                     run with --fresh to replace it, or choose another output.path"
                ),
            });
        }
        recovered.records += 1;
        recovered.done.extend(record.granules.iter().cloned());
        for file in record.files {
            referenced.insert(file.staged.clone());
            pending.insert(file.staged, file.path);
        }
    }
    for staged in output.staged_files()? {
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
