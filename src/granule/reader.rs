//! The production `Hdf5Source`: `hdf5-reader` (pure Rust, no global lock) over
//! any byte `Storage`: a local file read by ranges, or remote ranges.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdf5_reader::{Dataset, Datatype, Hdf5File, OpenOptions, SliceInfo, SliceInfoElem, Storage};

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
    fn prefetch(&self, ranges: &[Range<u64>]) -> Result<(), GranuleError>;
}

/// Datasets whose chunk indexes are walked at once while planning reads.
const PLANNING_THREADS: usize = 32;

/// One open granule read through `hdf5-reader`.
pub struct ReaderFile {
    file: Hdf5File,
    datasets: Mutex<HashMap<String, Dataset>>,
    prefetch: Option<Arc<dyn Prefetch>>,
    /// Decompressed bytes of the chunks planned reads touch.
    decoded: AtomicU64,
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
        let options = OpenOptions::default().with_max_read_bytes(MAX_READ_BYTES);
        let file = Hdf5File::from_storage_with_options(storage, options)
            .map_err(|err| GranuleError::NotHdf5(err.to_string()))?;
        Ok(ReaderFile {
            file,
            datasets: Mutex::new(HashMap::new()),
            prefetch,
            decoded: AtomicU64::new(0),
        })
    }

    /// Decompressed bytes of the chunks the planned reads covered.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    fn open_dataset(&self, path: &str) -> Result<Dataset, GranuleError> {
        if let Some(dataset) = self.lock_datasets().get(path) {
            return Ok(dataset.clone());
        }
        // Opened without the lock held: other datasets open meanwhile.
        let dataset = self
            .file
            .dataset(path)
            .map_err(|err| read_error(path, err))?;
        self.lock_datasets()
            .insert(path.to_string(), dataset.clone());
        Ok(dataset)
    }

    fn lock_datasets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Dataset>> {
        self.datasets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stored byte ranges holding rows `runs` (all rows when `None`) of
    /// the dataset at `path`, and their decompressed size.
    fn chunk_ranges(
        &self,
        path: &str,
        runs: Option<&[Range<u64>]>,
    ) -> Result<(Vec<Range<u64>>, u64), GranuleError> {
        use hdf5_reader::btree_v1::{BTreeV1Key, collect_btree_v1_leaves_storage};
        use hdf5_reader::messages::HdfMessage;
        use hdf5_reader::messages::layout::DataLayout;

        let dataset = self.open_dataset(path)?;
        let Some(dtype) = dtype_of(dataset.dtype()) else {
            return Ok((Vec::new(), 0));
        };
        let shape = dataset.shape().to_vec();
        let n_rows = shape.first().copied().unwrap_or(1);
        let row_bytes = shape.iter().skip(1).product::<u64>() * dtype.size() as u64;
        let whole = [0..n_rows];
        let runs = runs.unwrap_or(&whole);
        let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
            return Ok((Vec::new(), 0));
        };
        let header = self
            .file
            .get_or_parse_header(dataset.address())
            .map_err(|err| read_error(path, err))?;
        let layout = header.messages.iter().find_map(|message| match message {
            HdfMessage::DataLayout(message) => Some(message.layout.clone()),
            _ => None,
        });
        match layout {
            Some(DataLayout::Chunked {
                address,
                dims,
                chunk_indexing: None,
                ..
            }) if !dims.is_empty() && dims.len() == shape.len() => {
                // Version 1 B-tree (superblock 0, as NASA writes ATL08).
                let rows_per_chunk = u64::from(dims[0]).max(1);
                let mut first_chunk = vec![first.start / rows_per_chunk];
                let mut last_chunk = vec![last.end.saturating_sub(1) / rows_per_chunk];
                for (extent, chunk) in shape.iter().zip(&dims).skip(1) {
                    first_chunk.push(0);
                    last_chunk.push(extent.saturating_sub(1) / u64::from(*chunk).max(1));
                }
                let superblock = self.file.superblock();
                let leaves = collect_btree_v1_leaves_storage(
                    self.file.storage(),
                    address,
                    superblock.offset_size,
                    superblock.length_size,
                    Some(shape.len() as u32),
                    &dims,
                    Some((&first_chunk, &last_chunk)),
                )
                .map_err(|err| read_error(path, err))?;
                let chunk_bytes = rows_per_chunk * row_bytes;
                let mut ranges = Vec::new();
                let mut decoded = 0;
                for (key, child) in leaves {
                    let BTreeV1Key::RawData {
                        chunk_size,
                        offsets,
                        ..
                    } = key
                    else {
                        continue;
                    };
                    let row = offsets.first().copied().unwrap_or(0);
                    let rows = row..row + rows_per_chunk;
                    if runs
                        .iter()
                        .any(|run| run.start < rows.end && rows.start < run.end)
                    {
                        ranges.push(child..child + u64::from(chunk_size));
                        decoded += chunk_bytes;
                    }
                }
                Ok((ranges, decoded))
            }
            Some(DataLayout::Contiguous { address, .. }) => Ok((
                runs.iter()
                    .map(|run| address + run.start * row_bytes..address + run.end * row_bytes)
                    .collect(),
                runs.iter()
                    .map(|run| (run.end - run.start) * row_bytes)
                    .sum(),
            )),
            // Other chunk indexes (not written for ATL08) and compact data are
            // read on demand.
            _ => Ok((Vec::new(), 0)),
        }
    }
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
    /// Opens the datasets and walks their chunk indexes concurrently (each is
    /// a few small reads, round trips on remote storage), then hands every
    /// chunk the reads need to the prefetcher in one go.
    fn prepare(&self, reads: &[PlannedRead]) -> Result<(), GranuleError> {
        let mut ranges = Vec::new();
        for group in reads.chunks(PLANNING_THREADS) {
            let planned: Vec<Option<(Vec<Range<u64>>, u64)>> = std::thread::scope(|scope| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|read| {
                        scope.spawn(move || {
                            if self.node(&read.path).ok()? != Node::Dataset {
                                return None;
                            }
                            self.chunk_ranges(&read.path, read.runs.as_deref()).ok()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().ok().flatten())
                    .collect()
            });
            for (found, decoded) in planned.into_iter().flatten() {
                ranges.extend(found);
                self.decoded.fetch_add(decoded, Ordering::Relaxed);
            }
        }
        match &self.prefetch {
            Some(prefetch) if !ranges.is_empty() => prefetch.prefetch(&ranges),
            _ => Ok(()),
        }
    }

    fn node(&self, path: &str) -> Result<Node, GranuleError> {
        if path.trim_end_matches('/').is_empty() {
            return Ok(Node::Group);
        }
        let (parent, name) = split_parent(path);
        if parent != "/" && self.node(parent)? != Node::Group {
            return Ok(Node::Missing);
        }
        let group = self
            .file
            .group(parent)
            .map_err(|err| read_error(parent, err))?;
        let (groups, datasets) = group
            .member_names()
            .map_err(|err| read_error(parent, err))?;
        Ok(if groups.iter().any(|member| member == name) {
            Node::Group
        } else if datasets.iter().any(|member| member == name) {
            Node::Dataset
        } else {
            Node::Missing
        })
    }

    fn members(&self, group: &str) -> Result<Vec<String>, GranuleError> {
        let handle = self
            .file
            .group(group)
            .map_err(|err| read_error(group, err))?;
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
            Node::Group => self.file.group(path).and_then(|group| group.attributes()),
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
