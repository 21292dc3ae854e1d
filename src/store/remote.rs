//! Remote granule bytes for `hdf5-reader`: a range source (S3 through
//! object_store, or HTTPS) behind an aligned block cache. Small reads (the
//! metadata walk) are served from 64 KiB blocks, a run of missing blocks
//! fetched in one request; large reads (chunk data) go straight through.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use hdf5_reader::{Storage, StorageBuffer};
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::https::NasaClient;
use super::{Counters, StoreError};

/// Where ranges of one object come from.
#[async_trait]
pub trait RangeSource: Send + Sync {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError>;
    /// The object's size.
    async fn size(&self) -> Result<u64, StoreError>;
}

/// An object in an object store.
pub struct ObjectSource {
    pub store: Arc<dyn ObjectStore>,
    pub path: object_store::path::Path,
    /// Shown in messages (`s3://bucket/key`).
    pub label: String,
}

#[async_trait]
impl RangeSource for ObjectSource {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.store
            .get_range(&self.path, range)
            .await
            .map_err(|err| StoreError::object(&self.label, err))
    }

    async fn size(&self) -> Result<u64, StoreError> {
        Ok(self
            .store
            .head(&self.path)
            .await
            .map_err(|err| StoreError::object(&self.label, err))?
            .size)
    }
}

/// A file behind an HTTPS URL.
pub struct HttpsSource {
    pub client: NasaClient,
    pub url: Url,
}

#[async_trait]
impl RangeSource for HttpsSource {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.client.get_range(&self.url, range).await
    }

    async fn size(&self) -> Result<u64, StoreError> {
        self.client.len(&self.url).await
    }
}

const BLOCK: u64 = 64 * 1024;
/// Reads at least this long bypass the cache.
const DIRECT: usize = 256 * 1024;

/// `hdf5_reader::Storage` over a `RangeSource`. Reads block on the runtime,
/// so they must come from threads outside it (the rayon pool).
pub struct RemoteStorage {
    source: Arc<dyn RangeSource>,
    len: u64,
    runtime: tokio::runtime::Handle,
    blocks: Mutex<HashMap<u64, Bytes>>,
    counters: Arc<Counters>,
}

impl RemoteStorage {
    pub fn new(
        source: Arc<dyn RangeSource>,
        len: u64,
        runtime: tokio::runtime::Handle,
    ) -> RemoteStorage {
        RemoteStorage {
            source,
            len,
            runtime,
            blocks: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::default()),
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn fetch(&self, range: Range<u64>) -> hdf5_reader::error::Result<Bytes> {
        let length = (range.end - range.start) as usize;
        let bytes = self
            .runtime
            .block_on(self.source.get_range(range))
            .map_err(|err| hdf5_reader::error::Error::Io(std::io::Error::other(err.to_string())))?;
        self.counters.add(length);
        Ok(bytes)
    }
}

impl Storage for RemoteStorage {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let end = offset
            .checked_add(len as u64)
            .filter(|end| *end <= self.len)
            .ok_or(hdf5_reader::error::Error::UnexpectedEof {
                offset,
                needed: len as u64,
                available: self.len.saturating_sub(offset),
            })?;
        if len == 0 {
            return Ok(StorageBuffer::from_vec(Vec::new()));
        }
        if len >= DIRECT {
            return Ok(StorageBuffer::from_vec(self.fetch(offset..end)?.to_vec()));
        }
        let first = offset / BLOCK;
        let last = (end - 1) / BLOCK;
        let missing: Vec<u64> = {
            let blocks = self
                .blocks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (first..=last)
                .filter(|index| !blocks.contains_key(index))
                .collect()
        };
        if let (Some(&from), Some(&to)) = (missing.first(), missing.last()) {
            let span = from * BLOCK..((to + 1) * BLOCK).min(self.len);
            let bytes = self.fetch(span.clone())?;
            let mut blocks = self
                .blocks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for index in from..=to {
                let start = ((index - from) * BLOCK) as usize;
                let stop = (start + BLOCK as usize).min(bytes.len());
                blocks
                    .entry(index)
                    .or_insert_with(|| bytes.slice(start..stop));
            }
        }
        let blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = Vec::with_capacity(len);
        for index in first..=last {
            let block = &blocks[&index];
            let block_start = index * BLOCK;
            let from = offset.max(block_start) - block_start;
            let to = end.min(block_start + block.len() as u64) - block_start;
            out.extend_from_slice(&block[from as usize..to as usize]);
        }
        Ok(StorageBuffer::from_vec(out))
    }
}
