//! One writer per worker and output. Two runs of one worker at once would
//! each read the journal, find the same granules not done, and write every
//! row twice; so a run holds its worker's lock from before it reads the
//! journal until its report is written, and a second run exits with an
//! error naming the first.
//!
//! A local dataset is locked with `flock` on files under `_runs/locks/`
//! (released by the kernel however the holder ends): `<worker>.lock`
//! exclusively, and `dataset.lock` shared by shard workers but exclusively
//! by an unsharded run, whose granules overlap every shard's. An
//! object-store dataset is locked with a lease object,
//! `_runs/locks/<worker>.json`, created with a conditional PUT (If-None-Match)
//! and renewed by its holder; a lease not renewed for `LEASE` (its holder
//! was killed) may be taken over, again conditionally (If-Match), so of two
//! runs racing for it one wins.

use std::io::{Read, Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::{Output, SinkError};

use crate::dataset::layout::LOCKS;
/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(60);
/// How often a holder renews its lease.
const RENEW: Duration = Duration::from_secs(15);

/// Who holds a lock, as written into it.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    pid: u32,
    /// When the holder last renewed a lease (leases only).
    #[serde(default)]
    renewed: Option<DateTime<Utc>>,
}

impl Holder {
    fn new(run_id: &str) -> Holder {
        Holder {
            run_id: run_id.to_string(),
            host: host_name(),
            pid: std::process::id(),
            renewed: None,
        }
    }

    fn describe(&self) -> String {
        format!("run {} (pid {} on {})", self.run_id, self.pid, self.host)
    }
}

/// The lock of one worker on one output, held until dropped.
pub struct WriterLock {
    held: Held,
}

enum Held {
    /// The locked files; closing them releases the locks.
    Local {
        _files: Vec<std::fs::File>,
    },
    Lease(Lease),
}

impl WriterLock {
    /// Takes `worker`'s lock on `output` for run `run_id`, or fails naming
    /// the run that holds it.
    pub fn acquire(output: &Output, worker: &str, run_id: &str) -> Result<WriterLock, SinkError> {
        let held = match output {
            Output::Local(root) => Held::Local {
                _files: lock_local(root, worker, run_id)?,
            },
            Output::Store { store, prefix, url } => {
                Held::Lease(Lease::acquire(store.clone(), prefix, url, worker, run_id)?)
            }
        };
        Ok(WriterLock { held })
    }

    /// Fails if the lock was lost (a lease that could not be renewed and
    /// may have been taken over): the run must not commit any more.
    pub fn check(&self) -> Result<(), SinkError> {
        match &self.held {
            Held::Local { .. } => Ok(()),
            Held::Lease(lease) if lease.lost.load(Ordering::SeqCst) => Err(SinkError::Io {
                path: lease.url.clone(),
                message: format!(
                    "this run's lease on the output could not be renewed for {} s and may \
                     have been taken by another run; stopped before committing more \
                     (the next run resumes)",
                    LEASE.as_secs()
                ),
            }),
            Held::Lease(_) => Ok(()),
        }
    }
}

/// Locks `<root>/_runs/locks/<worker>.lock` exclusively and
/// `dataset.lock` shared (a shard) or exclusively (an unsharded run).
fn lock_local(
    root: &std::path::Path,
    worker: &str,
    run_id: &str,
) -> Result<Vec<std::fs::File>, SinkError> {
    let folder = root.join(LOCKS);
    std::fs::create_dir_all(&folder).map_err(|err| SinkError::io(folder.display(), &err))?;
    let open = |name: &str| {
        let path = folder.join(name);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map(|file| (path.clone(), file))
            .map_err(|err| SinkError::io(path.display(), &err))
    };
    let busy = |path: &std::path::Path, holder: Option<Holder>, what: &str| SinkError::Io {
        path: root.display().to_string(),
        message: format!(
            "{what} is being written by another icesat2 run{} ({}); wait for it to end: \
             two runs at once would write every row twice",
            holder.map_or_else(String::new, |holder| format!(", {}", holder.describe())),
            path.display()
        ),
    };
    let (worker_path, mut mine) = open(&format!("{worker}.lock"))?;
    if !flock(&mine, true).map_err(|err| SinkError::io(worker_path.display(), &err))? {
        let mut text = String::new();
        let holder = mine
            .read_to_string(&mut text)
            .ok()
            .and_then(|_| serde_json::from_str(&text).ok());
        return Err(busy(&worker_path, holder, &format!("worker '{worker}'")));
    }
    let sharded = worker != "all";
    let (dataset_path, dataset) = open("dataset.lock")?;
    if !flock(&dataset, !sharded).map_err(|err| SinkError::io(dataset_path.display(), &err))? {
        let (writer, would) = if sharded {
            ("an unsharded icesat2 run", "this shard")
        } else {
            ("icesat2 shard workers", "an unsharded run")
        };
        return Err(SinkError::Io {
            path: root.display().to_string(),
            message: format!(
                "the dataset is being written by {writer} ({}); wait for it to end: \
                 {would} would write the same granules again",
                dataset_path.display()
            ),
        });
    }
    // Who holds it, for the message another run gives; not needed for the
    // lock itself, so a failure to write it is no error.
    let holder = serde_json::to_vec(&Holder::new(run_id)).unwrap_or_default();
    let _ = mine
        .set_len(0)
        .and_then(|()| mine.rewind())
        .and_then(|()| mine.write_all(&holder));
    Ok(vec![mine, dataset])
}

/// `flock` without waiting: `Ok(false)` when another process holds it.
fn flock(file: &std::fs::File, exclusive: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mode = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: flock on a descriptor this file owns.
        if unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

/// The machine's name, for messages.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let got = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if got != 0 {
        return "unknown host".to_string();
    }
    let end = buffer.iter().position(|&byte| byte == 0).unwrap_or(0);
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// A lease's contents: its holder, renewed now.
fn lease_payload(run_id: &str) -> PutPayload {
    let mut holder = Holder::new(run_id);
    holder.renewed = Some(Utc::now());
    PutPayload::from(serde_json::to_vec(&holder).unwrap_or_default())
}

/// A held lease on an object store, renewed on the I/O runtime.
struct Lease {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    url: String,
    lost: Arc<AtomicBool>,
    renewing: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn acquire(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        url: &str,
        worker: &str,
        run_id: &str,
    ) -> Result<Lease, SinkError> {
        let relative = format!("{LOCKS}/{worker}.json");
        let path = Output::object_path(prefix, &relative);
        let label = format!("{url}/{relative}");
        let error = |err: object_store::Error| SinkError::Io {
            path: label.clone(),
            message: err.to_string(),
        };
        let runtime = crate::store::runtime();
        let payload = || lease_payload(run_id);
        let created = runtime.block_on(store.put_opts(&path, payload(), PutMode::Create.into()));
        let version = match created {
            Ok(put) => UpdateVersion {
                e_tag: put.e_tag,
                version: put.version,
            },
            Err(object_store::Error::AlreadyExists { .. }) => {
                let got = runtime
                    .block_on(async { store.get(&path).await })
                    .map_err(error)?;
                let meta = got.meta.clone();
                let bytes = runtime.block_on(got.bytes()).map_err(error)?;
                let holder: Option<Holder> = serde_json::from_slice(&bytes).ok();
                let renewed = holder
                    .as_ref()
                    .and_then(|holder| holder.renewed)
                    .unwrap_or(meta.last_modified);
                let expires = renewed + chrono::Duration::from_std(LEASE).unwrap_or_default();
                if Utc::now() < expires {
                    return Err(SinkError::Io {
                        path: url.to_string(),
                        message: format!(
                            "worker '{worker}' is being written by another icesat2 run{} \
                             (lease {relative}, renewed until {}); wait for it to end: two runs \
                             at once would write every row twice (a lease whose run was killed \
                             lapses within {} s)",
                            holder.map_or_else(String::new, |holder| format!(
                                ", {}",
                                holder.describe()
                            )),
                            expires.format("%Y-%m-%dT%H:%M:%SZ"),
                            LEASE.as_secs()
                        ),
                    });
                }
                // A lapsed lease: taken over only if nobody else did first.
                let current = UpdateVersion {
                    e_tag: meta.e_tag,
                    version: meta.version,
                };
                let put = runtime
                    .block_on(store.put_opts(&path, payload(), PutMode::Update(current).into()))
                    .map_err(|err| match err {
                        object_store::Error::Precondition { .. } => SinkError::Io {
                            path: url.to_string(),
                            message: format!(
                                "worker '{worker}' was taken by another icesat2 run starting \
                                 at the same time (lease {relative})"
                            ),
                        },
                        other => error(other),
                    })?;
                UpdateVersion {
                    e_tag: put.e_tag,
                    version: put.version,
                }
            }
            Err(err) => return Err(error(err)),
        };
        let lost = Arc::new(AtomicBool::new(false));
        let renewing = runtime.spawn(renew(
            store.clone(),
            path.clone(),
            version,
            run_id.to_string(),
            lost.clone(),
        ));
        Ok(Lease {
            store,
            path,
            url: url.to_string(),
            lost,
            renewing,
        })
    }
}

/// Renews the lease every `RENEW`, each time only if it is still the
/// version this run wrote; marks it lost when that fails for `LEASE`.
async fn renew(
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    mut version: UpdateVersion,
    run_id: String,
    lost: Arc<AtomicBool>,
) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RENEW).await;
        let options: PutOptions = PutMode::Update(version.clone()).into();
        match store.put_opts(&path, lease_payload(&run_id), options).await {
            Ok(put) => {
                version = UpdateVersion {
                    e_tag: put.e_tag,
                    version: put.version,
                };
                last_renewed = tokio::time::Instant::now();
            }
            // Another run holds it now: nothing more may be committed.
            Err(object_store::Error::Precondition { .. }) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(_) if last_renewed.elapsed() + RENEW >= LEASE => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(_) => {}
        }
    }
}

impl Drop for Lease {
    /// Stops renewing and gives the lease back (if it is still ours).
    fn drop(&mut self) {
        self.renewing.abort();
        if !self.lost.load(Ordering::SeqCst) {
            let _ = crate::store::runtime().block_on(self.store.delete(&self.path));
        }
    }
}
