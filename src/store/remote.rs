//! Remote granule bytes for `hdf5-reader`: a range source (S3 through
//! object_store, or HTTPS) behind an aligned block cache for the metadata
//! walk, with the chunk ranges the read planner announces fetched ahead,
//! merged and concurrently.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use hdf5_reader::{Storage, StorageBuffer};
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::https::NasaClient;
use super::retry::{Attempt, Backoff};
use super::{Counters, StoreError};
use crate::granule::GranuleError;
use crate::granule::reader::Prefetch;

/// Where ranges of one object come from.
#[async_trait]
pub trait RangeSource: Send + Sync {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError>;
    /// The object's size.
    async fn size(&self) -> Result<u64, StoreError>;
    /// The object's first bytes, up to `limit`, and its size. Sources that
    /// can (S3, HTTPS) learn both from one ranged request; catalogs give a
    /// size only as a hint, never trusted for reads.
    async fn get_head(&self, limit: u64) -> Result<(Bytes, u64), StoreError> {
        let size = self.size().await?;
        let bytes = self.get_range(0..limit.min(size)).await?;
        Ok((bytes, size))
    }
    /// The object in messages (`s3://bucket/key`, a URL without secrets).
    fn label(&self) -> String;
}

/// How a range whose transfer fails part way is tried again.
const RANGE_RETRY: Backoff = Backoff {
    attempts: 4,
    first: Duration::from_millis(200),
    cap: Duration::from_secs(60),
};

/// A transient failure is tried again; any other is the answer.
fn again_if_transient<T>(err: StoreError) -> Attempt<T, StoreError> {
    if matches!(err, StoreError::Transient { .. }) {
        Attempt::Again(err, None)
    } else {
        Attempt::Done(Err(err))
    }
}

/// A `RangeSource` whose every answer is checked to be the whole range, and
/// which tries a range again, with exponential backoff, when the transfer
/// fails part way (connection reset, body shorter than asked). The clients
/// underneath retry 5xx and failed connections themselves (object_store's
/// `RetryConfig`, `NasaClient::get`), but not a body cut off after the
/// status line, which `StoreError::Transient` reports.
pub struct Retrying {
    inner: Arc<dyn RangeSource>,
}

impl Retrying {
    pub fn new(inner: Arc<dyn RangeSource>) -> Retrying {
        Retrying { inner }
    }
}

#[async_trait]
impl RangeSource for Retrying {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        let expected = range.end - range.start;
        let inner = &self.inner;
        RANGE_RETRY
            .run(|_| {
                let range = range.clone();
                async move {
                    match inner.get_range(range.clone()).await {
                        Ok(bytes) if bytes.len() as u64 == expected => Attempt::Done(Ok(bytes)),
                        Ok(bytes) => Attempt::Again(
                            StoreError::Transient {
                                url: inner.label(),
                                message: format!(
                                    "expected {expected} bytes of {}..{}, got {}",
                                    range.start,
                                    range.end,
                                    bytes.len()
                                ),
                            },
                            None,
                        ),
                        Err(err) => again_if_transient(err),
                    }
                }
            })
            .await
    }

    async fn size(&self) -> Result<u64, StoreError> {
        self.inner.size().await
    }

    async fn get_head(&self, limit: u64) -> Result<(Bytes, u64), StoreError> {
        let inner = &self.inner;
        RANGE_RETRY
            .run(|_| async move {
                match inner.get_head(limit).await {
                    Ok((bytes, size)) if bytes.len() as u64 == limit.min(size) => {
                        Attempt::Done(Ok((bytes, size)))
                    }
                    Ok((bytes, size)) => Attempt::Again(
                        StoreError::Transient {
                            url: inner.label(),
                            message: format!(
                                "expected the first {} bytes, got {}",
                                limit.min(size),
                                bytes.len()
                            ),
                        },
                        None,
                    ),
                    Err(err) => again_if_transient(err),
                }
            })
            .await
    }

    fn label(&self) -> String {
        self.inner.label()
    }
}

/// An object in an object store.
pub struct ObjectSource {
    pub store: Arc<dyn ObjectStore>,
    pub path: object_store::path::Path,
    /// Shown in messages (`s3://bucket/key`).
    pub label: String,
}

impl ObjectSource {
    /// A read's error: what object_store could not recover from itself (a
    /// body cut off part way, or a failure after its own retries) is
    /// transient, since another try is cheap next to losing the granule.
    fn error(&self, err: object_store::Error) -> StoreError {
        match err {
            object_store::Error::Generic { .. } => StoreError::Transient {
                url: self.label.clone(),
                message: StoreError::object_message(&err),
            },
            other => StoreError::object(&self.label, other),
        }
    }
}

#[async_trait]
impl RangeSource for ObjectSource {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.store
            .get_range(&self.path, range)
            .await
            .map_err(|err| self.error(err))
    }

    async fn size(&self) -> Result<u64, StoreError> {
        Ok(self
            .store
            .head(&self.path)
            .await
            .map_err(|err| StoreError::object(&self.label, err))?
            .size)
    }

    async fn get_head(&self, limit: u64) -> Result<(Bytes, u64), StoreError> {
        let options = object_store::GetOptions {
            range: Some((0..limit.max(1)).into()),
            ..Default::default()
        };
        let got = self
            .store
            .get_opts(&self.path, options)
            .await
            .map_err(|err| self.error(err))?;
        let size = got.meta.size;
        let bytes = got.bytes().await.map_err(|err| StoreError::Transient {
            url: self.label.clone(),
            message: err.to_string(),
        })?;
        Ok((bytes, size))
    }

    fn label(&self) -> String {
        self.label.clone()
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

    async fn get_head(&self, limit: u64) -> Result<(Bytes, u64), StoreError> {
        self.client.get_head(&self.url, limit).await
    }

    fn label(&self) -> String {
        super::https::redact(&self.url)
    }
}

/// The file-space page size of a file written with paged aggregation, from
/// its superblock (version 2 or 3) and the File Space Info message of its
/// superblock extension (strategy PAGE), when both lie in `head`. Pages
/// from 512 bytes to `MAX_PAGE` are taken; anything else reads as unpaged.
fn paged(head: &Bytes) -> Option<u64> {
    use hdf5_reader::messages::HdfMessage;
    use hdf5_reader::object_header::ObjectHeader;
    use hdf5_reader::superblock::Superblock;

    // libhdf5's H5O_FSINFO_ID (hdf5-reader names 0x0018 so, which
    // libhdf5 does not write).
    const FILE_SPACE_INFO: u16 = 0x0017;
    const STRATEGY_PAGE: u8 = 1;
    let storage = hdf5_reader::BytesStorage::new(head.to_vec());
    let superblock = Superblock::parse_from_storage(&storage).ok()?;
    if superblock.version < 2 {
        return None;
    }
    let extension = superblock
        .extension_address?
        .checked_add(superblock.base_address)?;
    let header = ObjectHeader::parse_at_storage(
        &storage,
        extension,
        superblock.offset_size,
        superblock.length_size,
    )
    .ok()?;
    let length_size = usize::from(superblock.length_size);
    header.messages.iter().find_map(|message| match message {
        HdfMessage::Unknown { type_id, data } if *type_id == FILE_SPACE_INFO => {
            // Version, strategy, persist, threshold (a length), page size
            // (a length). Version 0 (libhdf5 1.10.0) numbered strategies
            // otherwise and had no pages.
            if data.len() < 3 + 2 * length_size || data[0] < 1 || data[1] != STRATEGY_PAGE {
                return None;
            }
            let at = 3 + length_size;
            let mut size = [0u8; 8];
            size[..length_size.min(8)].copy_from_slice(&data[at..at + length_size.min(8)]);
            let page = u64::from_le_bytes(size);
            (page.is_power_of_two() && (512..=MAX_PAGE).contains(&page)).then_some(page)
        }
        _ => None,
    })
}

/// The largest file-space page read as one: release 007 writes 8 MiB.
const MAX_PAGE: u64 = 16 << 20;

/// Block size of the metadata cache.
const BLOCK: u64 = 16 * 1024;
/// Reads at least this long are chunk data: never cached as blocks.
const DIRECT: usize = 64 * 1024;
/// Fetched when a granule is opened: the superblock, the root group and the
/// small groups NASA writes first (orbit_info, ancillary_data) in one request.
pub const HEAD: u64 = 1 << 20;
/// Fetched when a granule of a release written with paged aggregation
/// (007 on) is opened: its first page, which holds the superblock and the
/// metadata (8 MiB pages), in one request.
pub const PAGED_HEAD: u64 = 8 << 20;
/// Planned ranges closer than this are fetched as one request...
const MERGE_GAP: u64 = 64 * 1024;
/// ...up to this size.
const MAX_REQUEST: u64 = 16 << 20;
/// Requests in flight at once for one granule.
const CONCURRENT_REQUESTS: usize = 64;

type Block = Arc<OnceLock<Result<Bytes, String>>>;

/// `hdf5_reader::Storage` over a `RangeSource` (behind `Retrying`): small reads from an aligned
/// block cache (a run of missing blocks in one request; a block being
/// fetched is waited for, not fetched again), planned chunk ranges fetched
/// ahead, merged and concurrently (`Prefetch`). Reads block on the runtime,
/// so they must come from threads outside it.
pub struct RemoteStorage {
    source: Arc<dyn RangeSource>,
    len: u64,
    runtime: tokio::runtime::Handle,
    blocks: Mutex<HashMap<u64, Block>>,
    /// Prefetched ranges by start offset (they do not overlap).
    pinned: RwLock<BTreeMap<u64, Bytes>>,
    counters: Arc<Counters>,
    /// The file-space page size of a file written with paged aggregation
    /// (release 007's cloud-optimized layout), where metadata lies in whole
    /// pages: a metadata miss then fetches its whole page.
    page: Option<u64>,
}

impl RemoteStorage {
    /// Opens an object: one request brings its first `head` bytes (the
    /// superblock, the root group and the small groups NASA writes first:
    /// `HEAD`; the first page of a paged file: `PAGED_HEAD`) and its
    /// length. A length from a catalog is only a hint, never used. A file
    /// found to be paged has the rest of its first page fetched too.
    pub fn open(
        source: Arc<dyn RangeSource>,
        runtime: tokio::runtime::Handle,
        head: u64,
    ) -> Result<RemoteStorage, StoreError> {
        let source: Arc<dyn RangeSource> = Arc::new(Retrying::new(source));
        let counters = Arc::new(Counters::default());
        let (head, len) = {
            let _trip = counters.in_flight();
            runtime.block_on(source.get_head(head))?
        };
        counters.add(head.len());
        counters
            .metadata
            .fetch_add(head.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // A paged file keeps its metadata in whole pages, the first of them
        // holding the superblock: the rest of that page is fetched now, so
        // the metadata walk finds it in hand.
        let page = paged(&head);
        let head = match page.map(|page| page.min(len)) {
            Some(first_page) if first_page > head.len() as u64 => {
                let rest = {
                    let _trip = counters.in_flight();
                    runtime.block_on(source.get_range(head.len() as u64..first_page))?
                };
                counters.add(rest.len());
                counters
                    .metadata
                    .fetch_add(rest.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let mut whole = Vec::with_capacity(first_page as usize);
                whole.extend_from_slice(&head);
                whole.extend_from_slice(&rest);
                Bytes::from(whole)
            }
            _ => head,
        };
        let storage = RemoteStorage {
            source,
            len,
            runtime,
            blocks: Mutex::new(HashMap::new()),
            pinned: RwLock::new(BTreeMap::from([(0, head)])),
            counters,
            page,
        };
        Ok(storage)
    }

    /// Requests sent together beyond `CONCURRENT_REQUESTS` wait for
    /// earlier ones to finish: each further wave is a round trip too.
    fn count_waves(&self, requests: usize) {
        let waves = requests.saturating_sub(1) / CONCURRENT_REQUESTS;
        self.counters
            .round_trips
            .fetch_add(waves as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// The cache blocks `first..=last`, widened in a paged file to the
    /// whole pages that hold them: a metadata miss fetches its whole page.
    fn blocks_to_fetch(&self, first: u64, last: u64) -> (u64, u64) {
        match self.page {
            Some(page) => {
                let start = first * BLOCK / page * page;
                let end = ((last * BLOCK / page + 1) * page).min(self.len);
                (start / BLOCK, (end - 1) / BLOCK)
            }
            None => (first, last),
        }
    }

    /// An object of known length `len`, nothing fetched yet.
    #[cfg(test)]
    fn new(
        source: Arc<dyn RangeSource>,
        len: u64,
        runtime: tokio::runtime::Handle,
    ) -> RemoteStorage {
        RemoteStorage {
            source: Arc::new(Retrying::new(source)),
            len,
            runtime,
            blocks: Mutex::new(HashMap::new()),
            pinned: RwLock::new(BTreeMap::new()),
            counters: Arc::new(Counters::default()),
            page: None,
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn lock_pinned_write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, Bytes>> {
        self.pinned
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pinned bytes of `start..end`, if one prefetched range holds them.
    fn pinned(&self, start: u64, end: u64) -> Option<Bytes> {
        let pinned = self
            .pinned
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (&from, bytes) = pinned.range(..=start).next_back()?;
        (from + bytes.len() as u64 >= end)
            .then(|| bytes.slice((start - from) as usize..(end - from) as usize))
    }

    fn fetch(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        let length = (range.end - range.start) as usize;
        let bytes = {
            let _trip = self.counters.in_flight();
            self.runtime.block_on(self.source.get_range(range))?
        };
        self.counters.add(length);
        Ok(bytes)
    }

    fn lock_blocks(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Block>> {
        self.blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cells of blocks `indices`, and those of them no one had asked
    /// for yet (now ours to fetch), ascending.
    fn claim(&self, indices: impl Iterator<Item = u64>) -> (Vec<Block>, Vec<u64>) {
        let mut cells = Vec::new();
        let mut owned = Vec::new();
        let mut blocks = self.lock_blocks();
        for index in indices {
            let cell = blocks.entry(index).or_insert_with(|| {
                owned.push(index);
                Arc::new(OnceLock::new())
            });
            cells.push(cell.clone());
        }
        owned.sort_unstable();
        (cells, owned)
    }

    /// The byte span of blocks `from..=to`.
    fn span(&self, from: u64, to: u64) -> Range<u64> {
        from * BLOCK..((to + 1) * BLOCK).min(self.len)
    }

    /// Sets the claimed blocks (`owned`) among `from..=to` from one fetch of
    /// that span; on failure they are dropped, so a later read tries again.
    fn fill(&self, from: u64, to: u64, owned: &[u64], fetched: Result<Bytes, String>) {
        if let Ok(bytes) = &fetched {
            self.counters
                .metadata
                .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let mut blocks = self.lock_blocks();
        for index in from..=to {
            if owned.binary_search(&index).is_err() {
                continue;
            }
            let Some(cell) = blocks.get(&index).cloned() else {
                continue;
            };
            let value = match &fetched {
                Ok(bytes) => {
                    let start = (((index - from) * BLOCK) as usize).min(bytes.len());
                    let stop = (start + BLOCK as usize).min(bytes.len());
                    Ok(bytes.slice(start..stop))
                }
                Err(message) => {
                    blocks.remove(&index);
                    Err(message.clone())
                }
            };
            let _ = cell.set(value);
        }
    }

    /// Blocks `first..=last`, fetching those no one has asked for yet as one
    /// request and waiting for those another thread is fetching.
    fn blocks(&self, first: u64, last: u64) -> Result<Vec<Bytes>, StoreError> {
        let (cells, owned) = self.claim(first..=last);
        if let (Some(&from), Some(&to)) = (owned.first(), owned.last()) {
            let _unwinding = Claimed(self, &owned);
            let fetched = self
                .fetch(self.span(from, to))
                .map_err(|err| err.to_string());
            self.fill(from, to, &owned, fetched);
        }
        cells
            .iter()
            .map(|cell| {
                cell.wait()
                    .clone()
                    .map_err(|message| StoreError::Transient {
                        url: "block".into(),
                        message,
                    })
            })
            .collect()
    }
}

/// Blocks a thread claimed to fetch (`RemoteStorage::claim`). Other
/// threads wait for them; if the fetch ends without setting them (it
/// panicked), dropping this sets them failed and forgets them, so the
/// waiters wake with an error (and a later read fetches them again)
/// instead of waiting for ever.
struct Claimed<'a>(&'a RemoteStorage, &'a [u64]);

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        let mut blocks = self.0.lock_blocks();
        for index in self.1 {
            let Some(cell) = blocks.get(index).cloned() else {
                continue;
            };
            if cell
                .set(Err("the fetch of this range failed part way".into()))
                .is_ok()
            {
                blocks.remove(index);
            }
        }
    }
}

fn storage_error(err: StoreError) -> hdf5_reader::error::Error {
    hdf5_reader::error::Error::Io(std::io::Error::other(err.to_string()))
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
        if let Some(bytes) = self.pinned(offset, end) {
            return Ok(StorageBuffer::from_vec(bytes.to_vec()));
        }
        if len >= DIRECT {
            self.counters
                .unplanned
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(StorageBuffer::from_vec(
                self.fetch(offset..end).map_err(storage_error)?.to_vec(),
            ));
        }
        let first = offset / BLOCK;
        let last = (end - 1) / BLOCK;
        let (from, to) = self.blocks_to_fetch(first, last);
        let blocks = self.blocks(from, to).map_err(storage_error)?;
        let mut out = Vec::with_capacity(len);
        let wanted = &blocks[(first - from) as usize..=(last - from) as usize];
        for (index, block) in (first..=last).zip(wanted) {
            let block_start = index * BLOCK;
            let from = offset.max(block_start) - block_start;
            let to = end.min(block_start + block.len() as u64) - block_start;
            out.extend_from_slice(&block[from as usize..to as usize]);
        }
        Ok(StorageBuffer::from_vec(out))
    }
}

impl Prefetch for RemoteStorage {
    /// Brings the cache blocks under `ranges` that no one has asked for
    /// yet, each run of adjacent blocks as one request, all concurrently.
    fn prefetch_metadata(&self, ranges: &[Range<u64>]) {
        let mut indices: Vec<u64> = ranges
            .iter()
            .filter(|range| range.start < self.len && !range.is_empty())
            .filter(|range| self.pinned(range.start, range.end.min(self.len)).is_none())
            .flat_map(|range| {
                let (first, last) = self
                    .blocks_to_fetch(range.start / BLOCK, (range.end.min(self.len) - 1) / BLOCK);
                first..=last
            })
            .collect();
        indices.sort_unstable();
        indices.dedup();
        let (_, owned) = self.claim(indices.into_iter());
        let _unwinding = Claimed(self, &owned);
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &index in &owned {
            match runs.last_mut() {
                Some((_, to)) if *to + 1 == index => *to = index,
                _ => runs.push((index, index)),
            }
        }
        if runs.is_empty() {
            return;
        }
        let source = self.source.clone();
        let trip = self.counters.in_flight();
        self.count_waves(runs.len());
        let fetched: Vec<(u64, u64, Result<Bytes, String>)> = self.runtime.block_on(
            futures::stream::iter(runs)
                .map(|(from, to)| {
                    let source = source.clone();
                    let span = self.span(from, to);
                    async move {
                        let result = source.get_range(span).await.map_err(|err| err.to_string());
                        (from, to, result)
                    }
                })
                .buffer_unordered(CONCURRENT_REQUESTS)
                .collect(),
        );
        drop(trip);
        for (from, to, result) in fetched {
            if let Ok(bytes) = &result {
                self.counters.add(bytes.len());
            }
            self.fill(from, to, &owned, result);
        }
    }

    /// Merges the ranges (gaps under 64 KiB, requests up to 16 MiB), leaves
    /// out what is already here, and fetches the rest concurrently.
    fn prefetch(&self, ranges: &[Range<u64>]) -> Result<(), GranuleError> {
        let mut sorted: Vec<Range<u64>> = ranges
            .iter()
            .filter(|r| !r.is_empty() && r.end <= self.len)
            .cloned()
            .collect();
        sorted.sort_by_key(|range| range.start);
        let mut merged: Vec<Range<u64>> = Vec::new();
        for range in sorted {
            if self.pinned(range.start, range.end).is_some() {
                continue;
            }
            match merged.last_mut() {
                Some(last)
                    if range.start <= last.end + MERGE_GAP
                        && range.end.max(last.end) - last.start <= MAX_REQUEST =>
                {
                    last.end = last.end.max(range.end);
                }
                _ => merged.push(range),
            }
        }
        if merged.is_empty() {
            return Ok(());
        }
        let source = self.source.clone();
        let trip = self.counters.in_flight();
        self.count_waves(merged.len());
        let fetched: Vec<Result<(u64, Bytes), StoreError>> = self.runtime.block_on(
            futures::stream::iter(merged)
                .map(|range| {
                    let source = source.clone();
                    async move {
                        source
                            .get_range(range.clone())
                            .await
                            .map(|bytes| (range.start, bytes))
                    }
                })
                .buffer_unordered(CONCURRENT_REQUESTS)
                .collect(),
        );
        drop(trip);
        let mut pinned = self.lock_pinned_write();
        for result in fetched {
            let (start, bytes) = result.map_err(|err| GranuleError::Read {
                path: "prefetch".into(),
                message: err.to_string(),
            })?;
            self.counters.add(bytes.len());
            let end = start + bytes.len() as u64;
            // Count any byte fetched twice (there should be none).
            let overlap: u64 = pinned
                .range(..end)
                .map(|(&from, held)| {
                    end.min(from + held.len() as u64)
                        .saturating_sub(start.max(from))
                })
                .sum();
            self.counters
                .refetched
                .fetch_add(overlap, std::sync::atomic::Ordering::Relaxed);
            pinned.insert(start, bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// An object in memory whose first fetch waits, then panics.
    struct PanicsOnce {
        bytes: Bytes,
        calls: AtomicU32,
    }

    #[async_trait]
    impl RangeSource for PanicsOnce {
        async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                panic!("injected panic in a block fetch");
            }
            Ok(self.bytes.slice(range.start as usize..range.end as usize))
        }

        async fn size(&self) -> Result<u64, StoreError> {
            Ok(self.bytes.len() as u64)
        }

        fn label(&self) -> String {
            "memory".into()
        }
    }

    #[test]
    fn a_panicking_block_fetch_wakes_its_waiters() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let source = Arc::new(PanicsOnce {
            bytes: Bytes::from(bytes.clone()),
            calls: AtomicU32::new(0),
        });
        let runtime = crate::store::runtime();
        let storage = Arc::new(RemoteStorage::new(
            source,
            bytes.len() as u64,
            runtime.handle().clone(),
        ));
        // The first reader claims block 0 and its fetch panics; the second
        // asks for the same block meanwhile and waits for it.
        let first = {
            let storage = storage.clone();
            std::thread::spawn(move || storage.read_range(100, 50).map(|b| b.to_vec()))
        };
        std::thread::sleep(Duration::from_millis(100));
        let (sender, receiver) = std::sync::mpsc::channel();
        {
            let storage = storage.clone();
            std::thread::spawn(move || {
                let _ = sender.send(storage.read_range(10, 20).map(|b| b.to_vec()));
            });
        }
        assert!(
            first.join().is_err(),
            "the first fetch should have panicked"
        );
        let waited = receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("the waiter was not woken");
        assert!(waited.is_err(), "{waited:?}");
        // The block is fetched again by the next read.
        assert_eq!(&storage.read_range(10, 20).unwrap()[..], &bytes[10..30]);
    }
}
