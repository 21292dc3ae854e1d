//! The production `Hdf5Source`: `hdf5-reader` (pure Rust, no global lock) over
//! any byte `Storage`: a local file read by ranges, or remote ranges.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use hdf5_reader::{Dataset, Datatype, Hdf5File, OpenOptions, SliceInfo, SliceInfoElem, Storage};

use super::GranuleError;
use super::h5::{DatasetInfo, Dtype, Hdf5Source, Node, Values};
use crate::values_of_dtype;

/// Upper bound for one decoded read: far above any ATL08 dataset (the largest,
/// photon heights of a strong beam, are tens of MB), so a corrupt extent
/// cannot make us allocate without bound.
const MAX_READ_BYTES: usize = 2 << 30;

/// One open granule read through `hdf5-reader`.
pub struct ReaderFile {
    file: Hdf5File,
    datasets: Mutex<HashMap<String, Dataset>>,
}

impl ReaderFile {
    /// Opens the HDF5 structure over `storage` (reads the superblock only).
    pub fn open(storage: Arc<dyn Storage>) -> Result<ReaderFile, GranuleError> {
        let options = OpenOptions::default().with_max_read_bytes(MAX_READ_BYTES);
        let file = Hdf5File::from_storage_with_options(storage, options)
            .map_err(|err| GranuleError::NotHdf5(err.to_string()))?;
        Ok(ReaderFile {
            file,
            datasets: Mutex::new(HashMap::new()),
        })
    }

    fn open_dataset(&self, path: &str) -> Result<Dataset, GranuleError> {
        let mut cache = self
            .datasets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(dataset) = cache.get(path) {
            return Ok(dataset.clone());
        }
        let dataset = self
            .file
            .dataset(path)
            .map_err(|err| read_error(path, err))?;
        cache.insert(path.to_string(), dataset.clone());
        Ok(dataset)
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
