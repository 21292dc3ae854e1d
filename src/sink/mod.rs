//! The output dataset: rows split by the manifest's `partition_by` into hive
//! folders (`year=2019/month=01/`), encoded as GeoParquet 1.1 (`encode`),
//! buffered per partition across granules (`writer`), and committed through
//! a journal so readers never see a partial file and a killed run resumes
//! without losing or repeating a row (`journal`).

pub mod commit;
mod encode;
pub mod journal;
mod lock;
mod output;
mod runs;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::dataset::schema;
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{Schema, SchemaRef, TimestampMicrosecondType, UInt8Type, UInt16Type};
use chrono::{DateTime, Datelike};

pub use commit::{is_data_file, is_hidden, write_atomically};
pub use encode::{GeoParquetFile, WriterSettings};
pub use lock::WriterLock;
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

impl SinkError {
    /// An I/O failure at `path`, with what to do about the failures a bulk
    /// run meets (a spent file limit, a full disk, a read-only output).
    pub fn io(path: impl std::fmt::Display, err: &std::io::Error) -> SinkError {
        let errno = err.raw_os_error();
        let message = if errno == Some(libc::EMFILE) || errno == Some(libc::ENFILE) {
            format!(
                "too many open files (this process may open {}): raise the limit (ulimit -n) \
                 or partition by fewer keys; the next run resumes from the last checkpoint",
                open_file_limit()
                    .map_or_else(|| "an unknown number".to_string(), |n| n.to_string())
            )
        } else if errno == Some(libc::ENOSPC) || errno == Some(libc::EDQUOT) {
            "no space left on the device: free some and run again; the next run resumes \
             from the last checkpoint"
                .to_string()
        } else if errno == Some(libc::EROFS) {
            "the output is on a read-only file system".to_string()
        } else {
            err.to_string()
        };
        SinkError::Io {
            path: path.to_string(),
            message,
        }
    }
}

/// The soft limit on open files (`RLIMIT_NOFILE`), if the system tells it.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (got == 0).then_some(limit.rlim_cur)
}

/// Raises the soft limit on open files to the hard limit (a run keeps a
/// file open per partition), and returns the soft limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    Some(limit.rlim_cur)
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
            PartitionKey::Rgt => schema::RGT,
            PartitionKey::Cycle => schema::CYCLE,
            PartitionKey::Beam => schema::BEAM,
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
    while run_start < batch.num_rows() {
        let run_end = keys
            .iter()
            .map(|key| key.run_end(run_start))
            .min()
            .unwrap_or(batch.num_rows());
        let mut folder = PathBuf::new();
        for (key, column) in partition_by.iter().zip(&keys) {
            folder.push(format!("{}={}", key.column(), column.value(run_start)));
        }
        groups
            .entry(folder)
            .or_default()
            .extend(run_start as u32..run_end as u32);
        run_start = run_end;
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

/// The end of the run of `values` from `start` that are all `same`.
fn run_of<T: Copy>(values: &[T], start: usize, same: impl Fn(T) -> bool) -> usize {
    values[start + 1..]
        .iter()
        .position(|&value| !same(value))
        .map_or(values.len(), |offset| start + 1 + offset)
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
                PartitionKey::Year | PartitionKey::Month => schema::TIME,
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

    /// The end of the run of rows from `start` that certainly have
    /// `start`'s value (the same UTC day for times; the folder is the same
    /// then), nulls with nulls. The loops read the value slices, as they
    /// run for every row a run writes.
    fn run_end(&self, start: usize) -> usize {
        let column = self.column();
        let len = column.len();
        if let Some(nulls) = column.nulls().filter(|nulls| nulls.null_count() > 0) {
            let null = nulls.is_null(start);
            let same = |row: usize| match (null, nulls.is_null(row)) {
                (true, true) => true,
                (false, false) => self.same_valid(start, row),
                _ => false,
            };
            return (start + 1..len).find(|&row| !same(row)).unwrap_or(len);
        }
        match self {
            KeyColumn::Time { times, .. } => {
                // The day's first microsecond and the next day's (a time
                // at either end of the range may only start a run of its
                // own).
                let low = times
                    .value(start)
                    .div_euclid(MICROS_PER_DAY)
                    .saturating_mul(MICROS_PER_DAY);
                let high = low.saturating_add(MICROS_PER_DAY);
                run_of(times.values(), start, |time| low <= time && time < high)
            }
            KeyColumn::Rgt(values) => {
                let first = values.value(start);
                run_of(values.values(), start, |value| value == first)
            }
            KeyColumn::Cycle(values) => {
                let first = values.value(start);
                run_of(values.values(), start, |value| value == first)
            }
            KeyColumn::Beam(values) => {
                let first = values.value(start);
                (start + 1..len)
                    .find(|&row| values.value(row) != first)
                    .unwrap_or(len)
            }
        }
    }

    /// Whether valid rows `a` and `b` have the same folder value.
    fn same_valid(&self, a: usize, b: usize) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, Int32Array, StringArray, TimestampMicrosecondArray, UInt8Array, UInt16Array,
    };
    use arrow::datatypes::{DataType, Field, TimeUnit};

    /// Rows split by folder the slow way: each row's folder formatted.
    fn by_row(batch: &RecordBatch, partition_by: &[PartitionKey]) -> BTreeMap<PathBuf, Vec<i32>> {
        let keys: Vec<KeyColumn> = partition_by
            .iter()
            .map(|key| KeyColumn::new(batch, *key).unwrap())
            .collect();
        let ids = batch
            .column_by_name("id")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int32Type>();
        let mut groups: BTreeMap<PathBuf, Vec<i32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let mut folder = PathBuf::new();
            for (key, column) in partition_by.iter().zip(&keys) {
                folder.push(format!("{}={}", key.column(), column.value(row)));
            }
            groups.entry(folder).or_default().push(ids.value(row));
        }
        groups
    }

    fn batch(times: Vec<Option<i64>>, rgt: Vec<Option<u16>>) -> RecordBatch {
        let n = times.len();
        let beam = StringArray::from(
            [
                "gt1l", "gt1l", "gt1r", "gt1r", "gt1r", "gt1r", "gt2l", "gt2l", "gt2l", "gt1l",
            ][..n]
                .to_vec(),
        );
        let fields = vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("rgt", DataType::UInt16, true),
            Field::new("cycle", DataType::UInt8, false),
            Field::new("beam", DataType::Utf8, false),
            Field::new("id", DataType::Int32, false),
        ];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
            Arc::new(UInt16Array::from(rgt)),
            Arc::new(UInt8Array::from(vec![3; n])),
            Arc::new(beam),
            Arc::new(Int32Array::from((0..n as i32).collect::<Vec<_>>())),
        ];
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn rows_go_to_the_folder_of_their_own_values() {
        // 2019-01-31 and 2019-02-01 (UTC days 17927, 17928), null times,
        // back to January, the ends of the range; rgt and beam changing
        // on rows of their own.
        let jan31 = 17_927 * MICROS_PER_DAY;
        let feb1 = jan31 + MICROS_PER_DAY;
        let with_nulls = batch(
            vec![
                Some(jan31),
                Some(feb1 - 1),
                Some(feb1),
                Some(feb1 + 5),
                None,
                None,
                Some(jan31 + 7),
                Some(i64::MAX),
                Some(i64::MAX),
                Some(-1),
            ],
            vec![
                Some(5),
                Some(5),
                Some(5),
                Some(6),
                Some(6),
                None,
                None,
                Some(6),
                Some(6),
                Some(6),
            ],
        );
        // The same without nulls (the loops over the value slices).
        let without_nulls = batch(
            vec![
                Some(jan31),
                Some(feb1 - 1),
                Some(feb1),
                Some(feb1 + 5),
                Some(jan31 + 7),
                Some(i64::MAX),
                Some(i64::MAX),
                Some(i64::MIN),
            ],
            vec![5, 5, 5, 6, 6, 6, 7, 7].into_iter().map(Some).collect(),
        );
        use PartitionKey::*;
        for batch in [&with_nulls, &without_nulls] {
            for partition_by in [
                vec![],
                vec![Year, Month],
                vec![Month],
                vec![Rgt],
                vec![Year, Month, Rgt, Cycle, Beam],
                vec![Beam, Cycle],
            ] {
                let schema = file_schema(&batch.schema(), &partition_by);
                let split: BTreeMap<PathBuf, Vec<i32>> =
                    split_partitions(batch, &partition_by, &schema)
                        .unwrap()
                        .into_iter()
                        .map(|(folder, part)| {
                            let ids = part
                                .column_by_name("id")
                                .unwrap()
                                .as_primitive::<arrow::datatypes::Int32Type>();
                            (folder, ids.values().to_vec())
                        })
                        .collect();
                assert_eq!(split, by_row(batch, &partition_by), "{partition_by:?}");
            }
        }
        // The month boundary and the null times, by name.
        for (batch, nulls) in [(&with_nulls, 2), (&without_nulls, 0)] {
            let split = split_partitions(batch, &[Year, Month], &batch.schema()).unwrap();
            let rows = |folder: &str| {
                split
                    .get(&PathBuf::from(folder))
                    .map_or(0, |part| part.num_rows())
            };
            assert_eq!(rows("year=2019/month=01"), 3);
            assert_eq!(rows("year=2019/month=02"), 2);
            assert_eq!(
                rows(&format!("year={NULL_PARTITION}/month={NULL_PARTITION}")),
                nulls
            );
        }
    }
}
