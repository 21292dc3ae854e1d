//! File commits: write under a hidden temporary name in the target folder,
//! flush, then rename, so a reader sees a whole file or none.

use std::path::Path;

use super::SinkError;

/// Whether a dataset entry is hidden from readers (`_` or `.` prefix).
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

/// Whether a path under the dataset's root (`/` separated) is a data file
/// readers see: a `.parquet` file with no hidden component.
pub fn is_data_file(relative: &str) -> bool {
    relative.ends_with(".parquet") && !relative.split('/').any(is_hidden)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    write_atomically_with(path, bytes, || {})
}

/// `write_atomically`, calling `before_rename` between the durable
/// temporary file and the rename (where tests kill the process).
pub fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(),
) -> Result<(), SinkError> {
    crate::atomic::write(path, bytes, before_rename).map_err(|err| SinkError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    })
}
