//! The quick-look's numbers, read straight from a dataset's Parquet files in
//! two passes. The footers' statistics give every range (the data's extent,
//! the time span, each variable's minimum and maximum), which fixes the map
//! grid and the histogram bins; then one read of the columns the report
//! draws, a row group per core, counts rows by beam, granule, month and map cell
//! and fills the histograms. (Fifteen SQL scans in DataFusion took 0.7 s for
//! 689,308 rows, most of it formatting timestamps to truncate them to
//! months; the quick-look is written at the end of every run.)
//!
//! The numbers are the ones `icesat2 query` gives: the report test checks
//! them against it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use bytes::{Buf, Bytes};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::reader::{ChunkReader, Length};
use rayon::prelude::*;

use super::ReportError;
use crate::dataset::schema;
use crate::sink::Output;

use super::kernels::*;
use super::stats::*;

/// What the footers say about the whole dataset.
#[derive(Debug, Default)]
pub struct Footers {
    /// The columns of every file, in first-seen order (a column that some
    /// files lack reads as nulls there, as in `icesat2 query`).
    pub fields: Vec<FieldRef>,
    /// Ranges of the numeric columns and `time`.
    pub ranges: HashMap<String, Range>,
}

/// A data file: the local file, or an object read by ranges (the footer,
/// then only the column chunks a pass projects).
enum Source {
    Local(std::fs::File),
    Remote {
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
        len: u64,
    },
}

impl Source {
    /// Another handle on the same file.
    fn try_clone(&self) -> std::io::Result<Source> {
        Ok(match self {
            Source::Local(file) => Source::Local(file.try_clone()?),
            Source::Remote { store, path, len } => Source::Remote {
                store: store.clone(),
                path: path.clone(),
                len: *len,
            },
        })
    }
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Local(file) => file.len(),
            Source::Remote { len, .. } => *len,
        }
    }
}

impl ChunkReader for Source {
    type T = Box<dyn std::io::Read + Send>;

    // Local reads are positional (pread): the handles of one file share
    // its offset, and its row groups are read on several threads at once
    // (`File`'s own `ChunkReader` seeks, then reads).
    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Source::Local(file) => Box::new(std::io::BufReader::new(PositionedReader {
                file: file.try_clone()?,
                offset: start,
            })),
            Source::Remote { len, .. } => {
                let rest = usize::try_from(len.saturating_sub(start))
                    .map_err(|err| parquet::errors::ParquetError::External(Box::new(err)))?;
                Box::new(self.get_bytes(start, rest)?.reader())
            }
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::Local(file) => {
                use std::os::unix::fs::FileExt;
                let mut buffer = vec![0; length];
                file.read_exact_at(&mut buffer, start)?;
                Ok(buffer.into())
            }
            Source::Remote { store, path, .. } => crate::store::runtime()
                .block_on(store.get_range(path, start..start + length as u64))
                .map_err(|err| parquet::errors::ParquetError::External(Box::new(err))),
        }
    }
}

/// Reads a file from `offset` on, by position: never moves the offset the
/// file's other handles share.
struct PositionedReader {
    file: std::fs::File,
    offset: u64,
}

impl std::io::Read for PositionedReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let read = self.file.read_at(buffer, self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

/// The visible data files of `output`, opened on every core.
pub struct Dataset<'a> {
    output: &'a Output,
    pub files: Vec<String>,
}

impl<'a> Dataset<'a> {
    pub fn list(output: &'a Output) -> Result<Dataset<'a>, ReportError> {
        let files = output
            .data_files()
            .map_err(|err| ReportError(err.to_string()))?;
        Ok(Dataset { output, files })
    }

    fn open(&self, relative: &str) -> Result<ParquetRecordBatchReaderBuilder<Source>, ReportError> {
        ParquetRecordBatchReaderBuilder::try_new(self.source(relative)?)
            .map_err(|err| self.error(relative, &err.to_string()))
    }

    /// The file and its footer, read with text columns dictionary-encoded
    /// (as written): the granule name is not copied out for every row, and
    /// runs of one value are found by comparing keys.
    fn open_with_dictionaries(
        &self,
        relative: &str,
    ) -> Result<(Source, ArrowReaderMetadata), ReportError> {
        let error = |err: parquet::errors::ParquetError| self.error(relative, &err.to_string());
        let source = self.source(relative)?;
        let plain = ArrowReaderMetadata::load(&source, ArrowReaderOptions::new()).map_err(error)?;
        let fields: Vec<Field> = plain
            .schema()
            .fields()
            .iter()
            .map(|field| match field.data_type() {
                DataType::Utf8 => field.as_ref().clone().with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(DataType::Utf8),
                )),
                _ => field.as_ref().clone(),
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            plain.schema().metadata().clone(),
        ));
        let metadata = ArrowReaderMetadata::try_new(
            plain.metadata().clone(),
            ArrowReaderOptions::new().with_schema(schema),
        )
        .map_err(error)?;
        Ok((source, metadata))
    }

    fn source(&self, relative: &str) -> Result<Source, ReportError> {
        Ok(match self.output {
            Output::Local(root) => {
                let path = root.join(relative);
                Source::Local(
                    std::fs::File::open(&path)
                        .map_err(|err| ReportError(format!("{}: {err}", path.display())))?,
                )
            }
            Output::Store { store, prefix, .. } => {
                let path = Output::object_path(prefix, relative);
                let len = crate::store::runtime()
                    .block_on(store.head(&path))
                    .map_err(|err| self.error(relative, &err.to_string()))?
                    .size;
                Source::Remote {
                    store: store.clone(),
                    path,
                    len,
                }
            }
        })
    }

    fn error(&self, relative: &str, message: &str) -> ReportError {
        ReportError(format!("{}/{relative}: {message}", self.output))
    }

    /// First pass: the columns and ranges, from every file's footer (a file
    /// whose footer lacks a column's statistics has that column read).
    pub fn footers(&self) -> Result<Footers, ReportError> {
        let per_file = self
            .files
            .par_iter()
            .map(|relative| self.file_footer(relative))
            .collect::<Result<Vec<_>, _>>()?;
        let mut footers = Footers::default();
        for (fields, ranges) in per_file {
            for field in fields {
                if !footers
                    .fields
                    .iter()
                    .any(|seen| seen.name() == field.name())
                {
                    footers.fields.push(field);
                }
            }
            for (name, (low, high)) in ranges {
                let range = footers.ranges.entry(name).or_insert((low, high));
                *range = (range.0.min(low), range.1.max(high));
            }
        }
        Ok(footers)
    }

    #[allow(clippy::type_complexity)]
    fn file_footer(
        &self,
        relative: &str,
    ) -> Result<(Vec<FieldRef>, Vec<(String, Range)>), ReportError> {
        let builder = self.open(relative)?;
        let schema = builder.schema().clone();
        let row_groups = builder.metadata().row_groups();
        let mut ranges = Vec::new();
        let mut unknown = Vec::new();
        for field in schema.fields() {
            if !has_range(field) {
                continue;
            }
            match footer_range(field, &builder)
                .map_err(|err| self.error(relative, &err.to_string()))?
            {
                Some(Some(range)) => ranges.push((field.name().clone(), range)),
                Some(None) => {}
                None => unknown.push(field.name().clone()),
            }
        }
        if !unknown.is_empty() && !row_groups.is_empty() {
            let roots: Vec<usize> = unknown
                .iter()
                .filter_map(|name| schema.index_of(name).ok())
                .collect();
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            let reader = builder
                .with_projection(mask)
                .build()
                .map_err(|err| self.error(relative, &err.to_string()))?;
            let mut scanned: HashMap<String, Range> = HashMap::new();
            for batch in reader {
                let batch = batch.map_err(|err| self.error(relative, &err.to_string()))?;
                for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                    for value in as_f64(column).array().iter().flatten() {
                        let range = scanned
                            .entry(field.name().clone())
                            .or_insert((value, value));
                        *range = (range.0.min(value), range.1.max(value));
                    }
                }
            }
            ranges.extend(scanned);
        }
        Ok((schema.fields().iter().cloned().collect(), ranges))
    }

    /// Second pass: the counts and sums, a row group per core (files differ
    /// in size; a file per core left a core idle at the end). A column that
    /// lives in the folder names (hive partitions) takes its value from them.
    pub fn tally(&self, binning: &Binning) -> Result<Tally, ReportError> {
        self.files
            .par_iter()
            .map(|relative| self.file_tally(relative, binning))
            .try_reduce(|| Tally::new(binning), |a, b| Ok(a.merge(b)))
    }

    fn file_tally(&self, relative: &str, binning: &Binning) -> Result<Tally, ReportError> {
        let folders: HashMap<&str, &str> = relative
            .split('/')
            .filter_map(|part| part.split_once('='))
            .collect();
        let (source, metadata) = self.open_with_dictionaries(relative)?;
        let schema = metadata.schema().clone();
        let mut wanted = vec![
            schema::GRANULE,
            schema::BEAM,
            schema::BEAM_STRENGTH,
            schema::TIME,
            schema::LONGITUDE,
            schema::LATITUDE,
        ];
        wanted.extend(binning.color.as_deref());
        wanted.extend(binning.histograms.iter().map(|(name, _)| name.as_str()));
        let roots: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, field)| wanted.contains(&field.name().as_str()))
            .map(|(index, _)| index)
            .collect();
        let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
        // A row group at a time: each has its own dictionaries, and a batch
        // across two would be decoded to strings and dictionary-encoded
        // again (most rows of the bulk benchmark, whose files hold a row
        // group per granule).
        (0..metadata.metadata().num_row_groups())
            .into_par_iter()
            .map(|row_group| {
                let source = source
                    .try_clone()
                    .map_err(|err| self.error(relative, &err.to_string()))?;
                let reader =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(source, metadata.clone())
                        .with_row_groups(vec![row_group])
                        .with_batch_size(64 * 1024)
                        .with_projection(mask.clone())
                        .build()
                        .map_err(|err| self.error(relative, &err.to_string()))?;
                let mut tally = Tally::new(binning);
                for batch in reader {
                    let batch = batch.map_err(|err| self.error(relative, &err.to_string()))?;
                    tally_batch(&mut tally, &batch, &folders);
                }
                Ok(tally)
            })
            .try_reduce(|| Tally::new(binning), |a, b| Ok(a.merge(b)))
    }
}

/// Whether the report needs the column's range: numbers and times.
fn has_range(field: &Field) -> bool {
    field.data_type().is_numeric() || matches!(field.data_type(), DataType::Timestamp(..))
}

/// The column's range from the footer's row-group statistics:
/// `Some(None)` when every value is null, `None` when a row group with
/// values has no statistics.
fn footer_range(
    field: &Field,
    builder: &ParquetRecordBatchReaderBuilder<Source>,
) -> parquet::errors::Result<Option<Option<Range>>> {
    let converter =
        StatisticsConverter::try_new(field.name(), builder.schema(), builder.parquet_schema())?;
    let row_groups = builder.metadata().row_groups();
    let mins = as_f64(&converter.row_group_mins(row_groups)?);
    let maxes = as_f64(&converter.row_group_maxes(row_groups)?);
    let nulls = converter.row_group_null_counts(row_groups)?;
    let mut range: Option<Range> = None;
    for (index, row_group) in row_groups.iter().enumerate() {
        let values = (row_group.num_rows().max(0) as u64).saturating_sub(nulls.value(index));
        if values == 0 {
            continue;
        }
        let (Some(low), Some(high)) = (mins.value(index), maxes.value(index)) else {
            return Ok(None);
        };
        range = Some(range.map_or((low, high), |(a, b)| (a.min(low), b.max(high))));
    }
    Ok(Some(range))
}
