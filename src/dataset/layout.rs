//! Where a dataset keeps its own files, relative to its root (a folder or
//! an `s3://` prefix). Everything under `RUNS` belongs to the tool; the
//! data files live in hive folders beside it.

/// The runs' own folder: reports, quick-looks, the journal, staging, locks.
pub const RUNS: &str = "_runs";
/// Files being written, before their commit moves them into place.
pub const STAGING: &str = "_runs/staging";
/// One record per commit: the files it published and the granules they hold.
pub const JOURNAL: &str = "_runs/journal";
/// One lock (or S3 lease) per worker, and the dataset's.
pub const LOCKS: &str = "_runs/locks";
/// Says the root holds a dataset (hidden, so listings of `RUNS` skip it).
pub const MARKER: &str = "_runs/.dataset.json";
/// Written when a `--fresh` removal starts, removed when it is done.
pub const TOMBSTONE: &str = "_runs/.removing.json";

/// The run report of `run_id` (`json`) or its quick-look (`html`).
pub fn run_file(run_id: &str, extension: &str) -> String {
    format!("{RUNS}/{run_id}.{extension}")
}
