//! Output columns: the schema of PRODUCT.md and the conversion of HDF5 values
//! (with their fill) into Arrow arrays.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, FixedSizeListArray, Float64Array, ListArray, PrimitiveArray,
    StringArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Schema, SchemaRef, TimeUnit, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use geoarrow_schema::WkbType;

use super::GranuleError;
use super::h5::{Dtype, Values};
use super::variables::{Level, Variable};

/// A variable as the run requests it: catalog entry and output column name.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputVariable {
    pub spec: &'static Variable,
    pub name: String,
}

impl OutputVariable {
    /// The column's Arrow type: scalar, fixed-size list (2-D) or list (photons).
    pub fn data_type(&self) -> DataType {
        let item = arrow_type(self.spec.dtype);
        match (self.spec.level, self.spec.width) {
            (Level::Photon, _) => DataType::List(Arc::new(Field::new("item", item, true))),
            (Level::Segment, 1) => item,
            (Level::Segment, width) => {
                DataType::FixedSizeList(Arc::new(Field::new("item", item, true)), width as i32)
            }
        }
    }

    /// Whether the variable holds one value per 20 m sub-segment (five a
    /// land segment: `h_canopy_20m`, `subset_can_flag`, ...): a scalar
    /// column at `resolution: 20m`.
    pub fn is_per_20m(&self) -> bool {
        self.spec.level == Level::Segment && self.spec.width == SUBSEGMENTS
    }

    /// Whether the column is a plain scalar (not a list).
    pub fn is_scalar(&self) -> bool {
        self.spec.level == Level::Segment && self.spec.width == 1
    }
}

pub use crate::dataset::schema::{
    BBOX as BBOX_COLUMN, DERIVED as DERIVED_COLUMNS, GEOMETRY as GEOMETRY_COLUMN,
};

/// Whether every output has a column of this name (derived, geometry, bbox).
pub fn is_fixed_column(name: &str) -> bool {
    DERIVED_COLUMNS.contains(&name)
        || [
            GEOMETRY_COLUMN,
            BBOX_COLUMN,
            crate::dataset::schema::SUBSEGMENT,
        ]
        .contains(&name)
}

/// The Arrow type of a stored element type.
pub fn arrow_type(dtype: Dtype) -> DataType {
    match dtype {
        Dtype::I8 => DataType::Int8,
        Dtype::I16 => DataType::Int16,
        Dtype::I32 => DataType::Int32,
        Dtype::I64 => DataType::Int64,
        Dtype::U8 => DataType::UInt8,
        Dtype::U16 => DataType::UInt16,
        Dtype::U32 => DataType::UInt32,
        Dtype::U64 => DataType::UInt64,
        Dtype::F32 => DataType::Float32,
        Dtype::F64 => DataType::Float64,
    }
}

/// The timestamp type of the `time` column.
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Sub-segments of a 100 m land segment (20 m each).
pub const SUBSEGMENTS: usize = 5;

/// The schema of rows at `resolution: 20m`: `subsegment` after
/// `segment_index`, and variables with a value per sub-segment as scalars.
pub fn output_schema_20m(variables: &[OutputVariable]) -> SchemaRef {
    let segment = output_schema(variables);
    let mut fields = Vec::new();
    for field in segment.fields() {
        let variable = variables.iter().find(|v| &v.name == field.name());
        match variable {
            Some(variable) if variable.is_per_20m() => fields.push(Field::new(
                field.name(),
                arrow_type(variable.spec.dtype),
                true,
            )),
            _ => fields.push(field.as_ref().clone()),
        }
        if field.name() == crate::dataset::schema::SEGMENT_INDEX {
            fields.push(Field::new(
                crate::dataset::schema::SUBSEGMENT,
                DataType::UInt8,
                false,
            ));
        }
    }
    Arc::new(Schema::new(fields))
}

/// The full schema of one extraction (before partition columns move to folders).
pub fn output_schema(variables: &[OutputVariable]) -> SchemaRef {
    let mut fields = vec![
        Field::new("granule", DataType::Utf8, false),
        Field::new("beam", DataType::Utf8, false),
        Field::new("beam_strength", DataType::Utf8, false),
        Field::new("spot", DataType::UInt8, true),
        Field::new("rgt", DataType::UInt16, false),
        Field::new("cycle", DataType::UInt8, false),
        Field::new("region", DataType::UInt8, false),
        Field::new("segment_index", DataType::UInt32, false),
        Field::new("time", time_type(), true),
        Field::new("latitude", DataType::Float64, false),
        Field::new("longitude", DataType::Float64, false),
    ];
    fields.extend(
        variables
            .iter()
            .map(|variable| Field::new(&variable.name, variable.data_type(), true)),
    );
    fields.push(geometry_field());
    Arc::new(Schema::new(fields))
}

/// The `geometry` field: WKB points tagged `geoarrow.wkb` (CRS84); never
/// null, as latitude and longitude are not.
pub fn geometry_field() -> Field {
    Field::new(GEOMETRY_COLUMN, DataType::Binary, false)
        .with_extension_type(WkbType::new(Default::default()))
}

/// WKB points (little endian, 21 bytes each) for the given coordinates.
pub fn wkb_points(longitude: &Float64Array, latitude: &Float64Array) -> ArrayRef {
    const POINT_LEN: usize = 21;
    let n = longitude.len();
    let mut bytes = Vec::with_capacity(n * POINT_LEN);
    for (x, y) in longitude.values().iter().zip(latitude.values().iter()) {
        bytes.push(1u8);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&x.to_le_bytes());
        bytes.extend_from_slice(&y.to_le_bytes());
    }
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(POINT_LEN, n));
    Arc::new(BinaryArray::new(offsets, Buffer::from_vec(bytes), None))
}

fn primitive<T: ArrowPrimitiveType>(values: Vec<T::Native>, nulls: Option<NullBuffer>) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls))
}

/// `n` copies of `text` as a string column: the bytes repeated (by doubling
/// copies) and an offset every `text.len()`, not a value pushed per row
/// (the granule name, 40 bytes, is on every row).
pub fn repeated(text: &str, n: usize) -> StringArray {
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(text.len(), n));
    StringArray::new(offsets, Buffer::from(text.repeat(n).into_bytes()), None)
}

/// The validity of `values`: null where an element equals `fill` bit for
/// bit (`fill` holds one value of the same type); `None` when none does.
/// Packed 64 elements at a time (a `Vec<bool>` of the fill, then of its
/// negation, then packed, cost 0.6% of a bulk run's instructions).
fn not_fill(values: &Values, fill: &Values) -> Option<NullBuffer> {
    macro_rules! mask {
        ($($variant:ident),*) => {
            match (values, fill) {
                $((Values::$variant(values), Values::$variant(fill)) => {
                    let fill = fill.first()?.to_le_bytes();
                    let valid = BooleanBuffer::collect_bool(values.len(), |index| {
                        values[index].to_le_bytes() != fill
                    });
                    Some(NullBuffer::new(valid)).filter(|nulls| nulls.null_count() > 0)
                })*
                _ => None,
            }
        };
    }
    mask!(I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
}

/// A flat array of `values` with the validity `nulls`.
fn flat_array(values: Values, nulls: Option<NullBuffer>) -> ArrayRef {
    match values {
        Values::I8(v) => primitive::<Int8Type>(v, nulls),
        Values::I16(v) => primitive::<Int16Type>(v, nulls),
        Values::I32(v) => primitive::<Int32Type>(v, nulls),
        Values::I64(v) => primitive::<Int64Type>(v, nulls),
        Values::U8(v) => primitive::<UInt8Type>(v, nulls),
        Values::U16(v) => primitive::<UInt16Type>(v, nulls),
        Values::U32(v) => primitive::<UInt32Type>(v, nulls),
        Values::U64(v) => primitive::<UInt64Type>(v, nulls),
        Values::F32(v) => primitive::<Float32Type>(v, nulls),
        Values::F64(v) => primitive::<Float64Type>(v, nulls),
    }
}

/// The column of `variable` from values read from a file (in the file's
/// type), with fill as null and cast to the catalog's type. `offsets` gives
/// each segment's photons for photon-level variables.
pub fn variable_array(
    variable: &OutputVariable,
    values: Values,
    fill: Option<&Values>,
    n_rows: usize,
    offsets: Option<&OffsetBuffer<i32>>,
) -> Result<ArrayRef, GranuleError> {
    let nulls = fill.and_then(|fill| not_fill(&values, fill));
    let flat = flat_array(values, nulls);
    let item_type = arrow_type(variable.spec.dtype);
    let flat = if flat.data_type() == &item_type {
        flat
    } else {
        arrow::compute::cast(&flat, &item_type).map_err(|err| {
            GranuleError::Invalid(format!(
                "{}: cannot convert to {item_type}: {err}",
                variable.spec.path
            ))
        })?
    };
    let item = Arc::new(Field::new("item", item_type, true));
    match (variable.spec.level, offsets) {
        (Level::Photon, Some(offsets)) => Ok(Arc::new(
            ListArray::try_new(item, offsets.clone(), flat, None)
                .map_err(|err| GranuleError::Invalid(format!("{}: {err}", variable.spec.path)))?,
        )),
        (Level::Segment, _) if variable.spec.width == 1 => Ok(flat),
        (Level::Segment, _) => Ok(Arc::new(
            FixedSizeListArray::try_new(item, variable.spec.width as i32, flat, None)
                .map_err(|err| GranuleError::Invalid(format!("{}: {err}", variable.spec.path)))?,
        )),
        (Level::Photon, None) => Err(GranuleError::Invalid(format!(
            "{}: photon variable without photon offsets ({n_rows} rows)",
            variable.spec.path
        ))),
    }
}

/// An all-null column of the variable's type, for a granule that lacks it.
pub fn null_column(variable: &OutputVariable, n_rows: usize) -> ArrayRef {
    arrow::array::new_null_array(&variable.data_type(), n_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_text_is_one_value_per_row() {
        let name = "ATL08_20191217212849_12590513_006_01.h5";
        let column = repeated(name, 3);
        assert_eq!(column.iter().collect::<Vec<_>>(), [Some(name); 3]);
        assert_eq!(column.null_count(), 0);
        assert_eq!(repeated("gt1l", 0).len(), 0);
        assert_eq!(repeated("", 2).iter().collect::<Vec<_>>(), [Some(""); 2]);
    }

    #[test]
    fn fill_is_null_bit_for_bit_across_words() {
        let fill = f32::MAX;
        // 130 values: three 64-bit words of validity, fill in each.
        let mut values: Vec<f32> = (0..130).map(|i| i as f32 / 3.0).collect();
        for index in [0, 63, 64, 100, 129] {
            values[index] = fill;
        }
        values[5] = f32::NAN;
        values[6] = -0.0;
        let nulls = not_fill(&Values::F32(values.clone()), &Values::F32(vec![fill])).unwrap();
        let expected: Vec<bool> = values
            .iter()
            .map(|v| v.to_bits() != fill.to_bits())
            .collect();
        assert_eq!(nulls.iter().collect::<Vec<_>>(), expected);
        assert_eq!(nulls.null_count(), 5);
        // A NaN fill matches its own bits only; 0.0 does not match -0.0.
        let nan = Values::F32(vec![f32::NAN, -f32::NAN, 1.0]);
        let nulls = not_fill(&nan, &Values::F32(vec![f32::NAN])).unwrap();
        assert_eq!(nulls.iter().collect::<Vec<_>>(), [false, true, true]);
        assert!(not_fill(&Values::F32(vec![-0.0]), &Values::F32(vec![0.0])).is_none());
        // No fill present, no fill value, or a fill of another type: no nulls.
        assert!(not_fill(&Values::I16(vec![1, 2, 3]), &Values::I16(vec![-999])).is_none());
        assert!(not_fill(&Values::I16(vec![1, 2, 3]), &Values::I16(vec![])).is_none());
        assert!(not_fill(&Values::I16(vec![1, 2, 3]), &Values::I32(vec![1])).is_none());
    }
}
