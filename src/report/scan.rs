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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, RecordBatch, StringArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Field, FieldRef, Float64Type, Int32Type, Int64Type, Schema, TimeUnit,
};
use bytes::{Buf, Bytes};
use chrono::{DateTime, Datelike, TimeZone, Utc};
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
use crate::sink::Output;

/// A column's smallest and largest non-null value (a time in microseconds).
pub type Range = (f64, f64);

/// What the footers say about the whole dataset.
#[derive(Debug, Default)]
pub struct Footers {
    /// The columns of every file, in first-seen order (a column that some
    /// files lack reads as nulls there, as in `icesat2 query`).
    pub fields: Vec<FieldRef>,
    /// Ranges of the numeric columns and `time`.
    pub ranges: HashMap<String, Range>,
}

/// How the second pass bins: the map grid and each histogram. Every bin
/// and cell is aligned on a power of two (bin k of level e holds
/// [k 2^e, (k + 1) 2^e)), so counts kept at a finer level add up exactly
/// into any coarser one: a run counts its own rows as it writes them, at
/// levels fine enough for any extent, and the report coarsens them to the
/// levels the whole dataset's extent asks for (`Tally::coarsen`).
#[derive(Debug, Clone)]
pub struct Binning {
    /// Levels of the map cells: 2^x degrees of longitude by 2^y of latitude.
    pub cell_levels: (i32, i32),
    /// The column the map cells average.
    pub color: Option<String>,
    /// Each histogram's column and level (`None`: chosen from its first
    /// values, finer than any extent they will reach asks for).
    pub histograms: Vec<(String, Option<i32>)>,
}

/// Most bins a histogram keeps before it halves its resolution.
const MAX_BINS: usize = 1 << 12;
/// Most map cells a tally keeps before it halves its resolution.
const MAX_CELLS: usize = 1 << 18;

/// 2^-level: what a value is multiplied by to give its bin (exact for
/// every level a finite range asks for).
fn scale(level: i32) -> f64 {
    2f64.powi(-level)
}

/// The level of bins of at least `width` (the smallest power of two not
/// below it).
pub fn level_at_least(width: f64) -> i32 {
    if !width.is_finite() || width <= 0.0 {
        return 0;
    }
    let mut level = width.log2().ceil() as i32;
    while 2f64.powi(level) < width {
        level += 1;
    }
    while 2f64.powi(level - 1) >= width {
        level -= 1;
    }
    level
}

/// One histogram's sums: counts of bins `first`, `first + 1`, ... at
/// `level`, and of values no bin holds (NaN and minus infinity count as
/// the lowest bin, plus infinity as the highest, as before).
#[derive(Debug, Clone, Default)]
pub struct Bins {
    pub count: u64,
    pub sum: f64,
    pub level: Option<i32>,
    pub first: i64,
    pub bins: Vec<u64>,
    pub below: u64,
    pub above: u64,
}

/// A map cell's sums: colour values added, how many, rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct CellSums {
    pub sum: f64,
    pub values: u64,
    pub rows: u64,
}

/// Map cells by (column, row) of the grid. Hashed with FxHash, not std's
/// SipHash: a cell is looked up for every run of rows in one cell, and the
/// maps of every row group are merged (SipHash and the merges were 6% of
/// the report's CPU on the bulk benchmark's dataset).
pub type Cells = rustc_hash::FxHashMap<(i64, i64), CellSums>;

/// What the second pass counts.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub rows: u64,
    /// Rows by (beam, beam strength).
    pub beams: BTreeMap<(String, String), u64>,
    pub granules: BTreeMap<String, u64>,
    /// Rows by `YYYY-MM` (rows with a time).
    pub months: BTreeMap<String, u64>,
    /// Rows with both coordinates, by cell (x, y): [x 2^cell_levels.0,
    /// (x + 1) 2^cell_levels.0) of longitude, likewise of latitude.
    pub cells: Cells,
    pub cell_levels: (i32, i32),
    /// The colour column the cells sum.
    pub color: Option<String>,
    /// By column, in the order of `Binning::histograms`.
    pub histograms: Vec<(String, Bins)>,
}

impl Tally {
    pub fn new(binning: &Binning) -> Tally {
        Tally {
            cell_levels: binning.cell_levels,
            color: binning.color.clone(),
            histograms: binning
                .histograms
                .iter()
                .map(|(name, level)| {
                    (
                        name.clone(),
                        Bins {
                            level: *level,
                            ..Bins::default()
                        },
                    )
                })
                .collect(),
            ..Tally::default()
        }
    }

    /// Counts the rows of one granule as they are written: `beams` gives
    /// its rows by (beam, beam strength), which the text columns would
    /// give (compared row by row, they cost as much as the rest).
    pub fn add_granule<'a>(
        &mut self,
        batch: &RecordBatch,
        granule: &str,
        beams: impl Iterator<Item = (&'a str, &'a str, u64)>,
    ) {
        let rows = batch.num_rows() as u64;
        if rows == 0 {
            return;
        }
        self.rows += rows;
        *self.granules.entry(granule.to_string()).or_default() += rows;
        for (beam, strength, rows) in beams.filter(|beam| beam.2 > 0) {
            *self
                .beams
                .entry((beam.to_string(), strength.to_string()))
                .or_default() += rows;
        }
        tally_values(self, batch);
    }

    /// The same counts at coarser levels: cells at `cell_levels`, and
    /// each histogram at its level in `levels` (by column; a level finer
    /// than the tally's is left as it is).
    pub fn coarsen(&mut self, cell_levels: (i32, i32), levels: &HashMap<String, i32>) {
        let shift = (
            cell_levels.0.saturating_sub(self.cell_levels.0).max(0),
            cell_levels.1.saturating_sub(self.cell_levels.1).max(0),
        );
        if shift != (0, 0) {
            let mut cells = Cells::default();
            for ((x, y), sums) in self.cells.drain() {
                add_cell(
                    &mut cells,
                    (x >> shift.0.min(63), y >> shift.1.min(63)),
                    sums,
                );
            }
            self.cells = cells;
            self.cell_levels = (self.cell_levels.0 + shift.0, self.cell_levels.1 + shift.1);
        }
        for (name, bins) in &mut self.histograms {
            if let Some(&level) = levels.get(name) {
                bins.coarsen(level);
            }
        }
    }

    pub fn merge(mut self, mut other: Tally) -> Tally {
        let cell_levels = (
            self.cell_levels.0.max(other.cell_levels.0),
            self.cell_levels.1.max(other.cell_levels.1),
        );
        let no_levels = HashMap::new();
        self.coarsen(cell_levels, &no_levels);
        other.coarsen(cell_levels, &no_levels);
        self.rows += other.rows;
        for (key, rows) in other.beams {
            *self.beams.entry(key).or_default() += rows;
        }
        for (key, rows) in other.granules {
            *self.granules.entry(key).or_default() += rows;
        }
        for (key, rows) in other.months {
            *self.months.entry(key).or_default() += rows;
        }
        for (key, sums) in other.cells {
            add_cell(&mut self.cells, key, sums);
        }
        for (name, theirs) in other.histograms {
            match self.histograms.iter_mut().find(|(mine, _)| *mine == name) {
                Some((_, mine)) => mine.merge(theirs),
                None => self.histograms.push((name, theirs)),
            }
        }
        self.bound_cells();
        self
    }

    /// Halves the map's resolution until its cells are few enough.
    fn bound_cells(&mut self) {
        while self.cells.len() > MAX_CELLS {
            let levels = (self.cell_levels.0 + 1, self.cell_levels.1 + 1);
            self.coarsen(levels, &HashMap::new());
        }
    }
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
            "granule",
            "beam",
            "beam_strength",
            "time",
            "longitude",
            "latitude",
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

/// A time column as microseconds, whatever unit it is stored in.
fn micros(column: &ArrayRef) -> Option<ArrayRef> {
    let DataType::Timestamp(_, zone) = column.data_type() else {
        return None;
    };
    let micros = DataType::Timestamp(TimeUnit::Microsecond, zone.clone());
    arrow::compute::cast(column, &micros)
        .and_then(|column| arrow::compute::cast(&column, &DataType::Int64))
        .ok()
}

/// A numeric or time column as f64 values (times in microseconds).
fn as_f64(column: &ArrayRef) -> F64s {
    let column = match column.data_type() {
        DataType::Timestamp(..) => micros(column)
            .unwrap_or_else(|| arrow::array::new_null_array(&DataType::Int64, column.len())),
        _ => column.clone(),
    };
    F64s(
        arrow::compute::cast(&column, &DataType::Float64)
            .unwrap_or_else(|_| arrow::array::new_null_array(&DataType::Float64, column.len())),
    )
}

/// A Float64 column.
struct F64s(ArrayRef);

impl F64s {
    fn array(&self) -> &Float64Array {
        self.0.as_primitive::<Float64Type>()
    }

    fn value(&self, index: usize) -> Option<f64> {
        let array = self.0.as_primitive::<Float64Type>();
        array.is_valid(index).then(|| array.value(index))
    }
}

/// `x.floor() as i64`, without the libm call that `floor` is on baseline
/// x86-64 (no SSE4.1): the same for every f64, NaN giving 0.
fn floor_i64(x: f64) -> i64 {
    let truncated = x as i64;
    if (truncated as f64) > x {
        truncated.saturating_sub(1)
    } else {
        truncated
    }
}

/// A text column (dictionary-encoded as read, or plain), or the value of
/// its hive folder, or nulls.
enum Text {
    Dictionary(DictionaryArray<Int32Type>, StringArray),
    Column(StringArray),
    Constant(Option<String>),
}

impl Text {
    fn new(batch: &RecordBatch, name: &str, folders: &HashMap<&str, &str>) -> Text {
        let Some(column) = batch.column_by_name(name) else {
            return Text::Constant(folders.get(name).map(|value| value.to_string()));
        };
        if let Some(dictionary) = column.as_dictionary_opt::<Int32Type>()
            && let Some(values) = dictionary.values().as_string_opt::<i32>()
        {
            return Text::Dictionary(dictionary.clone(), values.clone());
        }
        match arrow::compute::cast(column, &DataType::Utf8) {
            Ok(array) => Text::Column(array.as_string::<i32>().clone()),
            Err(_) => Text::Constant(None),
        }
    }

    fn get(&self, index: usize) -> Option<&str> {
        match self {
            Text::Dictionary(keys, values) => keys
                .is_valid(index)
                .then(|| values.value(keys.keys().value(index) as usize)),
            Text::Column(array) => array.is_valid(index).then(|| array.value(index)),
            Text::Constant(value) => value.as_deref(),
        }
    }

    /// Whether rows `a` and `b` hold the same text (equal keys are; a
    /// dictionary may also hold one value under two keys).
    #[inline]
    fn same(&self, a: usize, b: usize) -> bool {
        if let Text::Dictionary(keys, _) = self
            && keys.null_count() == 0
            && keys.keys().values()[a] == keys.keys().values()[b]
        {
            return true;
        }
        self.get(a) == self.get(b)
    }
}

/// Counts one batch. Rows come in runs (a file is sorted by granule and
/// beam, a track crosses a map cell in many segments, a month in many
/// granules), so every key is compared with the previous row's and looked
/// up only where it changes.
fn tally_batch(tally: &mut Tally, batch: &RecordBatch, folders: &HashMap<&str, &str>) {
    let rows = batch.num_rows();
    tally.rows += rows as u64;

    let (granule, beam, strength) = (
        Text::new(batch, "granule", folders),
        Text::new(batch, "beam", folders),
        Text::new(batch, "beam_strength", folders),
    );
    let mut start = 0;
    for index in 1..=rows {
        let changed = index == rows
            || !granule.same(index, start)
            || !beam.same(index, start)
            || !strength.same(index, start);
        if !changed {
            continue;
        }
        let count = (index - start) as u64;
        *tally
            .granules
            .entry(granule.get(start).unwrap_or_default().to_string())
            .or_default() += count;
        *tally
            .beams
            .entry((
                beam.get(start).unwrap_or_default().to_string(),
                strength.get(start).unwrap_or_default().to_string(),
            ))
            .or_default() += count;
        start = index;
    }
    tally_values(tally, batch);
}

/// Counts one batch's months, map cells and histograms.
fn tally_values(tally: &mut Tally, batch: &RecordBatch) {
    if let Some(micros) = batch.column_by_name("time").and_then(micros) {
        let micros = micros.as_primitive::<Int64Type>();
        let values = micros.values();
        // The month holding the previous time: [low, high) and its key
        // (none yet: an empty range). The loops read the values slice, as
        // they run for every row a run writes.
        let (mut low, mut high, mut key) = (0i64, 0i64, None::<String>);
        let mut run = 0u64;
        let mut add = |value: i64| {
            if low <= value && value < high {
                run += 1;
                return;
            }
            if let Some(key) = key.take() {
                *tally.months.entry(key).or_default() += run;
            }
            (low, high, key, run) = match month_of(value) {
                Some((first, next, month)) => (first, next, Some(month), 1),
                None => (0, 0, None, 0),
            };
        };
        match micros.nulls() {
            None => values.iter().for_each(|&value| add(value)),
            Some(nulls) => nulls.valid_indices().for_each(|index| add(values[index])),
        }
        if let Some(key) = key {
            *tally.months.entry(key).or_default() += run;
        }
    }

    let longitude = batch.column_by_name("longitude").map(as_f64);
    let latitude = batch.column_by_name("latitude").map(as_f64);
    if let (Some(longitude), Some(latitude)) = (longitude, latitude) {
        let color = tally
            .color
            .as_deref()
            .and_then(|name| batch.column_by_name(name))
            .map(as_f64);
        tally_cells(
            &mut tally.cells,
            tally.cell_levels,
            (longitude.array(), latitude.array()),
            color.as_ref().map(F64s::array),
        );
        tally.bound_cells();
    }

    for (name, histogram) in &mut tally.histograms {
        if let Some(column) = batch.column_by_name(name) {
            histogram.add(column);
        }
    }
}

/// Adds rows to the map cells they fall in. The loops below run for every
/// row of the dataset at the end of every run: they read the value slices
/// directly and keep their sums in locals.
fn tally_cells(
    cells: &mut Cells,
    levels: (i32, i32),
    (longitude, latitude): (&Float64Array, &Float64Array),
    color: Option<&Float64Array>,
) {
    let (x_scale, y_scale) = (scale(levels.0), scale(levels.1));
    let both = NullBuffer::union(longitude.nulls(), latitude.nulls());
    let (longitude, latitude) = (longitude.values(), latitude.values());
    let color_nulls = color.and_then(|color| color.nulls());
    let color = color.map(|color| color.values());
    let mut current: Option<((i64, i64), CellSums)> = None;
    for (index, (&lon, &lat)) in longitude.iter().zip(latitude).enumerate() {
        // As SQL's cast of a non-finite number: no cell.
        if both.as_ref().is_some_and(|nulls| nulls.is_null(index))
            || !lon.is_finite()
            || !lat.is_finite()
        {
            continue;
        }
        let key = (floor_i64(lon * x_scale), floor_i64(lat * y_scale));
        let sums = match &mut current {
            Some((seen, sums)) if *seen == key => sums,
            _ => {
                if let Some((seen, sums)) = current.take() {
                    add_cell(cells, seen, sums);
                }
                &mut current.insert((key, CellSums::default())).1
            }
        };
        sums.rows += 1;
        if let Some(color) = color
            && color_nulls.is_none_or(|nulls| nulls.is_valid(index))
        {
            sums.sum += color[index];
            sums.values += 1;
        }
    }
    if let Some((seen, sums)) = current {
        add_cell(cells, seen, sums);
    }
}

impl Bins {
    /// Adds a numeric or time column's non-null values (times in
    /// microseconds).
    /// Types every value of which an f64 holds exactly (float32, the
    /// integers up to 32 bits) are read in place, not cast first.
    fn add(&mut self, column: &ArrayRef) {
        use arrow::datatypes::{
            Float32Type, Int8Type, Int16Type, UInt8Type, UInt16Type, UInt32Type,
        };
        macro_rules! in_place {
            ($type:ty) => {{
                let array = column.as_primitive::<$type>();
                self.add_values(array.values(), array.nulls())
            }};
        }
        match column.data_type() {
            DataType::Float64 => in_place!(Float64Type),
            DataType::Float32 => in_place!(Float32Type),
            DataType::Int32 => in_place!(Int32Type),
            DataType::Int16 => in_place!(Int16Type),
            DataType::Int8 => in_place!(Int8Type),
            DataType::UInt32 => in_place!(UInt32Type),
            DataType::UInt16 => in_place!(UInt16Type),
            DataType::UInt8 => in_place!(UInt8Type),
            _ => {
                let cast = as_f64(column);
                self.add_values(cast.array().values(), cast.array().nulls())
            }
        }
    }

    /// The loop of `add`: sums in row order; with nulls, over the valid
    /// values gathered first, so the cost does not depend on how the nulls
    /// lie. Fill values scattered among the values (as in the bulk
    /// benchmark) leave runs of one or two valid values: counted a run at a
    /// time, with the first range taken through an iterator of valid
    /// indices (160 M instructions of the quick-look's 373 M), they cost
    /// as much as gathered.
    fn add_values<T: Copy + Into<f64>>(&mut self, values: &[T], nulls: Option<&NullBuffer>) {
        let valid = values.len() - nulls.map_or(0, NullBuffer::null_count);
        if valid == 0 {
            return;
        }
        self.count += valid as u64;
        let gathered;
        let values = match nulls {
            None => values,
            Some(nulls) => {
                gathered = valid_values(values, nulls);
                &gathered[..]
            }
        };
        if self.level.is_none() {
            self.level = Some(first_level(values.iter().map(|&value| value.into())));
        }
        self.add_run(values);
    }

    /// Adds values that are all valid. The loop keeps the bins' slice, its
    /// first key, the scale and the sum in locals; a value outside the
    /// bins held goes through `place`, which widens them (or halves their
    /// resolution), and the locals are taken again.
    fn add_run<T: Copy + Into<f64>>(&mut self, values: &[T]) {
        let mut sum = self.sum;
        let mut rest = values;
        while !rest.is_empty() {
            let scale = scale(self.level.unwrap_or(0));
            let first = self.first;
            let bins = self.bins.as_mut_slice();
            let (mut below, mut above) = (0u64, 0u64);
            let mut outside = None;
            for (position, &value) in rest.iter().enumerate() {
                let value: f64 = value.into();
                sum += value;
                if !value.is_finite() {
                    if value > 0.0 {
                        above += 1;
                    } else {
                        below += 1;
                    }
                    continue;
                }
                let key = floor_i64(value * scale);
                match bins.get_mut(key.wrapping_sub(first) as usize) {
                    Some(count) => *count += 1,
                    None => {
                        outside = Some((position, key));
                        break;
                    }
                }
            }
            self.below += below;
            self.above += above;
            match outside {
                Some((position, key)) => {
                    self.place(key, 1);
                    rest = &rest[position + 1..];
                }
                None => rest = &[],
            }
        }
        self.sum = sum;
    }

    /// Adds `count` to bin `key` (at the current level), widening the
    /// bins to hold it, and halving their resolution while they would
    /// number more than `MAX_BINS`.
    fn place(&mut self, mut key: i64, count: u64) {
        if self.bins.is_empty() {
            self.first = key;
            self.bins.push(count);
            return;
        }
        loop {
            let last = self.first as i128 + self.bins.len() as i128 - 1;
            let span = last.max(key as i128) - (self.first as i128).min(key as i128) + 1;
            if span <= MAX_BINS as i128 {
                break;
            }
            self.halve();
            key >>= 1;
        }
        // Widened by at least the bins held (up to `MAX_BINS`), so values
        // arriving in falling or rising order cost one move in a few.
        let room = MAX_BINS.saturating_sub(self.bins.len());
        if key < self.first {
            let needed = (self.first - key) as usize;
            let extra = needed.max(self.bins.len()).min(room).max(needed);
            self.bins.splice(0..0, std::iter::repeat_n(0, extra));
            self.first -= extra as i64;
        }
        let index = (key - self.first) as usize;
        if index >= self.bins.len() {
            let length = (index + 1)
                .max(self.bins.len() * 2)
                .min(MAX_BINS)
                .max(index + 1);
            self.bins.resize(length, 0);
        }
        self.bins[index] += count;
    }

    /// One level coarser: bins k and k + 1 (k even) become bin k / 2.
    fn halve(&mut self) {
        let Some(level) = self.level else {
            return;
        };
        if !self.bins.is_empty() {
            // In i128: the last bin's key may be near i64::MAX (the keys
            // of huge values saturate).
            let old_first = self.first as i128;
            let first = old_first >> 1;
            let last = (old_first + self.bins.len() as i128 - 1) >> 1;
            let mut bins = vec![0; (last - first + 1) as usize];
            for (index, &count) in self.bins.iter().enumerate() {
                bins[(((old_first + index as i128) >> 1) - first) as usize] += count;
            }
            (self.first, self.bins) = (first as i64, bins);
        }
        self.level = Some(level + 1);
    }

    /// The same counts at `level`, when it is coarser than theirs.
    pub fn coarsen(&mut self, level: i32) {
        match self.level {
            None => self.level = Some(level),
            Some(_) => {
                while self.level.is_some_and(|mine| mine < level) {
                    self.halve();
                }
            }
        }
    }

    fn merge(&mut self, mut other: Bins) {
        self.count += other.count;
        self.sum += other.sum;
        self.below += other.below;
        self.above += other.above;
        let level = match (self.level, other.level) {
            (Some(mine), Some(theirs)) => mine.max(theirs),
            (mine, theirs) => mine.or(theirs).unwrap_or(0),
        };
        self.coarsen(level);
        other.coarsen(level);
        for (index, count) in other.bins.into_iter().enumerate() {
            if count > 0 {
                let level_now = self.level.unwrap_or(level);
                // A halving of mine while adding theirs moves their keys too.
                let key = (other.first + index as i64) >> (level_now - level);
                self.place(key, count);
            }
        }
    }

    /// The counts of bins `floor(low / 2^level)` to `floor(high / 2^level)`
    /// (the column's range), after `coarsen(level)`: values no bin holds
    /// in the lowest or highest.
    pub fn dense(&self, low: f64, high: f64) -> Vec<u64> {
        let Some(level) = self.level else {
            return Vec::new();
        };
        let scale = scale(level);
        let (first, last) = if low.is_finite() && high.is_finite() {
            (floor_i64(low * scale), floor_i64(high * scale))
        } else {
            (self.first, self.first + self.bins.len() as i64 - 1)
        };
        let length = usize::try_from(last.saturating_sub(first).saturating_add(1))
            .unwrap_or(1)
            .clamp(1, MAX_BINS);
        let mut bins = vec![0; length];
        for (index, &count) in self.bins.iter().enumerate() {
            let key = self.first + index as i64;
            let at = usize::try_from(key.saturating_sub(first)).unwrap_or(0);
            bins[at.min(length - 1)] += count;
        }
        bins[0] += self.below;
        bins[length - 1] += self.above;
        bins
    }
}

/// The level a histogram starts at, from its first values: a quarter of
/// `MAX_BINS` across their range (finer than the whole column's range will
/// ask for), or a millionth of the value when they are all one value.
fn first_level(values: impl Iterator<Item = f64>) -> i32 {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.filter(|value| value.is_finite()) {
        low = low.min(value);
        high = high.max(value);
    }
    if high > low {
        level_at_least((high - low) / (MAX_BINS / 4) as f64)
    } else if high.is_finite() && high != 0.0 {
        level_at_least(high.abs()) - 20
    } else {
        -20
    }
}

/// The valid values in order. Every value is copied and the count moves
/// on by its validity bit, 64 to a word of the null mask: no branch per
/// value, whatever the pattern of nulls.
fn valid_values<T: Copy>(values: &[T], nulls: &NullBuffer) -> Vec<T> {
    let mut valid = values.to_vec();
    let mut count = 0;
    let bits = nulls.inner();
    let chunks = bits.inner().bit_chunks(bits.offset(), bits.len());
    let mut keep = |block: &[T], word: u64| {
        for (bit, &value) in block.iter().enumerate() {
            valid[count] = value;
            count += ((word >> bit) & 1) as usize;
        }
    };
    for (block, word) in values.chunks_exact(64).zip(chunks.iter()) {
        keep(block, word);
    }
    let rest = chunks.chunk_len() * 64;
    keep(&values[rest..], chunks.remainder_bits());
    valid.truncate(count);
    valid
}

fn add_cell(cells: &mut Cells, key: (i64, i64), sums: CellSums) {
    let cell = cells.entry(key).or_default();
    cell.sum += sums.sum;
    cell.values += sums.values;
    cell.rows += sums.rows;
}

/// The UTC month holding `micros`: its first and past-the-last microsecond
/// and `YYYY-MM`.
fn month_of(micros: i64) -> Option<(i64, i64, String)> {
    let time = DateTime::from_timestamp_micros(micros)?;
    let first = Utc
        .with_ymd_and_hms(time.year(), time.month(), 1, 0, 0, 0)
        .single()?;
    let (year, month) = if time.month() == 12 {
        (time.year() + 1, 1)
    } else {
        (time.year(), time.month() + 1)
    };
    let next = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()?;
    Some((
        first.timestamp_micros(),
        next.timestamp_micros(),
        format!("{:04}-{:02}", time.year(), time.month()),
    ))
}

/// A time in microseconds as `icesat2 query` prints it (RFC 3339, UTC).
pub fn format_time(micros: f64) -> Option<String> {
    DateTime::from_timestamp_micros(micros as i64)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_are_the_values_of_the_valid_slots_in_order() {
        // Scattered nulls, runs of each, all valid, none valid; sliced
        // at offsets that are not a whole byte or word.
        let values: Vec<f32> = (0..300).map(|i| i as f32 * 0.5).collect();
        let patterns: [&dyn Fn(usize) -> bool; 4] =
            [&|i| i % 3 != 1, &|i| (i / 70) % 2 == 0, &|_| true, &|_| {
                false
            }];
        for valid in patterns {
            let mask: Vec<bool> = (0..values.len()).map(valid).collect();
            let array = arrow::array::Float32Array::new(
                values.clone().into(),
                Some(NullBuffer::from(mask)),
            );
            for (offset, len) in [(0, 300), (5, 64), (13, 200), (64, 129), (299, 1), (7, 0)] {
                let slice = array.slice(offset, len);
                let expected: Vec<f32> = slice.iter().flatten().collect();
                let got = valid_values(slice.values(), slice.nulls().unwrap());
                assert_eq!(got, expected, "offset {offset}, {len} values");
            }
        }
    }

    #[test]
    fn floor_without_libm_equals_floor() {
        for x in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.999,
            -2.999,
            1e18,
            -1e18,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            4503599627370495.5,
            -4503599627370495.5,
        ] {
            assert_eq!(floor_i64(x), x.floor() as i64, "{x}");
        }
    }

    /// Numbers in [0, 1) from `seed`, the same in every run (a linear
    /// congruential generator).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Bins made one value at a time: every value's key from `floor_i64`,
    /// and `place`.
    fn add_by_keys(bins: &mut Bins, values: &[f64]) {
        bins.count += values.len() as u64;
        for &value in values {
            bins.sum += value;
            if !value.is_finite() {
                if value > 0.0 {
                    bins.above += 1;
                } else {
                    bins.below += 1;
                }
                continue;
            }
            bins.place(floor_i64(value * scale(bins.level.unwrap_or(0))), 1);
        }
    }

    fn state(bins: &Bins) -> (u64, u64, Option<i32>, i64, Vec<u64>, u64, u64) {
        let Bins {
            count,
            sum,
            level,
            first,
            bins,
            below,
            above,
        } = bins.clone();
        (count, sum.to_bits(), level, first, bins, below, above)
    }

    #[test]
    fn bins_added_in_runs_are_the_bins_placed_one_by_one() {
        // Values a bit below integers; both signs; tiny, huge (whose keys
        // saturate, and whose bins halve) and non-finite values; levels
        // coarse and fine; first bins near and far from zero.
        let mut next = uniform(5);
        let below_one = 1.0 - f64::EPSILON / 2.0;
        let mut sequences: Vec<Vec<f64>> = vec![
            vec![
                -3000.5,
                below_one,
                2.0 - f64::EPSILON,
                -1e-17,
                1e-300,
                -1e-300,
                0.0,
                -0.0,
            ],
            vec![
                -3000.5,
                below_one,
                1.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ],
            vec![
                2e15 + 0.5,
                2e15 + 4000.0 - 2e-3,
                2e15,
                2e15 - 1.0,
                2e15 + 1.0,
            ],
            vec![-2e15, -2e15 + 0.25, -2e15 - 0.25, -2e15 + 4095.75],
            vec![1e300, -1e300, 1e300, 9.3e18, -9.3e18, 1e19],
        ];
        sequences.push(
            (0..4000)
                .map(|i| {
                    let k = (next() * 6000.0) as i64 - 3000;
                    k as f64 - next() * f64::EPSILON * 4.0 * (i % 3) as f64
                })
                .collect(),
        );
        sequences.push((0..4000).map(|_| (next() - 0.5) * 80.0).collect());
        for level in [-60, -3, 0, 4, 40] {
            for values in &sequences {
                let (mut in_runs, mut one_by_one) = (
                    Bins {
                        level: Some(level),
                        ..Bins::default()
                    },
                    Bins {
                        level: Some(level),
                        ..Bins::default()
                    },
                );
                // In two batches: the second starts with bins held.
                let (head, tail) = values.split_at(values.len() / 2);
                for batch in [head, tail] {
                    in_runs.add_values(batch, None);
                    add_by_keys(&mut one_by_one, batch);
                }
                assert_eq!(
                    state(&in_runs),
                    state(&one_by_one),
                    "level {level}, {:?}",
                    &values[..4]
                );
            }
        }
    }

    /// Counts of each value's bin at `level` over bins `floor(low/2^level)`
    /// to `floor(high/2^level)`, non-finite values at the ends, computed
    /// directly.
    fn direct(values: &[Option<f64>], level: i32, low: f64, high: f64) -> Vec<u64> {
        let width = 2f64.powi(level);
        let (first, last) = ((low / width).floor() as i64, (high / width).floor() as i64);
        let mut bins = vec![0; (last - first + 1) as usize];
        for &value in values.iter().flatten() {
            let bin = if value.is_finite() {
                ((value / width).floor() as i64 - first).clamp(0, last - first)
            } else if value > 0.0 {
                last - first
            } else {
                0
            };
            bins[bin as usize] += 1;
        }
        bins
    }

    #[test]
    fn histogram_bins_are_powers_of_two_floored_and_skip_nulls() {
        let values = [
            Some(-2.0),
            Some(-1.5000001),
            Some(-1.5),
            Some(-0.5),
            Some(0.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
            Some(-0.0),
        ];
        for column in [
            Arc::new(arrow::array::Float64Array::from(values.to_vec())) as ArrayRef,
            Arc::new(arrow::array::Float32Array::from(
                values.map(|value| value.map(|value| value as f32)).to_vec(),
            )),
        ] {
            let mut bins = Bins {
                level: Some(-1),
                ..Bins::default()
            };
            bins.add(&column);
            assert_eq!(bins.count, 9, "{}", column.data_type());
            // Bins of 0.5 from -2: [-2, -1.5), [-1.5, -1), [-1, -0.5), [-0.5, 0), [0, 0.5).
            assert_eq!(
                bins.dense(-2.0, 0.0),
                vec![4, 1, 0, 1, 3],
                "{}",
                column.data_type()
            );
            assert_eq!(bins.dense(-2.0, 0.0), direct(&values, -1, -2.0, 0.0));
        }
        assert_eq!(level_at_least(0.5), -1);
        assert_eq!(level_at_least(0.75), 0);
        assert_eq!(level_at_least(3.0), 2);

        // Without nulls (the plain loop), integers in place, and the sum
        // added to what earlier batches left, in row order.
        let column: ArrayRef = Arc::new(arrow::array::Int16Array::from(vec![-3, -2, -1, 0, 1]));
        let mut bins = Bins {
            count: 1,
            sum: 0.25,
            level: Some(1),
            ..Bins::default()
        };
        bins.add(&column);
        assert_eq!(bins.count, 6);
        assert_eq!(bins.sum, 0.25 - 3.0 - 2.0 - 1.0 + 0.0 + 1.0);
        assert_eq!(bins.dense(-3.0, 1.0), vec![1, 2, 2]);
    }

    #[test]
    fn counts_kept_fine_and_merged_equal_counts_made_at_the_final_level() {
        // Values in batches whose first levels differ, some far outside
        // the first batch's range (the bins halve past MAX_BINS), merged
        // in two halves: the same counts as binning every value at the
        // level the whole range asks for.
        let mut next = uniform(17);
        let batches: Vec<Vec<Option<f64>>> = (0..12)
            .map(|batch| {
                let spread = 10f64.powi(batch % 4 - 1);
                (0..500)
                    .map(|row| {
                        (row % 37 != 0)
                            .then(|| 40.0 * next() * spread - 3.0 * spread + batch as f64)
                    })
                    .collect()
            })
            .collect();
        let all: Vec<Option<f64>> = batches.iter().flatten().copied().collect();
        let (low, high) = all
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let halves: Vec<Bins> = batches
            .chunks(6)
            .map(|half| {
                let mut bins = Bins::default();
                for batch in half {
                    let column: ArrayRef =
                        Arc::new(arrow::array::Float64Array::from(batch.clone()));
                    bins.add(&column);
                }
                bins
            })
            .collect();
        let mut merged = Bins::default();
        for half in halves {
            merged.merge(half);
        }
        let level = level_at_least((high - low) / 29.0).max(merged.level.unwrap());
        merged.coarsen(level);
        assert_eq!(merged.level, Some(level));
        let expected = direct(&all, level, low, high);
        assert!(
            expected.len() <= 30 && expected.len() > 10,
            "{}",
            expected.len()
        );
        assert_eq!(merged.dense(low, high), expected);
        assert_eq!(merged.count, all.iter().flatten().count() as u64);

        // Map cells likewise: counted at fine levels, halved past MAX_BINS
        // worth of cells, then coarsened.
        let longitude: Vec<f64> = (0..5000).map(|_| 147.0 + 3.0 * next()).collect();
        let latitude: Vec<f64> = (0..5000).map(|_| -44.0 + 3.0 * next()).collect();
        let mut fine = Cells::default();
        tally_cells(
            &mut fine,
            (-12, -13),
            (
                &Float64Array::from(longitude.clone()),
                &Float64Array::from(latitude.clone()),
            ),
            None,
        );
        let mut tally = Tally {
            cells: fine,
            cell_levels: (-12, -13),
            ..Tally::default()
        };
        tally.coarsen((-5, -6), &HashMap::new());
        let mut direct_cells = Cells::default();
        tally_cells(
            &mut direct_cells,
            (-5, -6),
            (
                &Float64Array::from(longitude),
                &Float64Array::from(latitude),
            ),
            None,
        );
        let sorted = |cells: &Cells| {
            let mut rows: Vec<((i64, i64), u64)> =
                cells.iter().map(|(key, sums)| (*key, sums.rows)).collect();
            rows.sort();
            rows
        };
        assert_eq!(sorted(&tally.cells), sorted(&direct_cells));
        assert!(direct_cells.len() > 100);
    }

    #[test]
    fn months_hold_their_first_microsecond_and_not_the_next_months() {
        let march = Utc.with_ymd_and_hms(2019, 3, 1, 0, 0, 0).unwrap();
        let (first, next, key) = month_of(march.timestamp_micros()).unwrap();
        assert_eq!(key, "2019-03");
        assert_eq!(first, march.timestamp_micros());
        let april = Utc.with_ymd_and_hms(2019, 4, 1, 0, 0, 0).unwrap();
        assert_eq!(next, april.timestamp_micros());
        assert_eq!(month_of(next - 1).unwrap().2, "2019-03");
        // December rolls into the next year; before 1970 too.
        assert_eq!(month_of(-1).unwrap().2, "1969-12");
        assert_eq!(month_of(-1).unwrap().1, 0);
    }

    #[test]
    fn times_print_as_query_prints_them() {
        assert_eq!(format_time(0.0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time(1_555_665_219_123_456.0).unwrap(),
            "2019-04-19T09:13:39.123456Z"
        );
    }
}
