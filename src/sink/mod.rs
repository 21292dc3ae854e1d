//! The output dataset: rows split by the manifest's `partition_by` into hive
//! folders (`year=2019/month=01/`), encoded as GeoParquet 1.1 (`encode`),
//! buffered per partition across granules (`writer`), and committed through
//! a journal so readers never see a partial file and a killed run resumes
//! without losing or repeating a row (`journal`).

pub mod commit;
mod encode;
pub mod journal;
mod output;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{Schema, SchemaRef, TimestampMicrosecondType, UInt8Type, UInt16Type};
use chrono::{DateTime, Datelike};

pub use commit::{is_hidden, write_atomically};
pub use encode::{GeoParquetFile, WriterSettings};
pub use output::Output;
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
    let mut groups: BTreeMap<PathBuf, Vec<u32>> = BTreeMap::new();
    let values: Vec<Vec<String>> = partition_by
        .iter()
        .map(|key| partition_values(batch, *key))
        .collect::<Result<_, _>>()
        .map_err(encode_error)?;
    for row in 0..batch.num_rows() {
        let mut folder = PathBuf::new();
        for (key, column) in partition_by.iter().zip(&values) {
            folder.push(format!("{}={}", key.column(), column[row]));
        }
        groups.entry(folder).or_default().push(row as u32);
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

/// The folder value of `key` for every row.
fn partition_values(batch: &RecordBatch, key: PartitionKey) -> Result<Vec<String>, String> {
    let column = batch.column_by_name(match key {
        PartitionKey::Year | PartitionKey::Month => "time",
        other => other.column(),
    });
    let column = column.ok_or_else(|| format!("no column for partition key {}", key.column()))?;
    let n = batch.num_rows();
    let value = |row: usize, text: String| {
        if column.is_null(row) {
            NULL_PARTITION.to_string()
        } else {
            text
        }
    };
    Ok(match key {
        PartitionKey::Year | PartitionKey::Month => {
            let times = column.as_primitive::<TimestampMicrosecondType>();
            (0..n)
                .map(|row| {
                    let time =
                        DateTime::from_timestamp_micros(times.value(row)).unwrap_or_default();
                    let text = if key == PartitionKey::Year {
                        format!("{:04}", time.year())
                    } else {
                        format!("{:02}", time.month())
                    };
                    value(row, text)
                })
                .collect()
        }
        PartitionKey::Rgt => {
            let rgts = column.as_primitive::<UInt16Type>();
            (0..n)
                .map(|row| value(row, rgts.value(row).to_string()))
                .collect()
        }
        PartitionKey::Cycle => {
            let cycles = column.as_primitive::<UInt8Type>();
            (0..n)
                .map(|row| value(row, cycles.value(row).to_string()))
                .collect()
        }
        PartitionKey::Beam => {
            let beams = column.as_string::<i32>();
            (0..n)
                .map(|row| value(row, beams.value(row).to_string()))
                .collect()
        }
    })
}
