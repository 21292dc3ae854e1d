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

use super::{SinkError, write_atomically};

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
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("'{url}' is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("'{url}' has no bucket"));
        }
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

    fn object_path(prefix: &str, relative: &str) -> ObjectPath {
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

    /// Removes what runs write (hive partition folders, top-level part
    /// files, `_runs/`); nothing else.
    pub fn remove_dataset(&self) -> Result<(), SinkError> {
        match self {
            Output::Local(root) => remove_local(root),
            Output::Store { store, prefix, url } => crate::store::runtime().block_on(async {
                let base = if prefix.is_empty() {
                    None
                } else {
                    Some(ObjectPath::from(prefix.as_str()))
                };
                let objects: Vec<_> =
                    store
                        .list(base.as_ref())
                        .try_collect()
                        .await
                        .map_err(|err| SinkError::Io {
                            path: url.clone(),
                            message: err.to_string(),
                        })?;
                for object in objects {
                    let relative = object
                        .location
                        .as_ref()
                        .strip_prefix(prefix.as_str())
                        .unwrap_or(object.location.as_ref());
                    let first = relative
                        .trim_start_matches('/')
                        .split('/')
                        .next()
                        .unwrap_or_default();
                    if is_ours(first, relative.trim_start_matches('/').contains('/')) {
                        store
                            .delete(&object.location)
                            .await
                            .map_err(|err| SinkError::Io {
                                path: format!("{url}/{relative}"),
                                message: err.to_string(),
                            })?;
                    }
                }
                Ok(())
            }),
        }
    }
}

/// Whether a top-level entry is something a run writes.
fn is_ours(name: &str, is_folder: bool) -> bool {
    name == crate::report::RUNS_FOLDER
        || (is_folder && name.contains('='))
        || (name.starts_with("part-") && name.ends_with(".parquet"))
}

fn remove_local(root: &Path) -> Result<(), SinkError> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !is_ours(&name, path.is_dir()) {
            continue;
        }
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.map_err(|err| SinkError::Io {
            path: path.display().to_string(),
            message: format!("cannot remove: {err}"),
        })?;
    }
    Ok(())
}
