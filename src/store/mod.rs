//! Bytes of granules: local files read by ranges (no whole-file read), with
//! request and byte counters for the run report.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hdf5_reader::{FileStorage, Storage, StorageBuffer};

/// Requests and bytes served by one storage.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
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
pub fn open_local(path: &Path) -> std::io::Result<CountingStorage<FileStorage>> {
    let storage = FileStorage::open(path).map_err(|err| std::io::Error::other(err.to_string()))?;
    Ok(CountingStorage::new(storage))
}
