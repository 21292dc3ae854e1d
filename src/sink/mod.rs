//! The output dataset: rows split by the manifest's `partition_by` into hive
//! folders (`year=2019/month=01/`), encoded as GeoParquet 1.1 (`encode`),
//! buffered per partition across granules (`writer`), and committed through
//! a journal so readers never see a partial file and a killed run resumes
//! without losing or repeating a row (`journal`).

pub mod commit;
mod encode;
pub mod journal;
mod output;
mod runs;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{Schema, SchemaRef, TimestampMicrosecondType, UInt8Type, UInt16Type};
use chrono::{DateTime, Datelike};

pub use commit::{is_data_file, is_hidden, write_atomically};
pub use encode::{GeoParquetFile, WriterSettings};
pub use output::{Output, Removal};
pub use writer::DatasetWriter;

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("encoding GeoParquet: {0}")]
    Encode(String),
}

/// A column the dataset can be partitioned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionKey {
    Year,
    Month,
    Rgt,
    Cycle,
    Beam,
}

impl PartitionKey {
    pub fn parse(text: &str) -> Option<PartitionKey> {
        Some(match text {
            "year" => PartitionKey::Year,
            "month" => PartitionKey::Month,
            "rgt" => PartitionKey::Rgt,
            "cycle" => PartitionKey::Cycle,
            "beam" => PartitionKey::Beam,
            _ => return None,
        })
    }

    /// The folder key, which is also the column name readers see.
    pub fn column(self) -> &'static str {
        match self {
            PartitionKey::Year => "year",
            PartitionKey::Month => "month",
            PartitionKey::Rgt => "rgt",
            PartitionKey::Cycle => "cycle",
            PartitionKey::Beam => "beam",
        }
    }

    /// Whether the key is a column of the rows (moved to the folders) rather
    /// than derived from `time`.
    fn is_row_column(self) -> bool {
        matches!(
            self,
            PartitionKey::Rgt | PartitionKey::Cycle | PartitionKey::Beam
        )
    }
}

/// Hive's name for a partition whose value is null.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The schema of the files: the full schema without the partition columns.
pub fn file_schema(full: &Schema, partition_by: &[PartitionKey]) -> SchemaRef {
    let fields: Vec<_> = full
        .fields()
        .iter()
        .filter(|field| {
            !partition_by
                .iter()
                .any(|key| key.is_row_column() && key.column() == field.name())
        })
        .cloned()
        .collect();
    Arc::new(Schema::new_with_metadata(fields, full.metadata().clone()))
}

/// Splits rows into partitions: relative folder (`year=2019/month=01`) ->
/// rows in file schema, in their original order.
pub fn split_partitions(
    batch: &RecordBatch,
    partition_by: &[PartitionKey],
    file_schema: &SchemaRef,
) -> Result<BTreeMap<PathBuf, RecordBatch>, SinkError> {
    let encode_error = |message: String| SinkError::Encode(message);
    let keys: Vec<KeyColumn> = partition_by
        .iter()
        .map(|key| KeyColumn::new(batch, *key))
        .collect::<Result<_, _>>()
        .map_err(encode_error)?;
    // Rows come in long runs with one partition (a granule spans a month
    // boundary at most once): a folder is formatted only where the raw key
    // values change.
    let mut groups: BTreeMap<PathBuf, Vec<u32>> = BTreeMap::new();
    let mut run_start = 0;
    for row in 1..=batch.num_rows() {
        if row < batch.num_rows() && keys.iter().all(|key| key.same(row - 1, row)) {
            continue;
        }
        let mut folder = PathBuf::new();
        for (key, column) in partition_by.iter().zip(&keys) {
            folder.push(format!("{}={}", key.column(), column.value(run_start)));
        }
        groups
            .entry(folder)
            .or_default()
            .extend(run_start as u32..row as u32);
        run_start = row;
    }
    let projection: Vec<usize> = file_schema
        .fields()
        .iter()
        .map(|field| batch.schema().index_of(field.name()))
        .collect::<Result<_, _>>()
        .map_err(|err| encode_error(err.to_string()))?;
    let projected = batch
        .project(&projection)
        .map_err(|err| encode_error(err.to_string()))?;
    let mut partitions = BTreeMap::new();
    for (folder, rows) in groups {
        let part = if rows.len() == batch.num_rows() {
            projected.clone()
        } else {
            let indices = UInt32Array::from(rows);
            let columns = projected
                .columns()
                .iter()
                .map(|column| arrow::compute::take(column, &indices, None))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| encode_error(err.to_string()))?;
            RecordBatch::try_new(file_schema.clone(), columns)
                .map_err(|err| encode_error(err.to_string()))?
        };
        partitions.insert(folder, part);
    }
    Ok(partitions)
}

/// The column a partition key's values come from.
enum KeyColumn<'a> {
    /// Year or month of `time`, by UTC day.
    Time {
        key: PartitionKey,
        times: &'a arrow::array::TimestampMicrosecondArray,
    },
    Rgt(&'a arrow::array::UInt16Array),
    Cycle(&'a arrow::array::UInt8Array),
    Beam(&'a arrow::array::StringArray),
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl<'a> KeyColumn<'a> {
    fn new(batch: &'a RecordBatch, key: PartitionKey) -> Result<KeyColumn<'a>, String> {
        let column = batch
            .column_by_name(match key {
                PartitionKey::Year | PartitionKey::Month => "time",
                other => other.column(),
            })
            .ok_or_else(|| format!("no column for partition key {}", key.column()))?;
        Ok(match key {
            PartitionKey::Year | PartitionKey::Month => KeyColumn::Time {
                key,
                times: column.as_primitive::<TimestampMicrosecondType>(),
            },
            PartitionKey::Rgt => KeyColumn::Rgt(column.as_primitive::<UInt16Type>()),
            PartitionKey::Cycle => KeyColumn::Cycle(column.as_primitive::<UInt8Type>()),
            PartitionKey::Beam => KeyColumn::Beam(column.as_string::<i32>()),
        })
    }

    fn column(&self) -> &dyn Array {
        match self {
            KeyColumn::Time { times, .. } => *times,
            KeyColumn::Rgt(values) => *values,
            KeyColumn::Cycle(values) => *values,
            KeyColumn::Beam(values) => *values,
        }
    }

    /// Whether rows `a` and `b` certainly have the same value (same UTC
    /// day for times; the folder is the same then).
    fn same(&self, a: usize, b: usize) -> bool {
        let column = self.column();
        if column.is_null(a) || column.is_null(b) {
            return column.is_null(a) && column.is_null(b);
        }
        match self {
            KeyColumn::Time { times, .. } => {
                times.value(a).div_euclid(MICROS_PER_DAY)
                    == times.value(b).div_euclid(MICROS_PER_DAY)
            }
            KeyColumn::Rgt(values) => values.value(a) == values.value(b),
            KeyColumn::Cycle(values) => values.value(a) == values.value(b),
            KeyColumn::Beam(values) => values.value(a) == values.value(b),
        }
    }

    /// The folder value of `row`.
    fn value(&self, row: usize) -> String {
        if self.column().is_null(row) {
            return NULL_PARTITION.to_string();
        }
        match self {
            KeyColumn::Time { key, times } => {
                let time = DateTime::from_timestamp_micros(times.value(row)).unwrap_or_default();
                if *key == PartitionKey::Year {
                    format!("{:04}", time.year())
                } else {
                    format!("{:02}", time.month())
                }
            }
            KeyColumn::Rgt(values) => values.value(row).to_string(),
            KeyColumn::Cycle(values) => values.value(row).to_string(),
            KeyColumn::Beam(values) => values.value(row).to_string(),
        }
    }
}
