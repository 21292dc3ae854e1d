//! The small HDF5 interface the decoder is written against, and the typed
//! values it returns. The production implementation is `reader::ReaderFile`
//! (`hdf5-reader`, chunks inflated by libdeflate); with the `hdf5` feature, `libhdf5::LibHdf5File`
//! implements it too, as the oracle the tests compare against.

use std::ops::Range;

use super::GranuleError;

/// Numeric element types found in ATL08 (stored byte order is resolved by the
/// implementation; values come back native).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }

    /// numpy-style name (`int8`, `float32`, ...), as users know them from h5py.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::U64 => "uint64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// The type of a fixed-point or floating-point HDF5 element of `size` bytes.
    pub fn from_parts(float: bool, signed: bool, size: usize) -> Option<Dtype> {
        Some(match (float, signed, size) {
            (true, _, 4) => Dtype::F32,
            (true, _, 8) => Dtype::F64,
            (false, true, 1) => Dtype::I8,
            (false, true, 2) => Dtype::I16,
            (false, true, 4) => Dtype::I32,
            (false, true, 8) => Dtype::I64,
            (false, false, 1) => Dtype::U8,
            (false, false, 2) => Dtype::U16,
            (false, false, 4) => Dtype::U32,
            (false, false, 8) => Dtype::U64,
            _ => return None,
        })
    }
}

/// A flat, row-major run of numeric values of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the inner `Vec` of any `Values` variant.
#[macro_export]
#[doc(hidden)]
macro_rules! with_values {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            $crate::granule::Values::I8($v) => $body,
            $crate::granule::Values::I16($v) => $body,
            $crate::granule::Values::I32($v) => $body,
            $crate::granule::Values::I64($v) => $body,
            $crate::granule::Values::U8($v) => $body,
            $crate::granule::Values::U16($v) => $body,
            $crate::granule::Values::U32($v) => $body,
            $crate::granule::Values::U64($v) => $body,
            $crate::granule::Values::F32($v) => $body,
            $crate::granule::Values::F64($v) => $body,
        }
    };
}

/// Builds the `Values` variant of `$dtype` from a generic expression over `T`.
#[macro_export]
#[doc(hidden)]
macro_rules! values_of_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::granule::Dtype::I8 => {
                type $T = i8;
                $crate::granule::Values::I8($body)
            }
            $crate::granule::Dtype::I16 => {
                type $T = i16;
                $crate::granule::Values::I16($body)
            }
            $crate::granule::Dtype::I32 => {
                type $T = i32;
                $crate::granule::Values::I32($body)
            }
            $crate::granule::Dtype::I64 => {
                type $T = i64;
                $crate::granule::Values::I64($body)
            }
            $crate::granule::Dtype::U8 => {
                type $T = u8;
                $crate::granule::Values::U8($body)
            }
            $crate::granule::Dtype::U16 => {
                type $T = u16;
                $crate::granule::Values::U16($body)
            }
            $crate::granule::Dtype::U32 => {
                type $T = u32;
                $crate::granule::Values::U32($body)
            }
            $crate::granule::Dtype::U64 => {
                type $T = u64;
                $crate::granule::Values::U64($body)
            }
            $crate::granule::Dtype::F32 => {
                type $T = f32;
                $crate::granule::Values::F32($body)
            }
            $crate::granule::Dtype::F64 => {
                type $T = f64;
                $crate::granule::Values::F64($body)
            }
        }
    };
}

impl Values {
    pub fn dtype(&self) -> Dtype {
        match self {
            Values::I8(_) => Dtype::I8,
            Values::I16(_) => Dtype::I16,
            Values::I32(_) => Dtype::I32,
            Values::I64(_) => Dtype::I64,
            Values::U8(_) => Dtype::U8,
            Values::U16(_) => Dtype::U16,
            Values::U32(_) => Dtype::U32,
            Values::U64(_) => Dtype::U64,
            Values::F32(_) => Dtype::F32,
            Values::F64(_) => Dtype::F64,
        }
    }

    pub fn len(&self) -> usize {
        with_values!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty run of `dtype`.
    pub fn empty(dtype: Dtype) -> Values {
        values_of_dtype!(dtype, T => Vec::<T>::new())
    }

    /// Little-endian bytes of every value, for byte-for-byte comparisons.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        with_values!(self, v => v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    /// Value `index` as f64 (exact for every type but 64-bit integers beyond 2^53).
    #[allow(clippy::unnecessary_cast)] // the f64 variant casts to itself
    pub fn get_f64(&self, index: usize) -> Option<f64> {
        with_values!(self, v => v.get(index).map(|x| *x as f64))
    }

    /// Appends `other`, which must have the same type.
    pub fn extend(&mut self, other: Values) -> Result<(), GranuleError> {
        macro_rules! join {
            ($($variant:ident),*) => {
                match (self, other) {
                    // Into nothing yet: `other` is taken as it is, not
                    // copied (a read of one run is most reads).
                    $((Values::$variant(a), Values::$variant(b)) if a.is_empty() => {
                        *a = b;
                        Ok(())
                    })*
                    $((Values::$variant(a), Values::$variant(b)) => {
                        a.extend(b);
                        Ok(())
                    })*
                    (a, b) => Err(GranuleError::Invalid(format!(
                        "cannot join {} values to {} values",
                        b.dtype().name(),
                        a.dtype().name()
                    ))),
                }
            };
        }
        join!(I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
    }
}

/// What a path in the file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Group,
    Dataset,
    Missing,
}

/// A dataset's description, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// `None` for non-numeric types (strings, compounds, ...).
    pub dtype: Option<Dtype>,
    /// The stored type in words (`float32`, `string`, ...).
    pub type_name: String,
    pub shape: Vec<u64>,
    /// Chunk shape when chunked.
    pub chunks: Option<Vec<u64>>,
    /// The `_FillValue` attribute in the dataset's type, when present. Never
    /// the HDF5 fill-value property (see ATL08.md).
    pub fill_attribute: Option<Values>,
}

impl DatasetInfo {
    /// Rows (first dimension); 1 for a scalar.
    pub fn n_rows(&self) -> u64 {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Values per row: the product of the trailing dimensions.
    pub fn row_width(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }
}

/// Rows of a dataset a later read will need: `runs` of the first dimension,
/// or every row when `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRead {
    pub path: String,
    pub runs: Option<Vec<Range<u64>>>,
}

/// Data every read of a granule starts with, fetched whole during
/// `Hdf5Source::preload` in one merged round once all of `paths` are walked:
/// merged, small neighbouring datasets (and what lies between them, such as
/// the global heap of a string dataset) come in one request.
pub struct FirstData<'a> {
    pub paths: Vec<String>,
    /// Asked once a path is walked (its groups' metadata then in hand):
    /// whether its data is wanted after all.
    pub keep: &'a (dyn Fn(&str) -> bool + Sync),
}

/// The read interface of one open HDF5 file. Paths are absolute
/// (`/gt1l/land_segments/latitude`).
pub trait Hdf5Source: Send + Sync {
    /// Whether `path` is a group, a dataset, or absent.
    fn node(&self, path: &str) -> Result<Node, GranuleError>;
    /// Names of the members of a group, sorted.
    fn members(&self, group: &str) -> Result<Vec<String>, GranuleError>;
    /// A dataset's type, shape, chunking and `_FillValue` attribute.
    fn dataset(&self, path: &str) -> Result<DatasetInfo, GranuleError>;
    /// Rows `runs` (each a range of first-dimension indices, in order) of a
    /// numeric dataset, all trailing columns, concatenated row-major.
    fn read_runs(&self, path: &str, runs: &[Range<u64>]) -> Result<Values, GranuleError>;
    /// Every element of a string dataset.
    fn read_strings(&self, path: &str) -> Result<Vec<String>, GranuleError>;
    /// A text attribute (scalar or first element of a 1-element array); `None` when absent.
    fn attr_text(&self, path: &str, name: &str) -> Result<Option<String>, GranuleError>;

    /// Announces reads to come, so an implementation over remote bytes can
    /// fetch them together. Missing datasets are ignored here (the reads
    /// report them). The default does nothing.
    fn prepare(&self, _reads: &[PlannedRead]) -> Result<(), GranuleError> {
        Ok(())
    }

    /// Reads ahead the metadata of these paths (groups, dataset headers,
    /// chunk indexes) where that saves waiting later, and the whole data of
    /// `first` as soon as its metadata is known (without counting it as
    /// planned: `prepare` announces it again when due). Absent paths are
    /// ignored, and errors surface when the path is read. The default does
    /// nothing.
    fn preload(&self, _paths: &[String], _first: &FirstData<'_>) {}

    /// Every row of a numeric dataset.
    fn read_all(&self, path: &str) -> Result<Values, GranuleError> {
        let info = self.dataset(path)?;
        self.read_runs(path, &[0..info.n_rows()])
    }
}
