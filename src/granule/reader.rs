//! The production `Hdf5Source`: `hdf5-reader` (Rust, no global lock; chunks
//! inflated by libdeflate, `inflate`) over any byte `Storage`: a local file
//! read by ranges, or remote ranges.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdf5_reader::{
    Dataset, Datatype, Hdf5File, OpenOptions, SliceInfo, SliceInfoElem, Storage, group::Group,
};

use super::inflate::{self, ChunkLimit};

use super::GranuleError;
use super::h5::{DatasetInfo, Dtype, Hdf5Source, Node, PlannedRead, Values};
use crate::values_of_dtype;

/// Upper bound for one decoded read: far above any ATL08 dataset (the largest,
/// photon heights of a strong beam, are tens of MB), so a corrupt extent
/// cannot make us allocate without bound.
const MAX_READ_BYTES: usize = 2 << 30;

/// Fetches byte ranges ahead of the reads that will need them (remote
/// storage); later reads of those bytes are then served without waiting.
pub trait Prefetch: Send + Sync {
    /// Fetches chunk data ranges, merged and concurrently, and keeps them.
    fn prefetch(&self, ranges: &[Range<u64>]) -> Result<(), GranuleError>;
    /// Brings the metadata under `ranges` into the block cache concurrently
    /// (a hint: failures surface when the bytes are read).
    fn prefetch_metadata(&self, ranges: &[Range<u64>]);
}

/// Paths walked at once while preloading metadata or planning reads (each
/// walk mostly waits on round trips).
const PLANNING_THREADS: usize = 64;
/// Bytes fetched ahead for one chunk B-tree node: a full node of the
/// default 64 entries (K = 32) over a two-dimensional dataset.
const BTREE_NODE_GUESS: u64 = 24 + 65 * 32 + 64 * 8;
/// Deeper B-trees than this are corrupt (at least 8 entries a node).
const MAX_BTREE_DEPTH: usize = 16;
/// Bytes fetched ahead for a group's B-tree node (32 entries, K = 16), a
/// symbol table node (8 entries) or a local heap header.
const GROUP_NODE_GUESS: u64 = 1024;

/// Where the rows of one dataset are stored.
enum Extents {
    /// Chunked with a version-1 B-tree (superblock 0, as NASA writes
    /// ATL08): the first row and the stored bytes of every chunk, by row.
    Chunked {
        rows_per_chunk: u64,
        /// Decompressed bytes of one chunk.
        chunk_bytes: u64,
        chunks: Vec<(u64, Range<u64>)>,
    },
    /// One stored run of `size` bytes.
    Contiguous {
        address: u64,
        size: u64,
        n_rows: u64,
    },
    /// Compact data, other chunk indexes (not written for ATL08): read on
    /// demand.
    Other,
}

/// One open granule read through `hdf5-reader`.
pub struct ReaderFile {
    file: Hdf5File,
    /// Groups found, by path: `Hdf5File::group` walks from the root at
    /// each call.
    groups: Mutex<HashMap<String, Group>>,
    /// Datasets opened, by path, shared: a `Dataset` is costly to clone.
    datasets: Mutex<HashMap<String, Arc<Dataset>>>,
    extents: Mutex<HashMap<String, Arc<Extents>>>,
    prefetch: Option<Arc<dyn Prefetch>>,
    /// Decompressed bytes of the chunks planned reads touch.
    decoded: AtomicU64,
    /// The largest chunk of the datasets opened: the first output size a
    /// chunk is inflated into.
    chunk_limit: ChunkLimit,
}

impl ReaderFile {
    /// Opens the HDF5 structure over `storage` (reads the superblock only).
    pub fn open(storage: Arc<dyn Storage>) -> Result<ReaderFile, GranuleError> {
        ReaderFile::open_with_prefetch(storage, None)
    }

    /// Opens with a prefetcher that `prepare` hands the planned chunk ranges to.
    pub fn open_with_prefetch(
        storage: Arc<dyn Storage>,
        prefetch: Option<Arc<dyn Prefetch>>,
    ) -> Result<ReaderFile, GranuleError> {
        let len = storage.len();
        if len == 0 {
            return Err(GranuleError::NotHdf5("the file is empty (0 bytes)".into()));
        }
        let start = storage
            .read_range(0, len.min(64) as usize)
            .map_err(|err| GranuleError::NotHdf5(err.to_string()))?;
        if !start.starts_with(&hdf5_reader::superblock::HDF5_MAGIC) && looks_like_text(&start) {
            let text: String = String::from_utf8_lossy(&start)
                .chars()
                .take(40)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            return Err(GranuleError::NotHdf5(format!(
                "a text file, not HDF5 (it begins \"{}\"; an error page saved as a granule?)",
                text.trim()
            )));
        }
        let chunk_limit = ChunkLimit::default();
        let options = OpenOptions::default()
            .with_max_read_bytes(MAX_READ_BYTES)
            .with_filter_registry(inflate::registry(
                chunk_limit.clone(),
                hdf5_reader::DEFAULT_MAX_CHUNK_BYTES,
            ));
        let file = Hdf5File::from_storage_with_options(storage, options)
            .map_err(|err| GranuleError::NotHdf5(err.to_string()))?;
        let superblock = file.superblock();
        let declared = superblock
            .eof_address
            .saturating_add(superblock.base_address);
        if superblock.eof_address != u64::MAX && declared > len {
            return Err(GranuleError::NotHdf5(format!(
                "truncated: {len} bytes, but its superblock says {declared}"
            )));
        }
        Ok(ReaderFile {
            file,
            groups: Mutex::new(HashMap::new()),
            datasets: Mutex::new(HashMap::new()),
            extents: Mutex::new(HashMap::new()),
            prefetch,
            decoded: AtomicU64::new(0),
            chunk_limit,
        })
    }

    /// Decompressed bytes of the chunks the planned reads covered.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// The group at `path`, found from its parent's handle and kept.
    fn group(&self, path: &str) -> hdf5_reader::error::Result<Group> {
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return self.file.root_group();
        }
        if let Some(group) = lock(&self.groups).get(path) {
            return Ok(group.clone());
        }
        let (parent, name) = split_parent(path);
        let group = self.group(parent)?.group(name)?;
        lock(&self.groups).insert(path.to_string(), group.clone());
        Ok(group)
    }

    fn open_dataset(&self, path: &str) -> Result<Arc<Dataset>, GranuleError> {
        if let Some(dataset) = lock(&self.datasets).get(path) {
            return Ok(dataset.clone());
        }
        // Opened without the lock held: other datasets open meanwhile.
        let dataset = self
            .file
            .dataset(path)
            .map_err(|err| read_error(path, err))?;
        Ok(self.remember(path, dataset))
    }

    /// Keeps an opened dataset; its chunk size raises what a chunk of this
    /// file may inflate to (every chunk decoded belongs to a dataset kept
    /// here first).
    fn remember(&self, path: &str, dataset: Dataset) -> Arc<Dataset> {
        if let (Some(chunk), Ok(element)) = (dataset.chunks(), dataset.raw_element_size()) {
            let elements = chunk.iter().map(|&n| u64::from(n)).product::<u64>();
            self.chunk_limit
                .raise(elements.saturating_mul(element as u64));
        }
        let dataset = Arc::new(dataset);
        lock(&self.datasets).insert(path.to_string(), dataset.clone());
        dataset
    }

    /// Where the rows of the dataset at `path` are stored (read once; the
    /// chunk B-tree is walked level by level, each level's nodes fetched
    /// concurrently).
    fn extents(&self, path: &str) -> Result<Arc<Extents>, GranuleError> {
        use hdf5_reader::messages::HdfMessage;
        use hdf5_reader::messages::layout::DataLayout;

        if let Some(extents) = lock(&self.extents).get(path) {
            return Ok(extents.clone());
        }
        let dataset = self.open_dataset(path)?;
        let shape = dataset.shape().to_vec();
        let header = self
            .file
            .get_or_parse_header(dataset.address())
            .map_err(|err| read_error(path, err))?;
        let layout = header.messages.iter().find_map(|message| match message {
            HdfMessage::DataLayout(message) => Some(message.layout.clone()),
            _ => None,
        });
        let extents = match layout {
            Some(DataLayout::Chunked {
                address,
                dims,
                chunk_indexing: None,
                ..
            }) if !dims.is_empty() && dims.len() == shape.len() => {
                let rows_per_chunk = u64::from(dims[0]).max(1);
                let element = dtype_of(dataset.dtype()).map_or(0, |dtype| dtype.size() as u64);
                let chunk_bytes = dims.iter().map(|&dim| u64::from(dim)).product::<u64>() * element;
                let chunks = self
                    .chunk_btree(address, shape.len())
                    .map_err(|err| read_error(path, err))?;
                Extents::Chunked {
                    rows_per_chunk,
                    chunk_bytes,
                    chunks,
                }
            }
            Some(DataLayout::Contiguous { address, size }) => Extents::Contiguous {
                address,
                size,
                n_rows: shape.first().copied().unwrap_or(1),
            },
            _ => Extents::Other,
        };
        let extents = Arc::new(extents);
        lock(&self.extents).insert(path.to_string(), extents.clone());
        Ok(extents)
    }

    /// The version-1 B-tree node at `address`: a group index (`rank`
    /// `None`) or the chunk index of a `rank`-dimensional dataset; its
    /// type is checked.
    fn btree_node(
        &self,
        address: u64,
        rank: Option<usize>,
    ) -> hdf5_reader::error::Result<hdf5_reader::btree_v1::BTreeV1Node> {
        use hdf5_reader::btree_v1::BTreeV1Node;
        use hdf5_reader::error::Error;
        use hdf5_reader::io::Cursor;

        let superblock = self.file.superblock();
        let (offset_size, length_size) = (superblock.offset_size, superblock.length_size);
        let storage = self.file.storage();
        let header_len = 8 + 2 * usize::from(offset_size);
        // Chunk keys: size, filter mask and rank + 1 offsets of 8 bytes.
        let key_size = rank.map_or(usize::from(length_size), |rank| 8 + (rank + 1) * 8);
        let head = storage.read_range(address, header_len)?;
        let entries = usize::from(u16::from_le_bytes([head[6], head[7]]));
        let node_len = header_len + (entries + 1) * key_size + entries * usize::from(offset_size);
        let bytes = storage.read_range(address, node_len)?;
        let node = BTreeV1Node::parse(
            &mut Cursor::new(bytes.as_ref()),
            offset_size,
            length_size,
            rank.map(|rank| rank as u32),
        )?;
        let (expected, kind) = if rank.is_some() {
            (1, "chunk")
        } else {
            (0, "group")
        };
        if node.node_type != expected {
            return Err(Error::InvalidData(format!(
                "B-tree node at {address:#x} is not a {kind} index"
            )));
        }
        Ok(node)
    }

    /// Brings the structure of the group at `path` (local heap, B-tree,
    /// symbol table nodes) into the cache, a round trip per level, and then
    /// the headers of its members named in `wanted`, with the heap and
    /// B-tree of those that are groups (their symbol table entries cache
    /// these addresses). Without this, finding a member reads the symbol
    /// table nodes one after another, a round trip each, remotely.
    fn warm_group(&self, path: &str, wanted: &[&str]) -> hdf5_reader::error::Result<()> {
        use hdf5_reader::error::Error;
        use hdf5_reader::io::Cursor;
        use hdf5_reader::local_heap::LocalHeap;
        use hdf5_reader::messages::HdfMessage;

        let Some(prefetch) = &self.prefetch else {
            return Ok(());
        };
        let group = self.group(path)?;
        let header = self.file.get_or_parse_header(group.address())?;
        let Some(table) = header.messages.iter().find_map(|message| match message {
            HdfMessage::SymbolTable(table) => Some(table.clone()),
            _ => None,
        }) else {
            // A new-style group (not written for ATL08): read on demand.
            return Ok(());
        };
        let superblock = self.file.superblock();
        let (offset_size, length_size) = (superblock.offset_size, superblock.length_size);
        let storage = self.file.storage();
        let guess = |address: u64| address..address.saturating_add(GROUP_NODE_GUESS);
        prefetch.prefetch_metadata(&[guess(table.heap_address), guess(table.btree_address)]);
        let heap =
            LocalHeap::parse_at_storage(storage, table.heap_address, offset_size, length_size)?;
        let mut visited = std::collections::HashSet::new();
        let mut level = vec![table.btree_address];
        let mut symbol_nodes = Vec::new();
        for _ in 0..MAX_BTREE_DEPTH {
            level.retain(|&address| !Cursor::is_undefined_offset(address, offset_size));
            if level.is_empty() {
                break;
            }
            let ahead: Vec<Range<u64>> = level.iter().map(|&address| guess(address)).collect();
            prefetch.prefetch_metadata(&ahead);
            let mut next = Vec::new();
            for address in std::mem::take(&mut level) {
                if !visited.insert(address) {
                    return Err(Error::InvalidData(format!(
                        "the B-tree of group {path} revisits the node at {address:#x}"
                    )));
                }
                let node = self.btree_node(address, None)?;
                if node.level > 0 {
                    next.extend(node.children);
                } else {
                    symbol_nodes.extend(node.children);
                }
            }
            level = next;
        }
        if !level.is_empty() {
            return Err(Error::InvalidData(format!(
                "the B-tree of group {path} is deeper than {MAX_BTREE_DEPTH} levels"
            )));
        }
        let names = heap.data_segment_address
            ..heap
                .data_segment_address
                .saturating_add(heap.data_segment_size);
        let mut ahead = vec![names.clone()];
        ahead.extend(symbol_nodes.iter().map(|&address| guess(address)));
        prefetch.prefetch_metadata(&ahead);

        // Symbol table nodes: "SNOD", version, reserved, entry count, then
        // entries of (name offset, header address, cache type, reserved,
        // 16-byte scratch pad: B-tree and heap addresses for cache type 1).
        let names = storage.read_range(names.start, heap.data_segment_size as usize)?;
        let entry_len = 2 * usize::from(offset_size) + 8 + 16;
        let mut ahead = Vec::new();
        for address in symbol_nodes {
            let head = storage.read_range(address, 8)?;
            if &head[..4] != b"SNOD" {
                return Err(Error::InvalidData(format!(
                    "no symbol table node at {address:#x}"
                )));
            }
            let count = usize::from(u16::from_le_bytes([head[6], head[7]]));
            let bytes = storage.read_range(address + 8, count * entry_len)?;
            let mut cursor = Cursor::new(bytes.as_ref());
            for _ in 0..count {
                let name_offset = cursor.read_offset(offset_size)? as usize;
                let object = cursor.read_offset(offset_size)?;
                let cache_type = cursor.read_u32_le()?;
                let _reserved = cursor.read_u32_le()?;
                let btree = cursor.read_offset(offset_size)?;
                let local_heap = cursor.read_offset(offset_size)?;
                cursor.read_bytes(16 - 2 * usize::from(offset_size))?;
                let name = names
                    .get(name_offset..)
                    .and_then(|rest| rest.split(|&byte| byte == 0).next())
                    .unwrap_or_default();
                if !wanted.iter().any(|want| want.as_bytes() == name) {
                    continue;
                }
                ahead.push(guess(object));
                if cache_type == 1 {
                    ahead.extend([guess(btree), guess(local_heap)]);
                }
            }
        }
        if !ahead.is_empty() {
            prefetch.prefetch_metadata(&ahead);
        }
        Ok(())
    }

    /// The leaves of the version-1 chunk B-tree at `root` over a
    /// `rank`-dimensional dataset: (first row, stored bytes) of each chunk,
    /// by row. Each level's nodes are fetched ahead in one concurrent round,
    /// so the walk costs one round trip per level.
    fn chunk_btree(
        &self,
        root: u64,
        rank: usize,
    ) -> hdf5_reader::error::Result<Vec<(u64, Range<u64>)>> {
        use hdf5_reader::btree_v1::BTreeV1Key;
        use hdf5_reader::error::Error;
        use hdf5_reader::io::Cursor;

        let offset_size = self.file.superblock().offset_size;
        let mut chunks = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let mut level = vec![root];
        for _ in 0..MAX_BTREE_DEPTH {
            level.retain(|&address| !Cursor::is_undefined_offset(address, offset_size));
            if level.is_empty() {
                chunks.sort_by_key(|(row, range): &(u64, Range<u64>)| (*row, range.start));
                return Ok(chunks);
            }
            if let Some(prefetch) = &self.prefetch {
                let ahead: Vec<Range<u64>> = level
                    .iter()
                    .map(|&address| address..address.saturating_add(BTREE_NODE_GUESS))
                    .collect();
                prefetch.prefetch_metadata(&ahead);
            }
            let mut next = Vec::new();
            for address in std::mem::take(&mut level) {
                if !visited.insert(address) {
                    return Err(Error::InvalidData(format!(
                        "chunk B-tree revisits the node at {address:#x}"
                    )));
                }
                let node = self.btree_node(address, Some(rank))?;
                if node.level > 0 {
                    next.extend(node.children);
                    continue;
                }
                for (key, child) in node.keys.iter().zip(node.children) {
                    if let BTreeV1Key::RawData {
                        chunk_size,
                        offsets,
                        ..
                    } = key
                    {
                        let row = offsets.first().copied().unwrap_or(0);
                        chunks.push((row, child..child.saturating_add(u64::from(*chunk_size))));
                    }
                }
            }
            level = next;
        }
        Err(Error::InvalidData(format!(
            "chunk B-tree at {root:#x} is deeper than {MAX_BTREE_DEPTH} levels"
        )))
    }

    /// The stored byte ranges holding rows `runs` (all rows when `None`) of
    /// the dataset at `path`, and their decompressed size.
    fn chunk_ranges(
        &self,
        path: &str,
        runs: Option<&[Range<u64>]>,
    ) -> Result<(Vec<Range<u64>>, u64), GranuleError> {
        let overlaps = |rows: Range<u64>| match runs {
            None => true,
            Some(runs) => runs
                .iter()
                .any(|run| run.start < rows.end && rows.start < run.end),
        };
        Ok(match &*self.extents(path)? {
            Extents::Chunked {
                rows_per_chunk,
                chunk_bytes,
                chunks,
            } => {
                let ranges: Vec<Range<u64>> = chunks
                    .iter()
                    .filter(|(row, _)| overlaps(*row..row + rows_per_chunk))
                    .map(|(_, range)| range.clone())
                    .collect();
                let decoded = ranges.len() as u64 * chunk_bytes;
                (ranges, decoded)
            }
            Extents::Contiguous {
                address,
                size,
                n_rows,
            } => {
                let row_bytes = size / (*n_rows).max(1);
                match runs {
                    None => (vec![*address..address + size], *size),
                    Some(runs) => (
                        runs.iter()
                            .map(|run| {
                                address + run.start * row_bytes..address + run.end * row_bytes
                            })
                            .collect(),
                        runs.iter()
                            .map(|run| (run.end - run.start) * row_bytes)
                            .sum(),
                    ),
                }
            }
            Extents::Other => (Vec::new(), 0),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Calls `work` on every item from up to `PLANNING_THREADS` threads.
fn concurrently<T: Sync>(items: &[T], work: impl Fn(&T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..items.len().min(PLANNING_THREADS) {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    work(item);
                }
            });
        }
    });
}

/// Whether bytes are text (printable ASCII and whitespace), as an HTML
/// error page or a text file named `.h5` is.
fn looks_like_text(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&byte| byte.is_ascii_graphic() || byte.is_ascii_whitespace())
}

fn read_error(path: &str, err: hdf5_reader::error::Error) -> GranuleError {
    GranuleError::Read {
        path: path.to_string(),
        message: err.to_string(),
    }
}

/// Our element type for a stored HDF5 type; `None` for non-numeric types.
fn dtype_of(datatype: &Datatype) -> Option<Dtype> {
    match datatype {
        Datatype::FixedPoint { size, signed, .. } => {
            Dtype::from_parts(false, *signed, *size as usize)
        }
        Datatype::FloatingPoint { size, .. } => Dtype::from_parts(true, true, *size as usize),
        Datatype::Enum { base, .. } => dtype_of(base),
        _ => None,
    }
}

fn type_name(datatype: &Datatype) -> String {
    match dtype_of(datatype) {
        Some(dtype) => dtype.name().to_string(),
        None => match datatype {
            Datatype::String { .. }
            | Datatype::VarLen {
                kind: hdf5_reader::VarLenKind::String,
                ..
            } => "string".to_string(),
            Datatype::VarLen { .. } => "vlen".to_string(),
            Datatype::Compound { .. } => "compound".to_string(),
            Datatype::Reference { .. } => "reference".to_string(),
            other => format!("{other:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or("other")
                .to_lowercase(),
        },
    }
}

fn split_parent(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => ("/", &trimmed[1..]),
        Some(index) => (&trimmed[..index], &trimmed[index + 1..]),
        None => ("/", trimmed),
    }
}

impl Hdf5Source for ReaderFile {
    /// Opens the datasets and walks their chunk indexes, concurrently over
    /// remote storage (each is a few small reads, round trips there), then
    /// hands every chunk the reads need to the prefetcher in one go. Local
    /// files are walked on the calling thread: nothing waits, and threads
    /// started for every beam of every granule cost more than the walk (13%
    /// of a bulk run's CPU went to 962 such threads).
    fn prepare(&self, reads: &[PlannedRead]) -> Result<(), GranuleError> {
        let ranges = Mutex::new(Vec::new());
        let plan = |read: &PlannedRead| {
            if self.node(&read.path).ok() != Some(Node::Dataset) {
                return;
            }
            // A dataset that cannot be planned is read (and its error
            // reported) on demand.
            if let Ok((found, decoded)) = self.chunk_ranges(&read.path, read.runs.as_deref()) {
                lock(&ranges).extend(found);
                self.decoded.fetch_add(decoded, Ordering::Relaxed);
            }
        };
        if self.prefetch.is_some() {
            concurrently(reads, plan);
        } else {
            reads.iter().for_each(plan);
        }
        let ranges = ranges
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &self.prefetch {
            Some(prefetch) if !ranges.is_empty() => prefetch.prefetch(&ranges),
            _ => Ok(()),
        }
    }

    /// Over remote storage, walks the paths and the chunk indexes of their
    /// datasets concurrently, so later steps find their metadata cached.
    fn preload(&self, paths: &[String]) {
        if self.prefetch.is_none() {
            return;
        }
        // Each group, a level at a time from the root (a group is found
        // through its parent), with the members the paths go through.
        let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for path in paths {
            let mut parent = "/";
            for (index, _) in path.match_indices('/').skip(1).chain([(path.len(), "")]) {
                let (_, name) = split_parent(&path[..index]);
                let members = wanted.entry(parent).or_default();
                if !members.contains(&name) {
                    members.push(name);
                }
                parent = &path[..index];
            }
        }
        let depth = |group: &str| group.trim_end_matches('/').matches('/').count();
        let deepest = wanted.keys().map(|group| depth(group)).max().unwrap_or(0);
        for level in 0..=deepest {
            let groups: Vec<(&str, &Vec<&str>)> = wanted
                .iter()
                .filter(|(group, _)| depth(group) == level)
                .map(|(group, members)| (*group, members))
                .collect();
            concurrently(&groups, |(group, members)| {
                if self.node(group).ok() == Some(Node::Group) {
                    let _ = self.warm_group(group, members);
                }
            });
        }
        concurrently(paths, |path| {
            if self.node(path).ok() == Some(Node::Dataset) {
                let _ = self.extents(path);
            }
        });
    }

    /// Looks up only `path`'s own name in its parent (listing the parent
    /// would read the header of every sibling).
    fn node(&self, path: &str) -> Result<Node, GranuleError> {
        use hdf5_reader::error::Error;

        if path.trim_end_matches('/').is_empty() {
            return Ok(Node::Group);
        }
        if lock(&self.datasets).contains_key(path) {
            return Ok(Node::Dataset);
        }
        let path = path.trim_end_matches('/');
        if lock(&self.groups).contains_key(path) {
            return Ok(Node::Group);
        }
        let (parent, name) = split_parent(path);
        if parent != "/" && self.node(parent)? != Node::Group {
            return Ok(Node::Missing);
        }
        let group = self.group(parent).map_err(|err| read_error(parent, err))?;
        // Datasets first: most paths asked for are.
        match group.dataset(name) {
            Ok(dataset) => {
                self.remember(path, dataset);
                return Ok(Node::Dataset);
            }
            Err(Error::DatasetNotFound(_)) => {}
            Err(err) => return Err(read_error(path, err)),
        }
        match group.group(name) {
            Ok(child) => {
                lock(&self.groups).insert(path.to_string(), child);
                Ok(Node::Group)
            }
            Err(Error::GroupNotFound(_)) => Ok(Node::Missing),
            Err(err) => Err(read_error(path, err)),
        }
    }

    fn members(&self, group: &str) -> Result<Vec<String>, GranuleError> {
        let handle = self.group(group).map_err(|err| read_error(group, err))?;
        let (groups, datasets) = handle
            .member_names()
            .map_err(|err| read_error(group, err))?;
        let mut names: Vec<String> = groups.into_iter().chain(datasets).collect();
        names.sort();
        Ok(names)
    }

    fn dataset(&self, path: &str) -> Result<DatasetInfo, GranuleError> {
        let dataset = self.open_dataset(path)?;
        let dtype = dtype_of(dataset.dtype());
        let fill_attribute = match (
            dtype,
            dataset
                .attributes()
                .into_iter()
                .find(|a| a.name == "_FillValue"),
        ) {
            (Some(dtype), Some(attribute)) => Some(values_of_dtype!(dtype, T => {
                let values: Vec<T> = attribute.read_1d::<T>().map_err(|err| read_error(path, err))?;
                values.into_iter().take(1).collect()
            })),
            _ => None,
        };
        Ok(DatasetInfo {
            dtype,
            type_name: type_name(dataset.dtype()),
            shape: dataset.shape().to_vec(),
            chunks: dataset
                .chunks()
                .map(|dims| dims.into_iter().map(u64::from).collect()),
            fill_attribute,
        })
    }

    fn read_runs(&self, path: &str, runs: &[Range<u64>]) -> Result<Values, GranuleError> {
        let dataset = self.open_dataset(path)?;
        let dtype = dtype_of(dataset.dtype()).ok_or_else(|| GranuleError::Read {
            path: path.to_string(),
            message: format!("not a numeric dataset ({})", type_name(dataset.dtype())),
        })?;
        let shape = dataset.shape().to_vec();
        let mut values = Values::empty(dtype);
        for run in runs {
            if run.is_empty() {
                continue;
            }
            let part = values_of_dtype!(dtype, T => {
                let array = if shape.is_empty() {
                    dataset.read_array::<T>()
                } else {
                    let mut selections = vec![SliceInfoElem::Slice { start: run.start, end: run.end, step: 1 }];
                    selections.extend(shape[1..].iter().map(|&extent| SliceInfoElem::Slice { start: 0, end: extent, step: 1 }));
                    dataset.read_slice::<T>(&SliceInfo { selections })
                }
                .map_err(|err| read_error(path, err))?;
                if array.is_standard_layout() {
                    let (raw, _) = array.into_raw_vec_and_offset();
                    raw
                } else {
                    array.iter().copied().collect()
                }
            });
            values.extend(part)?;
        }
        Ok(values)
    }

    fn read_strings(&self, path: &str) -> Result<Vec<String>, GranuleError> {
        let dataset = self.open_dataset(path)?;
        dataset.read_strings().map_err(|err| read_error(path, err))
    }

    fn attr_text(&self, path: &str, name: &str) -> Result<Option<String>, GranuleError> {
        let attributes = match self.node(path)? {
            Node::Group => self.group(path).and_then(|group| group.attributes()),
            Node::Dataset => Ok(self.open_dataset(path)?.attributes()),
            Node::Missing => return Ok(None),
        }
        .map_err(|err| read_error(path, err))?;
        let Some(attribute) = attributes.into_iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        if let Ok(strings) = attribute.read_strings() {
            return Ok(strings
                .into_iter()
                .next()
                .map(|text| text.trim().to_string()));
        }
        if let Ok(text) = attribute.read_string() {
            return Ok(Some(text.trim().to_string()));
        }
        match attribute.read_1d::<f64>() {
            Ok(numbers) => Ok(numbers.first().map(|number| format!("{number}"))),
            Err(err) => Err(read_error(&format!("{path}@{name}"), err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_parent;

    #[test]
    fn splits_paths() {
        assert_eq!(split_parent("/gt1l"), ("/", "gt1l"));
        assert_eq!(
            split_parent("/gt1l/land_segments/latitude"),
            ("/gt1l/land_segments", "latitude")
        );
    }
}
