//! `Hdf5Source` over libhdf5 (`hdf5-metno`, Debian's libhdf5-dev): the test
//! oracle our reader is compared with, byte for byte. libhdf5 serialises
//! every call behind one process-wide lock, so it stays off the production path.

use std::ops::Range;
use std::path::Path;

use hdf5::types::{FixedAscii, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Location, LocationType};

use super::GranuleError;
use super::h5::{DatasetInfo, Dtype, Hdf5Source, Node, Values};
use crate::values_of_dtype;

/// One granule opened with libhdf5.
pub struct LibHdf5File {
    file: hdf5::File,
}

impl LibHdf5File {
    pub fn open(path: &Path) -> Result<LibHdf5File, GranuleError> {
        let file = hdf5::File::open(path).map_err(|err| GranuleError::NotHdf5(err.to_string()))?;
        Ok(LibHdf5File { file })
    }
}

fn read_error(path: &str, err: hdf5::Error) -> GranuleError {
    GranuleError::Read {
        path: path.to_string(),
        message: err.to_string(),
    }
}

fn dtype_of(descriptor: &TypeDescriptor) -> Option<Dtype> {
    match descriptor {
        TypeDescriptor::Integer(size) => Dtype::from_parts(false, true, *size as usize),
        TypeDescriptor::Unsigned(size) => Dtype::from_parts(false, false, *size as usize),
        TypeDescriptor::Float(size) => Dtype::from_parts(true, true, *size as usize),
        TypeDescriptor::Enum(enum_type) => {
            Dtype::from_parts(false, enum_type.signed, enum_type.size as usize)
        }
        _ => None,
    }
}

fn type_name(descriptor: &TypeDescriptor) -> String {
    match dtype_of(descriptor) {
        Some(dtype) => dtype.name().to_string(),
        None => match descriptor {
            TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_)
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::VarLenUnicode => "string".to_string(),
            TypeDescriptor::VarLenArray(_) => "vlen".to_string(),
            TypeDescriptor::Compound(_) => "compound".to_string(),
            TypeDescriptor::Reference(_) => "reference".to_string(),
            other => format!("{other}").to_lowercase(),
        },
    }
}

/// Text of any string-typed container, one entry per element.
fn strings_of(
    container: &hdf5::Container,
    descriptor: &TypeDescriptor,
) -> hdf5::Result<Vec<String>> {
    let reader = container.as_reader();
    Ok(match descriptor {
        TypeDescriptor::VarLenUnicode => reader
            .read_raw::<VarLenUnicode>()?
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        TypeDescriptor::VarLenAscii => reader
            .read_raw::<VarLenAscii>()?
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        _ => reader
            // Fixed-length strings (ATL08 has one of 100000 bytes): read into a
            // wider fixed type; libhdf5 converts sizes.
            .read_raw::<FixedAscii<{ 1 << 20 }>>()?
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
    })
}

impl LibHdf5File {
    fn location(&self, path: &str) -> hdf5::Result<Location> {
        if path.trim_end_matches('/').is_empty() {
            return Ok((*self.file.as_group()?).clone());
        }
        match self.file.loc_type_by_name(path)? {
            LocationType::Dataset => Ok((**self.file.dataset(path)?).clone()),
            _ => Ok((*self.file.group(path)?).clone()),
        }
    }

    fn open_dataset(&self, path: &str) -> Result<Dataset, GranuleError> {
        self.file.dataset(path).map_err(|err| read_error(path, err))
    }
}

impl Hdf5Source for LibHdf5File {
    fn node(&self, path: &str) -> Result<Node, GranuleError> {
        if path.trim_end_matches('/').is_empty() {
            return Ok(Node::Group);
        }
        // link_exists needs every parent to exist.
        let mut prefix = String::new();
        for part in path.trim_matches('/').split('/') {
            prefix.push('/');
            prefix.push_str(part);
            if !self.file.link_exists(&prefix) {
                return Ok(Node::Missing);
            }
        }
        Ok(
            match self
                .file
                .loc_type_by_name(path)
                .map_err(|err| read_error(path, err))?
            {
                LocationType::Group => Node::Group,
                LocationType::Dataset => Node::Dataset,
                _ => Node::Missing,
            },
        )
    }

    fn members(&self, group: &str) -> Result<Vec<String>, GranuleError> {
        let handle = self
            .file
            .group(group)
            .map_err(|err| read_error(group, err))?;
        let mut names = handle
            .member_names()
            .map_err(|err| read_error(group, err))?;
        names.sort();
        Ok(names)
    }

    fn dataset(&self, path: &str) -> Result<DatasetInfo, GranuleError> {
        let dataset = self.open_dataset(path)?;
        let descriptor = dataset
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|err| read_error(path, err))?;
        let dtype = dtype_of(&descriptor);
        let has_fill = dataset
            .attr_names()
            .map_err(|err| read_error(path, err))?
            .iter()
            .any(|name| name == "_FillValue");
        let fill_attribute = match (dtype, has_fill) {
            (Some(dtype), true) => {
                let attribute = dataset
                    .attr("_FillValue")
                    .map_err(|err| read_error(path, err))?;
                Some(values_of_dtype!(dtype, T => {
                    let values: Vec<T> = attribute.read_raw::<T>().map_err(|err| read_error(path, err))?;
                    values.into_iter().take(1).collect()
                }))
            }
            _ => None,
        };
        Ok(DatasetInfo {
            dtype,
            type_name: type_name(&descriptor),
            shape: dataset.shape().into_iter().map(|d| d as u64).collect(),
            chunks: dataset
                .chunk()
                .map(|dims| dims.into_iter().map(|d| d as u64).collect()),
            fill_attribute,
        })
    }

    fn read_runs(&self, path: &str, runs: &[Range<u64>]) -> Result<Values, GranuleError> {
        let dataset = self.open_dataset(path)?;
        let descriptor = dataset
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|err| read_error(path, err))?;
        let dtype = dtype_of(&descriptor).ok_or_else(|| GranuleError::Read {
            path: path.to_string(),
            message: format!("not a numeric dataset ({})", type_name(&descriptor)),
        })?;
        let ndim = dataset.ndim();
        let mut values = Values::empty(dtype);
        for run in runs {
            if run.is_empty() {
                continue;
            }
            let rows = run.start as usize..run.end as usize;
            let part = values_of_dtype!(dtype, T => {
                match ndim {
                    0 => vec![dataset.read_scalar::<T>().map_err(|err| read_error(path, err))?],
                    1 => dataset.read_slice_1d::<T, _>(rows.clone()).map_err(|err| read_error(path, err))?.iter().copied().collect(),
                    2 => dataset.read_slice_2d::<T, _>((rows.clone(), ..)).map_err(|err| read_error(path, err))?.iter().copied().collect(),
                    n => return Err(GranuleError::Read { path: path.to_string(), message: format!("{n}-D datasets are not read") }),
                }
            });
            values.extend(part)?;
        }
        Ok(values)
    }

    fn read_strings(&self, path: &str) -> Result<Vec<String>, GranuleError> {
        let dataset = self.open_dataset(path)?;
        let descriptor = dataset
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|err| read_error(path, err))?;
        strings_of(&dataset, &descriptor).map_err(|err| read_error(path, err))
    }

    fn attr_text(&self, path: &str, name: &str) -> Result<Option<String>, GranuleError> {
        if self.node(path)? == Node::Missing {
            return Ok(None);
        }
        let location = self.location(path).map_err(|err| read_error(path, err))?;
        if !location
            .attr_names()
            .map_err(|err| read_error(path, err))?
            .iter()
            .any(|n| n == name)
        {
            return Ok(None);
        }
        let attribute = location.attr(name).map_err(|err| read_error(path, err))?;
        let descriptor = attribute
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|err| read_error(path, err))?;
        if dtype_of(&descriptor).is_some() {
            let numbers: Vec<f64> = attribute
                .read_raw::<f64>()
                .map_err(|err| read_error(path, err))?;
            return Ok(numbers.first().map(|n| format!("{n}")));
        }
        let strings = strings_of(&attribute, &descriptor).map_err(|err| read_error(path, err))?;
        Ok(strings
            .into_iter()
            .next()
            .map(|text| text.trim().to_string()))
    }
}
