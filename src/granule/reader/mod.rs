//! The production `Hdf5Source`: `hdf5-reader` (Rust, no global lock; chunks
//! inflated by libdeflate, `inflate`) over any byte `Storage`: a local file
//! read by ranges, or remote ranges.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdf5_reader::{
    Dataset, Datatype, Hdf5File, OpenOptions, SliceInfo, SliceInfoElem, Storage, group::Group,
};

mod walk;

use walk::{Extents, NodeCaps};

use crate::granule::inflate::{self, ChunkLimit};

use crate::granule::GranuleError;
use crate::granule::h5::{DatasetInfo, Dtype, FirstData, Hdf5Source, Node, PlannedRead, Values};
use crate::values_of_dtype;

/// Decoded bytes one granule's reads may take, summed over all of them
/// (`read_runs`, `read_strings`; hdf5-reader's limit for a single read is
/// the same), so a granule that declares more than it holds (a dataspace
/// of 10^11 rows over unallocated chunks) fails with its dataset named
/// before anything is allocated for it, and decoding one granule never
/// holds more than this in values, times the decode threads.
///
/// Why this much: a request reads the segment variables of the segments in
/// its polygon (tens of thousands of segments a beam even for a whole
/// granule: a few MB a variable) and the photon variables of those
/// segments. The largest ATL08 granules (about 1 GB) hold tens of millions
/// of signal photons over six beams; every photon variable of the catalog,
/// with the `ph_segment_id` check, is 26 bytes a photon, so the budget
/// holds some 20 million photons with all of them and 67 million with
/// `ph_h` alone. A polygon over part of a granule's track stays well under
/// it; only a request for every photon variable over the whole of one of
/// the largest granules could reach it, and that granule then fails with
/// the budget named in its reason rather than the process running out of
/// memory.
pub const READ_BUDGET: u64 = 512 << 20;

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
/// Paths walked at once by `preload` (every dataset a request may read in
/// every beam: six beams of a dozen variables fit).
const PRELOAD_THREADS: usize = 256;
/// One open granule read through `hdf5-reader`.
pub struct ReaderFile {
    file: Hdf5File,
    /// Groups found, by path: `Hdf5File::group` walks from the root at
    /// each call.
    /// Whether a group's index was checked (`group_index`) is kept with
    /// it: a group is checked when something is first looked up in it, not
    /// when it is found, so finding one (a beam the request leaves out)
    /// costs no reads of its index.
    groups: Mutex<HashMap<String, (Group, bool)>>,
    /// Datasets opened, by path, shared: a `Dataset` is costly to clone.
    datasets: Mutex<HashMap<String, Arc<Dataset>>>,
    extents: Mutex<HashMap<String, Arc<Extents>>>,
    prefetch: Option<Arc<dyn Prefetch>>,
    /// Decompressed bytes of the chunks planned reads touch.
    decoded: AtomicU64,
    /// Decoded bytes the reads took so far, against `budget`.
    read: AtomicU64,
    /// `READ_BUDGET` unless set otherwise (`with_read_budget`).
    budget: u64,
    /// The most entries a B-tree node of this file may hold.
    caps: NodeCaps,
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
            .with_max_read_bytes(READ_BUDGET as usize)
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
        let caps = NodeCaps::of(superblock);
        Ok(ReaderFile {
            file,
            groups: Mutex::new(HashMap::new()),
            datasets: Mutex::new(HashMap::new()),
            extents: Mutex::new(HashMap::new()),
            prefetch,
            decoded: AtomicU64::new(0),
            read: AtomicU64::new(0),
            budget: READ_BUDGET,
            caps,
            chunk_limit,
        })
    }

    /// Sets the decoded bytes this granule's reads may take in all, in place
    /// of `READ_BUDGET` (no more than it: hdf5-reader's limit for one read
    /// stays `READ_BUDGET`).
    pub fn with_read_budget(mut self, bytes: u64) -> ReaderFile {
        self.budget = bytes;
        self
    }

    /// Decompressed bytes of the chunks the planned reads covered.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// The group at `path`, found from its parent's handle and kept, with
    /// its index checked (`group_index`): hdf5-reader reads all of a
    /// group's entries at the first lookup in it, so every lookup goes
    /// through a group handed out here.
    fn group(&self, path: &str) -> hdf5_reader::error::Result<Group> {
        let path = path.trim_end_matches('/');
        let group = match lock(&self.groups).get(path) {
            Some((group, true)) => return Ok(group.clone()),
            Some((group, false)) => Some(group.clone()),
            None => None,
        };
        let group = match group {
            Some(group) => group,
            None if path.is_empty() => self.file.root_group()?,
            None => {
                let (parent, name) = split_parent(path);
                self.group(parent)?.group(name)?
            }
        };
        self.group_index(&group, path)?;
        lock(&self.groups).insert(path.to_string(), (group.clone(), true));
        Ok(group)
    }

    /// The address of the group at `path`'s object header: the same for
    /// every path that reaches the group (hard links), so a walk can tell a
    /// group that is its own descendant.
    pub fn group_address(&self, path: &str) -> Result<u64, GranuleError> {
        self.group(path)
            .map(|group| group.address())
            .map_err(|err| read_error(path, err))
    }

    fn open_dataset(&self, path: &str) -> Result<Arc<Dataset>, GranuleError> {
        if let Some(dataset) = lock(&self.datasets).get(path) {
            return Ok(dataset.clone());
        }
        // Opened without the lock held: other datasets open meanwhile.
        let (parent, name) = split_parent(path);
        let dataset = self
            .group(parent)
            .and_then(|group| group.dataset(name))
            .map_err(|err| read_error(path, err))?;
        Ok(self.remember(path, dataset))
    }

    /// Takes `bytes` of decoded values (`count` `unit`) for a read of `path`
    /// from the granule's read budget, or refuses the read (and takes
    /// nothing).
    fn charge(&self, path: &str, count: u64, unit: &str, bytes: u64) -> Result<(), GranuleError> {
        self.read
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |before| {
                Some(before.saturating_add(bytes)).filter(|&after| after <= self.budget)
            })
            .map(|_| ())
            .map_err(|before| {
                let budget = if self.budget.is_multiple_of(1 << 20) {
                    format!("{} MiB", self.budget >> 20)
                } else {
                    format!("{} bytes", self.budget)
                };
                GranuleError::Read {
                    path: path.to_string(),
                    message: format!(
                        "reading {count} {unit} ({bytes} bytes) would take the granule past its read budget of {budget} ({before} bytes read before)"
                    ),
                }
            })
    }

    /// Keeps an opened dataset; its chunk size raises what a chunk of this
    /// file may inflate to (every chunk decoded belongs to a dataset kept
    /// here first).
    /// Walks `path`'s groups from the root down, each warmed for the
    /// member the path goes through, then its dataset header and chunk
    /// index; whether it is a dataset with its extents known.
    fn walk_ahead(&self, path: &str) -> bool {
        let mut parent = "/";
        for (index, _) in path.match_indices('/').skip(1).chain([(path.len(), "")]) {
            if self.node(parent).ok() != Some(Node::Group) {
                return false;
            }
            let (_, name) = split_parent(&path[..index]);
            let _ = self.warm_group(parent, name);
            parent = &path[..index];
        }
        self.node(path).ok() == Some(Node::Dataset) && self.extents(path).is_ok()
    }

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
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Calls `work` on every item from up to `threads` threads (items past
/// that wait for a thread to finish one). Where the system refuses more
/// threads (a container's process limit), the calling thread works
/// through what is left: slower, never a failure.
fn concurrently<T: Sync>(items: &[T], threads: usize, work: impl Fn(&T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let drain = || {
        while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
            work(item);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..items.len().min(threads) {
            if std::thread::Builder::new()
                .spawn_scoped(scope, drain)
                .is_err()
            {
                break;
            }
        }
        drain();
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
            concurrently(reads, PLANNING_THREADS, plan);
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

    /// Over remote storage, walks each path on a thread of its own: its
    /// groups from the root down (each warmed for the member the path goes
    /// through), then its dataset header and chunk index. Paths share no
    /// barrier, so `first`'s data is fetched (by the last of its paths to
    /// be walked) while deeper paths are still being walked; blocks several
    /// paths need are fetched once (the storage's claims), so requests sent
    /// at one depth share a round trip.
    fn preload(&self, paths: &[String], first: &FirstData<'_>) {
        let Some(prefetch) = &self.prefetch else {
            return;
        };
        let is_first = |path: &String| first.paths.contains(path);
        let remaining = AtomicU64::new(paths.iter().filter(|path| is_first(path)).count() as u64);
        let ranges = Mutex::new(Vec::new());
        // Every path on a thread of its own: a walk queued behind another
        // would add that walk's whole length in round trips.
        concurrently(paths, PRELOAD_THREADS, |path| {
            let walked = self.walk_ahead(path);
            if !is_first(path) {
                return;
            }
            if walked
                && (first.keep)(path)
                && let Ok((found, _)) = self.chunk_ranges(path, None)
            {
                lock(&ranges).extend(found);
            }
            if remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                let ranges = std::mem::take(&mut *lock(&ranges));
                if !ranges.is_empty() {
                    let _ = prefetch.prefetch(&ranges);
                }
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
                lock(&self.groups)
                    .entry(path.to_string())
                    .or_insert((child, false));
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
        // The chunk index is bounded before hdf5-reader walks it (once per
        // dataset; later reads find it kept), and the values before they
        // are allocated.
        self.extents(path)?;
        let rows = runs.iter().fold(0u64, |rows, run| {
            rows.saturating_add(run.end.saturating_sub(run.start))
        });
        let row_elements = shape
            .iter()
            .skip(1)
            .fold(1u64, |elements, &extent| elements.saturating_mul(extent));
        let bytes = rows
            .max(u64::from(shape.is_empty()))
            .saturating_mul(row_elements)
            .saturating_mul(dtype.size() as u64);
        self.charge(path, rows, "rows", bytes)?;
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
        self.extents(path)?;
        let elements = dataset
            .num_elements()
            .map_err(|err| read_error(path, err))?;
        let element = dataset
            .raw_element_size()
            .map_err(|err| read_error(path, err))?;
        self.charge(
            path,
            elements,
            "strings",
            elements.saturating_mul(element as u64),
        )?;
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
