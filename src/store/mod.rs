//! Bytes of granules: local files read by ranges (no whole-file read), S3
//! objects through object_store with NSIDC's temporary credentials, HTTPS
//! URLs with Earthdata Login; request and byte counters for the run report.

pub mod auth;
pub mod https;
pub mod remote;
pub mod retry;
pub mod s3;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use hdf5_reader::{Storage, StorageBuffer};

use crate::catalog::{GranuleRef, Location};

/// Why bytes could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    /// A failure worth retrying (connection reset, truncated body).
    #[error("{url}: {message}")]
    Transient { url: String, message: String },
    #[error("{url}: refused ({status}): check the Earthdata token or .netrc login")]
    Unauthorized { url: String, status: u16 },
    #[error("{url}: not found")]
    NotFound { url: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl StoreError {
    /// An object_store error about `label` (`s3://bucket/key`), with the
    /// reason `object_message` gives.
    pub fn object(label: &str, err: object_store::Error) -> StoreError {
        match err {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                url: label.to_string(),
            },
            other => StoreError::Http {
                url: label.to_string(),
                message: StoreError::object_message(&other),
            },
        }
    }

    /// An object_store error as a one-line reason: an S3 XML error body in
    /// it is cut to its `Code` and `Message` (each at most 200 characters;
    /// request ids, host ids and the rest of the XML left out), control
    /// characters become spaces.
    pub fn object_message(err: &object_store::Error) -> String {
        let text = err.to_string();
        let clean = |text: &str| -> String {
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
                .trim()
                .trim_end_matches(':')
                .trim_end()
                .to_string()
        };
        let Some(start) = text.find("<?xml").or_else(|| text.find("<Error")) else {
            return clean(&text);
        };
        let body = &text[start..];
        let element = |name: &str| {
            let open = format!("<{name}>");
            let from = body.find(&open)? + open.len();
            let to = from + body[from..].find(&format!("</{name}>"))?;
            let value: String = body[from..to].chars().take(200).collect();
            Some(clean(&value))
        };
        let summary = match (element("Code"), element("Message")) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => "(an S3 error body without Code or Message)".to_string(),
        };
        format!("{}: {summary}", clean(&text[..start]))
    }
}

/// The process's tokio runtime for network I/O (two worker threads; CPU
/// work stays on rayon).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("icesat2-io")
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("cannot start the I/O runtime: {err}"))
    })
}

/// What remote granules are read with.
#[derive(Debug, Default)]
pub struct Access {
    pub https: Option<https::NasaClient>,
    pub s3: Option<s3::S3Access>,
}

/// Opens a granule's bytes for `hdf5-reader`.
pub fn open(granule: &GranuleRef, access: &Access) -> Result<Opened, StoreError> {
    match &granule.location {
        Location::Local(path) => {
            let storage = open_local(path).map_err(|err| StoreError::Io {
                path: path.display().to_string(),
                message: err.to_string(),
            })?;
            let counters = storage.counters();
            // Local ranges cost no round trip: nothing to fetch ahead.
            Ok(Opened {
                storage: Arc::new(storage),
                counters,
                prefetch: None,
            })
        }
        Location::S3 { bucket, key } => {
            let s3 = access.s3.as_ref().ok_or_else(|| StoreError::Http {
                url: granule.location.to_string(),
                message: "no S3 access configured".into(),
            })?;
            let source = remote::ObjectSource {
                store: s3.store(bucket)?,
                path: object_store::path::Path::from(key.as_str()),
                label: granule.location.to_string(),
            };
            open_remote(Arc::new(source), &granule.name)
        }
        Location::Https(url) => {
            let client = access.https.clone().ok_or_else(|| StoreError::Http {
                url: granule.location.to_string(),
                message: "no HTTPS access configured".into(),
            })?;
            open_remote(
                Arc::new(remote::HttpsSource {
                    client,
                    url: url.clone(),
                }),
                &granule.name,
            )
        }
    }
}

/// How many bytes to fetch first when opening the granule `name` remotely.
/// Releases from 007 on are written with paged aggregation: their metadata
/// fills the first page, fetched whole on open (a paged file of an older
/// release gets the rest of its page right after its head).
pub fn head_bytes(name: &str) -> u64 {
    let release = crate::granule::GranuleName::parse(name)
        .and_then(|parsed| parsed.release.parse::<u32>().ok());
    match release {
        Some(release) if release >= 7 => remote::PAGED_HEAD,
        _ => remote::HEAD,
    }
}

fn open_remote(source: Arc<dyn remote::RangeSource>, name: &str) -> Result<Opened, StoreError> {
    let storage = Arc::new(remote::RemoteStorage::open(
        source,
        runtime().handle().clone(),
        head_bytes(name),
    )?);
    let counters = storage.counters();
    Ok(Opened {
        storage: storage.clone(),
        counters,
        prefetch: Some(storage),
    })
}

/// A granule's bytes, opened: what `hdf5-reader` reads through, its
/// counters, and the prefetcher for planned reads (remote storage only).
pub struct Opened {
    pub storage: Arc<dyn Storage>,
    pub counters: Arc<Counters>,
    pub prefetch: Option<Arc<dyn crate::granule::reader::Prefetch>>,
}

/// Requests and bytes served by one storage.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    /// Bytes fetched a second time by planned (chunk) fetches.
    pub refetched: AtomicU64,
    /// Large reads (chunk data) the planner did not announce.
    pub unplanned: AtomicU64,
    /// Bytes fetched for the metadata walk (the file's head and cache blocks).
    pub metadata: AtomicU64,
    /// Sequential round trips: the times a request went out while none
    /// was in flight (remote storage). Requests sent together, or while
    /// others wait, share a round trip. A lower bound on the latencies a
    /// granule waits: walks that overlap (`granule::preload`) send
    /// dependent requests while others are in flight.
    pub round_trips: AtomicU64,
    in_flight: AtomicU64,
}

impl Counters {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Marks requests in flight until the guard is dropped; the first of
    /// a quiet spell starts a round trip.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.round_trips.fetch_add(1, Ordering::Relaxed);
        }
        InFlight(self)
    }
}

/// Requests in flight (`Counters::in_flight`).
pub(crate) struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A storage that counts the reads passing through it.
pub struct CountingStorage<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S: Storage> CountingStorage<S> {
    pub fn new(inner: S) -> Self {
        CountingStorage {
            inner,
            counters: Arc::new(Counters::default()),
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
}

impl<S: Storage> Storage for CountingStorage<S> {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        self.counters.add(len);
        self.inner.read_range(offset, len)
    }
}

/// Opens a local file for range reads.
pub fn open_local(path: &Path) -> std::io::Result<CountingStorage<LocalFile>> {
    LocalFile::open(path).map(CountingStorage::new)
}

/// A local file read by ranges (`pread`) into buffers that are not zeroed
/// first. hdf5-reader's `FileStorage` fills every buffer with zeros and
/// then reads over them: 1.2% of the bulk benchmark's instructions.
///
/// Small reads (the metadata walk: object headers, B-tree nodes, heaps,
/// most under 512 bytes) are served from aligned blocks of `BLOCK` bytes,
/// each read once and shared without copying. The bulk benchmark made
/// 38,661 such reads, which fall in 9,176 blocks; hdf5-reader's own
/// `BlockCacheStorage` would also round the large chunk reads to blocks and
/// copy them.
pub struct LocalFile {
    file: std::fs::File,
    len: u64,
    blocks: std::sync::Mutex<std::collections::HashMap<u64, Arc<[u8]>>>,
}

/// The size of a cached block, and the largest read served from one.
const BLOCK: u64 = 4096;
/// Blocks kept per file (16 MiB); reads past that go to the file.
const MAX_BLOCKS: usize = 4096;

impl LocalFile {
    pub fn open(path: &Path) -> std::io::Result<LocalFile> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(LocalFile {
            file,
            len,
            blocks: Default::default(),
        })
    }

    /// Block `index` (bytes from `index * BLOCK`), read when not yet held;
    /// `None` once `MAX_BLOCKS` are held.
    fn block(&self, index: u64) -> hdf5_reader::error::Result<Option<Arc<[u8]>>> {
        {
            let blocks = self.blocks.lock().unwrap_or_else(|err| err.into_inner());
            if let Some(block) = blocks.get(&index) {
                return Ok(Some(block.clone()));
            }
            if blocks.len() >= MAX_BLOCKS {
                return Ok(None);
            }
        }
        // Read without the lock held: another thread may read the same
        // block meanwhile, and the first one stored is kept.
        let start = index * BLOCK;
        let mut block = Arc::new_uninit_slice(BLOCK.min(self.len - start) as usize);
        // A new Arc: no other reference to it yet.
        let bytes = Arc::get_mut(&mut block).expect("a new Arc is unshared");
        self.fill(bytes, start)?;
        // SAFETY: `fill` wrote every byte.
        let block = unsafe { block.assume_init() };
        let mut blocks = self.blocks.lock().unwrap_or_else(|err| err.into_inner());
        Ok(Some(blocks.entry(index).or_insert(block).clone()))
    }

    /// `len` bytes at `offset`, which the caller checked lie in the file.
    fn read_exact(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<Vec<u8>> {
        let mut buffer: Vec<u8> = Vec::with_capacity(len);
        self.fill(&mut buffer.spare_capacity_mut()[..len], offset)?;
        // SAFETY: `fill` wrote all `len` bytes.
        unsafe { buffer.set_len(len) };
        Ok(buffer)
    }

    /// Writes every byte of `buffer` from the file at `offset`, or fails.
    fn fill(
        &self,
        buffer: &mut [std::mem::MaybeUninit<u8>],
        offset: u64,
    ) -> hdf5_reader::error::Result<()> {
        use std::os::fd::AsRawFd;
        let len = buffer.len();
        let mut filled = 0;
        while filled < len {
            // SAFETY: `pread` writes at most `len - filled` bytes at
            // `filled`, inside the buffer.
            let read = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    buffer.as_mut_ptr().add(filled).cast(),
                    len - filled,
                    (offset + filled as u64) as libc::off_t,
                )
            };
            match read {
                0 => {
                    return Err(hdf5_reader::error::Error::UnexpectedEof {
                        offset,
                        needed: len as u64,
                        available: filled as u64,
                    });
                }
                n if n > 0 => filled += n as usize,
                _ => {
                    let err = std::io::Error::last_os_error();
                    if err.kind() != std::io::ErrorKind::Interrupted {
                        return Err(err.into());
                    }
                }
            }
        }
        Ok(())
    }
}

impl Storage for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let end = u64::try_from(len)
            .ok()
            .and_then(|needed| offset.checked_add(needed));
        let Some(end) = end.filter(|&end| end <= self.len) else {
            return Err(hdf5_reader::error::Error::UnexpectedEof {
                offset,
                needed: len as u64,
                available: self.len.saturating_sub(offset),
            });
        };
        let index = offset / BLOCK;
        if len > 0
            && (end - 1) / BLOCK == index
            && let Some(block) = self.block(index)?
        {
            return StorageBuffer::from_shared(block, (offset - index * BLOCK) as usize, len);
        }
        self.read_exact(offset, len).map(StorageBuffer::from_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_file_reads_exact_ranges_and_refuses_past_the_end() {
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("granule.h5");
        std::fs::write(&path, &bytes).unwrap();
        let file = LocalFile::open(&path).unwrap();
        assert_eq!(file.len(), 70_000);
        // Small reads inside a block (twice, the second from the block
        // held), across two blocks, in the last and shorter block, and
        // large reads.
        for (offset, len) in [
            (0, 0),
            (0, 1),
            (100, 300),
            (100, 300),
            (4000, 96),
            (4000, 97),
            (69_632, 368),
            (69_700, 300),
            (123, 4096),
            (65_000, 5_000),
            (0, 70_000),
        ] {
            let read = file.read_range(offset, len).unwrap();
            assert_eq!(&read[..], &bytes[offset as usize..offset as usize + len]);
        }
        let mut held: Vec<u64> = file.blocks.lock().unwrap().keys().copied().collect();
        held.sort();
        assert_eq!(held, [0, 17]);
        for (offset, len) in [(69_999, 2), (70_001, 0), (u64::MAX, 1)] {
            let Err(err) = file.read_range(offset, len) else {
                panic!("{offset}+{len}: read past the end");
            };
            assert!(
                matches!(err, hdf5_reader::error::Error::UnexpectedEof { .. }),
                "{offset}+{len}: {err}"
            );
        }
        assert!(LocalFile::open(&dir.path().join("missing.h5")).is_err());
    }
}
