//! The one way a file is written whole or not at all: bytes go to a hidden
//! temporary file beside the target (`.NAME.PID.tmp`, which listings of
//! data files skip), and a rename puts it in place. A temporary file not
//! committed is removed when its `Staged` is dropped, so a failure or a
//! panic leaves no partial file where a reader would see it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file being written beside `target`.
#[derive(Debug)]
pub struct Staged {
    temporary: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staged {
    /// Reserves the temporary path for `target` (its folder created), for
    /// writers that open files by name (libhdf5).
    pub fn reserve(target: &Path) -> std::io::Result<Staged> {
        let folder = folder_of(target);
        std::fs::create_dir_all(folder)?;
        let name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| std::io::Error::other("not a file name"))?;
        Ok(Staged {
            temporary: folder.join(format!(".{name}.{}.tmp", std::process::id())),
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Creates the temporary file for `target`.
    pub fn create(target: &Path) -> std::io::Result<(Staged, std::fs::File)> {
        let staged = Staged::reserve(target)?;
        let file = std::fs::File::create(&staged.temporary)?;
        Ok((staged, file))
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.temporary
    }

    /// Puts the file in place. `durable`: the file's bytes are synced
    /// before the rename and the folder after it, so the rename survives
    /// a crash (the dataset's files and journal); outputs a user reads
    /// right away skip the syncs.
    pub fn commit(self, durable: bool) -> std::io::Result<()> {
        if durable {
            std::fs::File::open(&self.temporary)?.sync_all()?;
        }
        self.rename(durable)
    }

    /// The rename, and with `sync_folder` the folder's sync after it.
    fn rename(mut self, sync_folder: bool) -> std::io::Result<()> {
        std::fs::rename(&self.temporary, &self.target)?;
        self.committed = true;
        if sync_folder {
            std::fs::File::open(folder_of(&self.target))?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` whole or not at all, durably; `before_rename`
/// runs between the synced temporary file and the rename (where tests
/// kill the process).
///
/// ```
/// let folder = tempfile::tempdir().unwrap();
/// let path = folder.path().join("_runs/report.json");
/// icesat2::atomic::write(&path, b"{}", || {}).unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// // Nothing else is left beside it.
/// assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
/// ```
pub fn write(path: &Path, bytes: &[u8], before_rename: impl FnOnce()) -> std::io::Result<()> {
    let (staged, mut file) = Staged::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    before_rename();
    staged.rename(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_in_place_whole_or_not_at_all() {
        let folder = tempfile::tempdir().unwrap();
        let target = folder.path().join("sub/out.txt");
        write(&target, b"whole", || {}).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");

        let (staged, mut file) = Staged::create(&target).unwrap();
        file.write_all(b"partial").unwrap();
        let temporary = staged.path().to_path_buf();
        assert!(
            temporary
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with('.')
        );
        drop(staged);
        assert!(!temporary.exists());
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.txt"]);
    }
}
