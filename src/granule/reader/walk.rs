//! The metadata walk of `ReaderFile`: where each dataset's rows are stored
//! (contiguous, or chunks found by walking the chunk B-tree level by level,
//! each level's nodes fetched concurrently), groups' symbol tables warmed
//! ahead, and the byte ranges a planned read needs. Every count read from
//! the file is bounded by what the dataspace implies.

use std::ops::Range;
use std::sync::Arc;

use hdf5_reader::group::Group;

use super::{ReaderFile, dtype_of, lock, read_error};
use crate::granule::GranuleError;

/// Bytes fetched ahead for one chunk B-tree node: a full node of the
/// default 64 entries (K = 32) over a two-dimensional dataset.
const BTREE_NODE_GUESS: u64 = 24 + 65 * 32 + 64 * 8;
/// Deeper B-trees than this are corrupt (at least 8 entries a node).
const MAX_BTREE_DEPTH: usize = 16;
/// Bytes fetched ahead for a group's B-tree node (32 entries, K = 16), a
/// symbol table node (8 entries) or a local heap header.
const GROUP_NODE_GUESS: u64 = 1024;

/// Where the rows of one dataset are stored.
pub(super) enum Extents {
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

/// The most entries a version-1 B-tree node of a file may hold: 2K, with
/// the K values of its superblock (libhdf5 refuses a node with more).
/// `None` where the superblock does not give K (versions 2 and 3 keep the
/// chunk K in an extension; not written for ATL08): there only the bounds
/// of the whole tree apply.
#[derive(Debug, Clone, Copy)]
pub(super) struct NodeCaps {
    /// Chunk B-tree nodes (the indexed storage K; 32 in a version 0
    /// superblock, which libhdf5 writes only with that K).
    chunk: Option<usize>,
    /// Group B-tree nodes (the group internal node K).
    group: Option<usize>,
    /// Symbol table nodes (the group leaf node K).
    symbols: Option<usize>,
}

impl NodeCaps {
    pub(super) fn of(superblock: &hdf5_reader::superblock::Superblock) -> NodeCaps {
        let twice = |k: u16| (k > 0).then(|| 2 * usize::from(k));
        let (chunk, group, symbols) = match superblock.version {
            0 => (
                Some(64),
                superblock.group_internal_node_k,
                superblock.group_leaf_node_k,
            ),
            1 => (
                twice(superblock.indexed_storage_k),
                superblock.group_internal_node_k,
                superblock.group_leaf_node_k,
            ),
            _ => (None, 0, 0),
        };
        NodeCaps {
            chunk,
            group: twice(group),
            symbols: twice(symbols),
        }
    }
}

/// How many chunks a dataset's dataspace holds (the product over its
/// dimensions of the extent over the chunk size, rounded up): the most
/// entries its chunk B-tree may list.
struct ChunkBound {
    most: u64,
    shape: Vec<u64>,
    dims: Vec<u32>,
}

impl ChunkBound {
    fn new(shape: &[u64], dims: &[u32]) -> ChunkBound {
        let most = shape.iter().zip(dims).fold(1u64, |most, (&extent, &dim)| {
            most.saturating_mul(extent.div_ceil(u64::from(dim.max(1))))
        });
        ChunkBound {
            most,
            shape: shape.to_vec(),
            dims: dims.to_vec(),
        }
    }

    fn chunks(&self) -> String {
        format!(
            "{} chunk{}",
            self.most,
            if self.most == 1 { "" } else { "s" }
        )
    }

    /// Why a node may hold no more entries.
    fn holds(&self) -> String {
        format!(
            "its dataspace {:?} in chunks of {:?} holds {}",
            self.shape,
            self.dims,
            self.chunks()
        )
    }

    /// What a tree listing too many entries lists.
    fn more(&self) -> String {
        format!(
            "more than {}, all that its dataspace {:?} in chunks of {:?} holds",
            self.chunks(),
            self.shape,
            self.dims
        )
    }
}

/// An old-style group's entries as its index lists them (`group_index`).
pub(super) struct SymbolIndex {
    /// The data segment of the group's name heap.
    names: hdf5_reader::StorageBuffer,
    entries: Vec<SymbolEntry>,
}

struct SymbolEntry {
    /// The name's bytes in `SymbolIndex::names`.
    name: Range<usize>,
    /// The member's object header.
    object: u64,
    /// The B-tree and name heap of a member that is a group, when the
    /// entry caches them.
    cached_group: Option<(u64, u64)>,
}

impl ReaderFile {
    /// Where the rows of the dataset at `path` are stored (read once; the
    /// chunk B-tree is walked level by level, each level's nodes fetched
    /// concurrently, and bounded by what the dataspace holds).
    pub(super) fn extents(&self, path: &str) -> Result<Arc<Extents>, GranuleError> {
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
                let chunk_bytes = dims
                    .iter()
                    .fold(element, |bytes, &dim| bytes.saturating_mul(u64::from(dim)));
                let bound = ChunkBound::new(&shape, &dims);
                let chunks = self
                    .chunk_btree(address, shape.len(), &bound)
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
    /// entry count is checked against `most` (`bound` says why) before the
    /// node is read, and its type after. Gives the node and its length in
    /// bytes.
    fn btree_node(
        &self,
        address: u64,
        rank: Option<usize>,
        most: usize,
        bound: &dyn Fn() -> String,
    ) -> hdf5_reader::error::Result<(hdf5_reader::btree_v1::BTreeV1Node, u64)> {
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
        if entries > most {
            return Err(Error::InvalidData(format!(
                "the B-tree node at {address:#x} claims {entries} entries; {}",
                bound()
            )));
        }
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
        Ok((node, node_len as u64))
    }

    /// Checks the index of the old-style group at `path` (its B-tree,
    /// symbol table nodes and entry names; new-style groups, not written
    /// for ATL08, are left to hdf5-reader) before hdf5-reader reads all of
    /// its entries at the first lookup: no B-tree node with more entries
    /// than the file's nodes hold, no node or symbol table node twice,
    /// no symbol table node with more entries than the file's hold, no more
    /// node bytes than the file has (nodes do not overlap), and entry names
    /// that lie in the name heap without sharing bytes (their lengths add up
    /// to no more than the heap). What hdf5-reader builds for the group is
    /// then bounded by the file's size: a crafted group whose B-tree leaves
    /// all point at one full symbol table node, or whose names all run to
    /// the end of one long heap, fails instead of growing without bound.
    /// Over remote storage each level is fetched in one concurrent round.
    pub(super) fn group_index(
        &self,
        group: &Group,
        path: &str,
    ) -> hdf5_reader::error::Result<Option<SymbolIndex>> {
        use hdf5_reader::error::Error;
        use hdf5_reader::io::Cursor;
        use hdf5_reader::local_heap::LocalHeap;
        use hdf5_reader::messages::HdfMessage;

        let header = self.file.get_or_parse_header(group.address())?;
        let Some(table) = header.messages.iter().find_map(|message| match message {
            HdfMessage::SymbolTable(table) => Some(table.clone()),
            _ => None,
        }) else {
            return Ok(None);
        };
        let path = if path.is_empty() { "/" } else { path };
        let superblock = self.file.superblock();
        let (offset_size, length_size) = (superblock.offset_size, superblock.length_size);
        let storage = self.file.storage();
        let file_len = storage.len();
        let invalid = |what: String| Error::InvalidData(format!("group {path}: {what}"));
        let guess = |address: u64| address..address.saturating_add(GROUP_NODE_GUESS);
        let ahead = |ranges: &[Range<u64>]| {
            if let Some(prefetch) = &self.prefetch {
                prefetch.prefetch_metadata(ranges);
            }
        };
        ahead(&[guess(table.heap_address), guess(table.btree_address)]);
        let heap =
            LocalHeap::parse_at_storage(storage, table.heap_address, offset_size, length_size)?;
        let node_most = self.caps.group.unwrap_or(usize::MAX);
        let node_bound = || format!("a node of this file holds at most {node_most}");
        let mut visited = std::collections::HashSet::new();
        let mut walked = 0u64;
        let mut level = vec![table.btree_address];
        let mut symbol_nodes = Vec::new();
        for _ in 0..MAX_BTREE_DEPTH {
            level.retain(|&address| !Cursor::is_undefined_offset(address, offset_size));
            if level.is_empty() {
                break;
            }
            ahead(
                &level
                    .iter()
                    .map(|&address| guess(address))
                    .collect::<Vec<_>>(),
            );
            let mut next = Vec::new();
            for address in std::mem::take(&mut level) {
                if !visited.insert(address) {
                    return Err(invalid(format!(
                        "its B-tree revisits the node at {address:#x}"
                    )));
                }
                let (node, bytes) = self
                    .btree_node(address, None, node_most, &node_bound)
                    .map_err(|err| invalid(err.to_string()))?;
                walked += bytes;
                if walked > file_len {
                    return Err(invalid("its B-tree is larger than the file".into()));
                }
                if node.level > 0 {
                    next.extend(node.children);
                } else {
                    symbol_nodes.extend(node.children);
                }
            }
            level = next;
        }
        if !level.is_empty() {
            return Err(invalid(format!(
                "its B-tree is deeper than {MAX_BTREE_DEPTH} levels"
            )));
        }
        let names = heap.data_segment_address
            ..heap
                .data_segment_address
                .saturating_add(heap.data_segment_size);
        let mut wanted = vec![names.clone()];
        wanted.extend(symbol_nodes.iter().map(|&address| guess(address)));
        ahead(&wanted);

        // Symbol table nodes: "SNOD", version, reserved, entry count, then
        // entries of (name offset, header address, cache type, reserved,
        // 16-byte scratch pad: B-tree and heap addresses for cache type 1).
        let heap_len = usize::try_from(heap.data_segment_size)
            .map_err(|_| invalid("its name heap is larger than memory".into()))?;
        let names = storage.read_range(names.start, heap_len)?;
        let entry_len = 2 * usize::from(offset_size) + 8 + 16;
        let mut seen = std::collections::HashSet::new();
        let mut name_bytes = 0usize;
        let mut entries = Vec::new();
        for address in symbol_nodes {
            if !seen.insert(address) {
                return Err(invalid(format!(
                    "its B-tree lists the symbol table node at {address:#x} twice"
                )));
            }
            let head = storage.read_range(address, 8)?;
            if &head[..4] != b"SNOD" {
                return Err(invalid(format!("no symbol table node at {address:#x}")));
            }
            let count = usize::from(u16::from_le_bytes([head[6], head[7]]));
            if let Some(cap) = self.caps.symbols
                && count > cap
            {
                return Err(invalid(format!(
                    "the symbol table node at {address:#x} claims {count} entries; a node of this file holds at most {cap}"
                )));
            }
            walked += (8 + count * entry_len) as u64;
            if walked > file_len {
                return Err(invalid("its index is larger than the file".into()));
            }
            let bytes = storage.read_range(address + 8, count * entry_len)?;
            let mut cursor = Cursor::new(bytes.as_ref());
            for _ in 0..count {
                let name_offset = cursor.read_offset(offset_size)?;
                let object = cursor.read_offset(offset_size)?;
                let cache_type = cursor.read_u32_le()?;
                let _reserved = cursor.read_u32_le()?;
                let btree = cursor.read_offset(offset_size)?;
                let local_heap = cursor.read_offset(offset_size)?;
                cursor.read_bytes(16 - 2 * usize::from(offset_size))?;
                // A name out of the heap or without its end is hdf5-reader's
                // error to report.
                let start = usize::try_from(name_offset).unwrap_or(usize::MAX);
                let Some(end) = names.get(start..).and_then(|rest| {
                    rest.iter()
                        .position(|&byte| byte == 0)
                        .map(|end| start + end)
                }) else {
                    continue;
                };
                name_bytes += end - start + 1;
                if name_bytes > heap_len {
                    return Err(invalid(
                        "the names of its entries overlap in its name heap".into(),
                    ));
                }
                entries.push(SymbolEntry {
                    name: start..end,
                    object,
                    cached_group: (cache_type == 1).then_some((btree, local_heap)),
                });
            }
        }
        Ok(Some(SymbolIndex { names, entries }))
    }

    /// Brings the structure of the group at `path` (local heap, B-tree,
    /// symbol table nodes) into the cache, a round trip per level
    /// (`group_index`), and then the header of its member `wanted`, with
    /// its heap and B-tree when it is a group (its symbol table entry
    /// caches these addresses). Without this, finding a
    /// member reads the symbol table nodes one after another, a round trip
    /// each, remotely.
    pub(super) fn warm_group(&self, path: &str, wanted: &str) -> hdf5_reader::error::Result<()> {
        let Some(prefetch) = &self.prefetch else {
            return Ok(());
        };
        let group = self.group(path)?;
        let Some(index) = self.group_index(&group, path)? else {
            // A new-style group (not written for ATL08): read on demand.
            return Ok(());
        };
        let guess = |address: u64| address..address.saturating_add(GROUP_NODE_GUESS);
        let mut ahead = Vec::new();
        for entry in &index.entries {
            let name = &index.names.as_ref()[entry.name.clone()];
            if wanted.as_bytes() != name {
                continue;
            }
            ahead.push(guess(entry.object));
            if let Some((btree, heap)) = entry.cached_group {
                ahead.extend([guess(btree), guess(heap)]);
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
    /// so the walk costs one round trip per level. The tree is bounded as
    /// it is read: no node with more entries than the file's nodes hold or
    /// than `bound` has chunks, no level and no set of leaves with more
    /// than that, no node twice, and no more node bytes than the file has,
    /// so a crafted tree fails the dataset instead of growing without bound
    /// (hdf5-reader walks the same tree when it reads, so `read_runs`
    /// checks it here first).
    fn chunk_btree(
        &self,
        root: u64,
        rank: usize,
        bound: &ChunkBound,
    ) -> hdf5_reader::error::Result<Vec<(u64, Range<u64>)>> {
        use hdf5_reader::btree_v1::BTreeV1Key;
        use hdf5_reader::error::Error;
        use hdf5_reader::io::Cursor;

        let offset_size = self.file.superblock().offset_size;
        let file_len = self.file.storage().len();
        let most = usize::try_from(bound.most).unwrap_or(usize::MAX);
        let node_most = self.caps.chunk.unwrap_or(usize::MAX).min(most);
        let node_bound = || match self.caps.chunk {
            Some(cap) if cap < most => format!("a node of this file holds at most {cap}"),
            _ => bound.holds(),
        };
        let too_many = || Error::InvalidData(format!("the chunk B-tree lists {}", bound.more()));
        let mut chunks = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let mut walked = 0u64;
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
                let (node, bytes) = self.btree_node(address, Some(rank), node_most, &node_bound)?;
                walked += bytes;
                if walked > file_len {
                    return Err(Error::InvalidData(format!(
                        "the chunk B-tree at {root:#x} is larger than the file"
                    )));
                }
                if node.level > 0 {
                    next.extend(node.children);
                    if next.len() > most {
                        return Err(too_many());
                    }
                    continue;
                }
                if chunks.len() + node.children.len() > most {
                    return Err(too_many());
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
    pub(super) fn chunk_ranges(
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
                let decoded = (ranges.len() as u64).saturating_mul(*chunk_bytes);
                (ranges, decoded)
            }
            Extents::Contiguous {
                address,
                size,
                n_rows,
            } => {
                // Saturating: the values come from the file.
                let row_bytes = size / (*n_rows).max(1);
                let at = |row: u64| address.saturating_add(row.saturating_mul(row_bytes));
                match runs {
                    None => (vec![*address..address.saturating_add(*size)], *size),
                    Some(runs) => (
                        runs.iter().map(|run| at(run.start)..at(run.end)).collect(),
                        runs.iter().fold(0u64, |sum, run| {
                            sum.saturating_add((run.end - run.start).saturating_mul(row_bytes))
                        }),
                    ),
                }
            }
            Extents::Other => (Vec::new(), 0),
        })
    }
}
