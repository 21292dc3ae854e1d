//! Where the dataset goes: a local folder (files committed by rename) or an
//! object-store prefix (`s3://bucket/prefix`; a PUT is atomic, so objects
//! appear whole). S3 output takes the usual AWS environment (AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT,
//! AWS_ALLOW_HTTP): NSIDC's read-only credentials cannot write.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::commit::write_atomically_with;
use super::{SinkError, write_atomically};

use crate::dataset::layout::{JOURNAL, MARKER, RUNS, STAGING, TOMBSTONE};
use crate::dataset::location::S3Url;

/// The dataset's root.
#[derive(Clone)]
pub enum Output {
    Local(PathBuf),
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: String,
        url: String,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Output({self})")
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Local(path) => write!(f, "{}", path.display()),
            Output::Store { url, .. } => f.write_str(url),
        }
    }
}

impl Output {
    /// `s3://bucket/prefix`, or a local folder.
    pub fn s3(url: &str) -> Result<Output, String> {
        if !url.starts_with("s3://") {
            return Err(format!("'{url}' is not an s3:// URL"));
        }
        let S3Url {
            bucket,
            key: prefix,
        } = S3Url::parse(url).ok_or_else(|| format!("'{url}' has no bucket"))?;
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|err| format!("'{url}': {err}"))?;
        Ok(Output::Store {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_string(),
            url: url.trim_end_matches('/').to_string(),
        })
    }

    pub(crate) fn object_path(prefix: &str, relative: &str) -> ObjectPath {
        if prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{prefix}/{relative}"))
        }
    }

    /// Makes the root exist (local folders).
    pub fn prepare(&self) -> Result<(), SinkError> {
        match self {
            Output::Local(path) => std::fs::create_dir_all(path).map_err(|err| SinkError::Io {
                path: path.display().to_string(),
                message: format!("cannot create: {err}"),
            }),
            Output::Store { .. } => Ok(()),
        }
    }

    /// Writes `bytes` at `relative` (a `/`-separated path under the root), whole or not at all.
    pub fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        match self {
            Output::Local(root) => write_atomically(&root.join(relative), &bytes),
            Output::Store { store, prefix, url } => {
                let path = Self::object_path(prefix, relative);
                crate::store::runtime()
                    .block_on(store.put(&path, PutPayload::from(bytes)))
                    .map(|_| ())
                    .map_err(|err| SinkError::Io {
                        path: format!("{url}/{relative}"),
                        message: err.to_string(),
                    })
            }
        }
    }

    /// Where the writer builds files before they are staged: the dataset's
    /// own staging folder for a local dataset (so staging is an fsync and
    /// publishing a rename), a local scratch folder for an object store.
    pub fn scratch_folder(&self, run_id: &str) -> PathBuf {
        match self {
            Output::Local(root) => root.join(STAGING),
            Output::Store { .. } => std::env::temp_dir().join(format!("icesat2-{run_id}")),
        }
    }

    /// Makes a file built in `scratch_folder` durable under
    /// `_runs/staging/<name>` (fsync locally, an upload to an object store;
    /// a failed upload is aborted, so no parts are left behind).
    pub fn stage(&self, local: &Path, name: &str) -> Result<(), SinkError> {
        let local_error = |err: std::io::Error| SinkError::io(local.display(), &err);
        crate::killpoint::fault("stage").map_err(local_error)?;
        match self {
            Output::Local(_) => std::fs::File::open(local)
                .and_then(|file| file.sync_all())
                .map_err(local_error),
            Output::Store { store, prefix, url } => {
                let target = Self::object_path(prefix, &format!("{STAGING}/{name}"));
                let upload_error =
                    |err: std::io::Error| SinkError::io(format!("{url}/{STAGING}/{name}"), &err);
                crate::store::runtime().block_on(async {
                    let mut file = tokio::fs::File::open(local).await.map_err(local_error)?;
                    let mut upload = object_store::buffered::BufWriter::new(store.clone(), target);
                    let copied = match tokio::io::copy(&mut file, &mut upload).await {
                        Ok(_) => tokio::io::AsyncWriteExt::shutdown(&mut upload).await,
                        Err(err) => Err(err),
                    };
                    if let Err(err) = copied {
                        let _ = upload.abort().await;
                        return Err(upload_error(err));
                    }
                    Ok(())
                })?;
                std::fs::remove_file(local).map_err(local_error)
            }
        }
    }

    /// Makes the names of the files just staged durable (a local folder's
    /// entries are durable once the folder is synced), before the journal
    /// record that names them is written.
    pub fn sync_staging(&self) -> Result<(), SinkError> {
        match self {
            Output::Local(root) => {
                let folder = root.join(STAGING);
                std::fs::File::open(&folder)
                    .and_then(|folder| folder.sync_all())
                    .map_err(|err| SinkError::io(folder.display(), &err))
            }
            Output::Store { .. } => Ok(()),
        }
    }

    /// Moves staged file `name` to `relative`, where readers see it. Running
    /// it again after it succeeded (recovery, another worker) does nothing.
    pub fn publish(&self, name: &str, relative: &str) -> Result<(), SinkError> {
        match self {
            Output::Local(root) => {
                let from = root.join(STAGING).join(name);
                let to = root.join(relative);
                let io_error = |err: std::io::Error| SinkError::Io {
                    path: to.display().to_string(),
                    message: err.to_string(),
                };
                if let Some(folder) = to.parent() {
                    std::fs::create_dir_all(folder).map_err(io_error)?;
                }
                match std::fs::rename(&from, &to) {
                    Ok(()) => Ok(()),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound && to.is_file() => {
                        Ok(())
                    }
                    Err(err) => Err(io_error(err)),
                }
            }
            Output::Store { store, prefix, url } => {
                let from = Self::object_path(prefix, &format!("{STAGING}/{name}"));
                let to = Self::object_path(prefix, relative);
                crate::store::runtime().block_on(async {
                    let io_error = |err: object_store::Error| SinkError::Io {
                        path: format!("{url}/{relative}"),
                        message: err.to_string(),
                    };
                    match store.copy(&from, &to).await {
                        Ok(()) => {}
                        Err(object_store::Error::NotFound { .. }) => {
                            return match store.head(&to).await {
                                Ok(_) => Ok(()),
                                Err(err) => Err(io_error(err)),
                            };
                        }
                        Err(err) => return Err(io_error(err)),
                    }
                    match store.delete(&from).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(err) => Err(io_error(err)),
                    }
                })
            }
        }
    }

    /// Names of the files in `_runs/staging/`.
    pub fn staged_files(&self) -> Result<Vec<String>, SinkError> {
        self.list_names(STAGING)
    }

    /// Removes staged file `name` (never committed: an interrupted run's).
    pub fn remove_staged(&self, name: &str) -> Result<(), SinkError> {
        self.remove_file(&format!("{STAGING}/{name}"))
    }

    /// Every journal record: (name, contents).
    pub fn journal_records(&self) -> Result<Vec<(String, Vec<u8>)>, SinkError> {
        let mut records = Vec::new();
        for name in self.list_names(JOURNAL)? {
            if !name.ends_with(".json") {
                continue;
            }
            records.push((name.clone(), self.get(&format!("{JOURNAL}/{name}"))?));
        }
        Ok(records)
    }

    /// Writes journal record `name` whole or not at all: the commit point.
    pub fn put_journal_record(&self, name: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        let relative = format!("{JOURNAL}/{name}");
        match self {
            Output::Local(root) => {
                let path = root.join(&relative);
                write_atomically_with(&path, &bytes, || crate::killpoint::reached("journal"))
            }
            Output::Store { .. } => {
                crate::killpoint::reached("journal");
                self.put(&relative, bytes)
            }
        }
    }

    pub(crate) fn get(&self, relative: &str) -> Result<Vec<u8>, SinkError> {
        match self {
            Output::Local(root) => {
                let path = root.join(relative);
                std::fs::read(&path).map_err(|err| SinkError::Io {
                    path: path.display().to_string(),
                    message: err.to_string(),
                })
            }
            Output::Store { store, prefix, url } => {
                let path = Self::object_path(prefix, relative);
                crate::store::runtime()
                    .block_on(async { store.get(&path).await?.bytes().await })
                    .map(|bytes| bytes.to_vec())
                    .map_err(|err| SinkError::Io {
                        path: format!("{url}/{relative}"),
                        message: err.to_string(),
                    })
            }
        }
    }

    /// Removes the file at `relative`; one already gone is no error.
    pub(super) fn remove_file(&self, relative: &str) -> Result<(), SinkError> {
        match self {
            Output::Local(root) => {
                let path = root.join(relative);
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(err) => Err(SinkError::Io {
                        path: path.display().to_string(),
                        message: err.to_string(),
                    }),
                }
            }
            Output::Store { store, prefix, url } => {
                let path = Self::object_path(prefix, relative);
                match crate::store::runtime().block_on(store.delete(&path)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(err) => Err(SinkError::Io {
                        path: format!("{url}/{relative}"),
                        message: err.to_string(),
                    }),
                }
            }
        }
    }

    /// File names directly under `relative` (a folder under the root).
    pub(crate) fn list_names(&self, relative: &str) -> Result<Vec<String>, SinkError> {
        let mut names = match self {
            Output::Local(root) => {
                let folder = root.join(relative);
                match std::fs::read_dir(&folder) {
                    Ok(entries) => entries
                        .flatten()
                        .filter(|entry| entry.path().is_file())
                        .map(|entry| entry.file_name().to_string_lossy().into_owned())
                        .collect(),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(err) => {
                        return Err(SinkError::Io {
                            path: folder.display().to_string(),
                            message: err.to_string(),
                        });
                    }
                }
            }
            Output::Store { store, prefix, url } => {
                let base = Self::object_path(prefix, relative);
                let objects: Vec<_> = crate::store::runtime()
                    .block_on(store.list(Some(&base)).try_collect::<Vec<_>>())
                    .map_err(|err| SinkError::Io {
                        path: format!("{url}/{relative}"),
                        message: err.to_string(),
                    })?;
                // Files directly in the folder, as for a local one (the
                // listing is recursive).
                let depth = base.parts().count() + 1;
                objects
                    .into_iter()
                    .filter(|object| object.location.parts().count() == depth)
                    .filter_map(|object| object.location.filename().map(str::to_string))
                    .collect()
            }
        };
        names.retain(|name| !name.starts_with('.'));
        names.sort();
        Ok(names)
    }

    /// The data files readers see: paths (relative to the root, `/`
    /// separated, sorted) of the `.parquet` files with no hidden component.
    pub fn data_files(&self) -> Result<Vec<String>, SinkError> {
        let mut files = Vec::new();
        match self {
            Output::Local(root) => {
                let mut folders = vec![root.clone()];
                while let Some(folder) = folders.pop() {
                    let entries = std::fs::read_dir(&folder).map_err(|err| SinkError::Io {
                        path: folder.display().to_string(),
                        message: err.to_string(),
                    })?;
                    for entry in entries.flatten() {
                        let path = entry.path();
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if super::is_hidden(&name) {
                            continue;
                        }
                        if path.is_dir() {
                            folders.push(path);
                        } else if let Ok(relative) = path.strip_prefix(root) {
                            let relative = relative
                                .components()
                                .map(|part| part.as_os_str().to_string_lossy())
                                .collect::<Vec<_>>()
                                .join("/");
                            if super::is_data_file(&relative) {
                                files.push(relative);
                            }
                        }
                    }
                }
            }
            Output::Store { store, prefix, url } => {
                let base = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.as_str()));
                let objects: Vec<_> = crate::store::runtime()
                    .block_on(store.list(base.as_ref()).try_collect::<Vec<_>>())
                    .map_err(|err| SinkError::Io {
                        path: url.clone(),
                        message: err.to_string(),
                    })?;
                for object in objects {
                    let relative = object
                        .location
                        .as_ref()
                        .strip_prefix(prefix.as_str())
                        .unwrap_or(object.location.as_ref())
                        .trim_start_matches('/');
                    if super::is_data_file(relative) {
                        files.push(relative.to_string());
                    }
                }
            }
        }
        files.sort();
        Ok(files)
    }

    /// Whether the root holds a dataset a run wrote: the marker, or (for
    /// datasets older than the marker) a journal.
    pub fn is_dataset(&self) -> Result<bool, SinkError> {
        Ok(self.exists(MARKER)? || !self.list_names(JOURNAL)?.is_empty())
    }

    /// Marks the root as a dataset (once): `--fresh` removes only from a
    /// marked root, and only what its journal names.
    pub fn mark_dataset(&self) -> Result<(), SinkError> {
        if self.exists(MARKER)? {
            return Ok(());
        }
        let marker = serde_json::json!({
            "dataset": "icesat2 ATL08 GeoParquet",
            "written_by": concat!("icesat2 ", env!("CARGO_PKG_VERSION")),
        });
        self.put(MARKER, marker.to_string().into_bytes())
    }

    /// Whether a `--fresh` removal began and did not finish (its tombstone
    /// is there): the journal no longer describes the files, and the next
    /// run must finish the removal before it trusts the journal.
    pub fn removal_pending(&self) -> Result<bool, SinkError> {
        self.exists(TOMBSTONE)
    }

    /// Removes the dataset earlier runs wrote, and nothing else: the data
    /// files the journal names (and the partition folders they leave
    /// empty), staged files, run reports, then the journal itself. A
    /// tombstone written first makes an interrupted removal finish at the
    /// next run rather than leave a journal naming files that are gone.
    /// A local dataset is moved aside at once (renames into one hidden
    /// folder) and deleted on a thread of its own while the run goes on
    /// (`Removal`): deleting files costs tens of milliseconds of waiting on
    /// the disk. A bucket's root is refused.
    pub fn remove_dataset(&self) -> Result<Removal, SinkError> {
        if let Output::Store { prefix, url, .. } = self
            && prefix.is_empty()
        {
            return Err(SinkError::Io {
                path: url.clone(),
                message: "is a bucket's root: --fresh removes only from a prefix \
                          (s3://bucket/prefix); remove the objects yourself"
                    .to_string(),
            });
        }
        if !self.is_dataset()? {
            return Ok(Removal(None));
        }
        self.put(TOMBSTONE, b"{\"removing\": true}".to_vec())?;
        // Data files first, then staging and the run reports, the journal
        // last; the tombstone goes once nothing else is left.
        let mut doomed: Vec<String> = super::journal::named_files(self)?;
        let data_files = doomed.len();
        doomed.extend(
            self.staged_files()?
                .into_iter()
                .map(|name| format!("{STAGING}/{name}")),
        );
        doomed.extend(
            self.list_names(RUNS)?
                .into_iter()
                .map(|name| format!("{RUNS}/{name}")),
        );
        doomed.extend(
            self.list_names(JOURNAL)?
                .into_iter()
                .map(|name| format!("{JOURNAL}/{name}")),
        );
        let removal = match self {
            Output::Local(root) => remove_local(root, &doomed)?,
            Output::Store { .. } => {
                for relative in &doomed {
                    self.remove_file(relative)?;
                    crate::killpoint::reached("remove");
                }
                Removal(None)
            }
        };
        if let Output::Local(root) = self {
            remove_empty_folders(root, &doomed[..data_files]);
        }
        self.remove_file(TOMBSTONE)?;
        Ok(removal)
    }

    /// Whether a file exists at `relative`.
    fn exists(&self, relative: &str) -> Result<bool, SinkError> {
        match self {
            Output::Local(root) => Ok(root.join(relative).is_file()),
            Output::Store { store, prefix, url } => {
                let path = Self::object_path(prefix, relative);
                match crate::store::runtime().block_on(store.head(&path)) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(err) => Err(SinkError::Io {
                        path: format!("{url}/{relative}"),
                        message: err.to_string(),
                    }),
                }
            }
        }
    }
}

/// The hidden folder a local dataset is moved into by `remove_dataset`;
/// one left by a run killed while deleting it is removed with the rest.
const REMOVED_PREFIX: &str = ".icesat2-removed-";

/// An earlier dataset being deleted in the background: `finish` waits for
/// it (dropping waits too), so a run ends with nothing of it left.
pub struct Removal(Option<(PathBuf, std::thread::JoinHandle<std::io::Result<()>>)>);

impl Removal {
    /// Waits for the deletion; an error names the folder left behind
    /// (hidden from readers, removed by the next `--fresh`).
    pub fn finish(mut self) -> Result<(), SinkError> {
        let Some((folder, deleting)) = self.0.take() else {
            return Ok(());
        };
        let result = deleting
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the deleting thread panicked")));
        result.map_err(|err| SinkError::Io {
            path: folder.display().to_string(),
            message: format!("cannot remove: {err}"),
        })
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some((_, deleting)) = self.0.take() {
            let _ = deleting.join();
        }
    }
}

/// Moves `doomed` (paths under `root`, in order) and what earlier removals
/// left into one hidden folder, deleted on a thread of its own.
fn remove_local(root: &Path, doomed: &[String]) -> Result<Removal, SinkError> {
    let leftovers: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| {
                    entry
                        .file_name()
                        .to_string_lossy()
                        .starts_with(REMOVED_PREFIX)
                        && entry.path().is_dir()
                })
                .map(|entry| entry.path())
                .collect()
        })
        .unwrap_or_default();
    let present: Vec<PathBuf> = doomed
        .iter()
        .map(|relative| root.join(relative))
        .filter(|path| path.exists())
        .chain(leftovers)
        .collect();
    if present.is_empty() {
        return Ok(Removal(None));
    }
    let io = |path: &Path, err: std::io::Error| SinkError::Io {
        path: path.display().to_string(),
        message: format!("cannot remove: {err}"),
    };
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let removed = root.join(format!("{REMOVED_PREFIX}{}-{nonce}", std::process::id()));
    std::fs::create_dir(&removed).map_err(|err| io(&removed, err))?;
    // From here the thread owns the folder: an error below still deletes
    // what was moved. Each entry gets a name of its own there (data files
    // of different partitions may share one).
    let mut moved = Ok(());
    for (index, path) in present.iter().enumerate() {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::rename(path, removed.join(format!("{index}-{name}"))) {
            Ok(()) => crate::killpoint::reached("remove"),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                moved = Err(io(path, err));
                break;
            }
        }
    }
    let folder = removed.clone();
    let deleting = std::thread::Builder::new()
        .name("remove-dataset".to_string())
        .spawn(move || std::fs::remove_dir_all(&folder))
        .map_err(|err| io(&removed, err))?;
    let removal = Removal(Some((removed, deleting)));
    moved.map(|()| removal)
}

/// Removes the partition folders (`key=value`) that held `files` and are
/// empty now, deepest first; a folder holding anything else stays.
fn remove_empty_folders(root: &Path, files: &[String]) {
    let mut folders: Vec<&str> = files
        .iter()
        .flat_map(|file| {
            file.match_indices('/')
                .map(move |(slash, _)| &file[..slash])
        })
        .collect();
    folders.sort_by_key(|folder| (std::cmp::Reverse(folder.matches('/').count()), *folder));
    folders.dedup();
    for folder in folders {
        // Fails, as it should, on a folder that is not empty.
        let _ = std::fs::remove_dir(root.join(folder));
    }
}
