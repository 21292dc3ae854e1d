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

use super::quicklook::ReportError;
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

/// How the second pass bins: the map grid and each histogram.
#[derive(Debug, Clone)]
pub struct Binning {
    /// West and south edges of the map and a cell's width and height.
    pub origin: (f64, f64),
    pub cell: (f64, f64),
    /// The column the map cells average.
    pub color: Option<String>,
    /// (column, lowest value, bin width) of each histogram.
    pub histograms: Vec<(String, f64, f64)>,
    pub bins: usize,
}

/// One histogram's sums.
#[derive(Debug, Clone, Default)]
pub struct Bins {
    pub count: u64,
    pub sum: f64,
    pub bins: Vec<u64>,
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
#[derive(Debug, Default)]
pub struct Tally {
    pub rows: u64,
    /// Rows by (beam, beam strength).
    pub beams: BTreeMap<(String, String), u64>,
    pub granules: BTreeMap<String, u64>,
    /// Rows by `YYYY-MM` (rows with a time).
    pub months: BTreeMap<String, u64>,
    /// Rows with both coordinates, by (column, row) of the map grid.
    pub cells: Cells,
    /// In the order of `Binning::histograms`.
    pub histograms: Vec<Bins>,
}

impl Tally {
    fn new(binning: &Binning) -> Tally {
        Tally {
            histograms: vec![
                Bins {
                    bins: vec![0; binning.bins],
                    ..Bins::default()
                };
                binning.histograms.len()
            ],
            ..Tally::default()
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
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
            let cell = self.cells.entry(key).or_default();
            cell.sum += sums.sum;
            cell.values += sums.values;
            cell.rows += sums.rows;
        }
        for (mine, theirs) in self.histograms.iter_mut().zip(other.histograms) {
            mine.count += theirs.count;
            mine.sum += theirs.sum;
            for (bin, count) in mine.bins.iter_mut().zip(theirs.bins) {
                *bin += count;
            }
        }
        self
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
        wanted.extend(binning.histograms.iter().map(|(name, _, _)| name.as_str()));
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
                    tally_batch(&mut tally, &batch, &folders, binning);
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
fn tally_batch(
    tally: &mut Tally,
    batch: &RecordBatch,
    folders: &HashMap<&str, &str>,
    binning: &Binning,
) {
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

    if let Some(micros) = batch.column_by_name("time").and_then(micros) {
        let micros = micros.as_primitive::<Int64Type>();
        // The month holding the previous time: [start, end) and its key.
        let mut month: Option<(i64, i64, String)> = None;
        let mut run = 0u64;
        for value in micros.iter().flatten() {
            if let Some((low, high, _)) = &month
                && (*low..*high).contains(&value)
            {
                run += 1;
                continue;
            }
            if let Some((_, _, key)) = month.take() {
                *tally.months.entry(key).or_default() += run;
            }
            month = month_of(value);
            run = 1;
        }
        if let Some((_, _, key)) = month {
            *tally.months.entry(key).or_default() += run;
        }
    }

    let longitude = batch.column_by_name("longitude").map(as_f64);
    let latitude = batch.column_by_name("latitude").map(as_f64);
    if let (Some(longitude), Some(latitude)) = (longitude, latitude) {
        let color = binning
            .color
            .as_deref()
            .and_then(|name| batch.column_by_name(name))
            .map(as_f64);
        tally_cells(
            &mut tally.cells,
            (longitude.array(), latitude.array()),
            color.as_ref().map(F64s::array),
            binning,
        );
    }

    for ((name, low, width), histogram) in binning.histograms.iter().zip(&mut tally.histograms) {
        if let Some(column) = batch.column_by_name(name) {
            histogram.add(column, *low, *width);
        }
    }
}

/// Adds rows to the map cells they fall in. The loops below run for every
/// row of the dataset at the end of every run: they read the value slices
/// directly and keep their sums in locals.
fn tally_cells(
    cells: &mut Cells,
    (longitude, latitude): (&Float64Array, &Float64Array),
    color: Option<&Float64Array>,
    binning: &Binning,
) {
    let (origin, cell) = (binning.origin, binning.cell);
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
        let key = (
            floor_i64((lon - origin.0) / cell.0),
            floor_i64((lat - origin.1) / cell.1),
        );
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
    /// microseconds) to the histogram whose first bin starts at `low`.
    /// Types every value of which an f64 holds exactly (float32, the
    /// integers up to 32 bits) are read in place, not cast first.
    fn add(&mut self, column: &ArrayRef, low: f64, width: f64) {
        use arrow::datatypes::{
            Float32Type, Int8Type, Int16Type, UInt8Type, UInt16Type, UInt32Type,
        };
        macro_rules! in_place {
            ($type:ty) => {{
                let array = column.as_primitive::<$type>();
                self.add_values(array.values(), array.nulls(), low, width)
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
                self.add_values(cast.array().values(), cast.array().nulls(), low, width)
            }
        }
    }

    /// The loop of `add`: sums in row order, kept in locals; only the
    /// valid indices visited when there are nulls.
    fn add_values<T: Copy + Into<f64>>(
        &mut self,
        values: &[T],
        nulls: Option<&NullBuffer>,
        low: f64,
        width: f64,
    ) {
        let bins = self.bins.as_mut_slice();
        let Some(last) = bins.len().checked_sub(1) else {
            return;
        };
        // floor((value - low) / width), clamped to the bins; NaN goes to
        // the first.
        let bin = |value: f64| {
            let position = (value - low) / width;
            if position >= 0.0 {
                (position as usize).min(last)
            } else {
                0
            }
        };
        // The count comes from the null count, not from a counter bumped
        // for every value.
        let mut sum = self.sum;
        match nulls {
            None => {
                for &value in values {
                    let value: f64 = value.into();
                    sum += value;
                    bins[bin(value)] += 1;
                }
            }
            Some(nulls) => {
                for index in nulls.valid_indices() {
                    let value: f64 = values[index].into();
                    sum += value;
                    bins[bin(value)] += 1;
                }
            }
        }
        self.sum = sum;
        self.count += (values.len() - nulls.map_or(0, NullBuffer::null_count)) as u64;
    }
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

    #[test]
    fn histogram_bins_are_floored_clamped_and_skip_nulls() {
        let (low, width) = (-2.0, 0.5);
        let values = [
            Some(-2.0),
            Some(-1.5000001),
            Some(-1.5),
            Some(-2.5),
            Some(0.0),
            Some(1e300),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
            Some(-0.0),
        ];
        let mut expected = Bins {
            bins: vec![0; 4],
            ..Bins::default()
        };
        for value in values.iter().flatten() {
            expected.count += 1;
            expected.sum += value;
            let bin = ((value - low) / width).floor();
            let bin = if bin.is_nan() {
                0.0
            } else {
                bin.clamp(0.0, 3.0)
            };
            expected.bins[bin as usize] += 1;
        }
        for column in [
            Arc::new(arrow::array::Float64Array::from(values.to_vec())) as ArrayRef,
            Arc::new(arrow::array::Float32Array::from(
                values.map(|value| value.map(|value| value as f32)).to_vec(),
            )),
        ] {
            let mut bins = Bins {
                bins: vec![0; 4],
                ..Bins::default()
            };
            bins.add(&column, low, width);
            assert_eq!(bins.count, 10, "{}", column.data_type());
            assert_eq!(bins.bins, expected.bins, "{}", column.data_type());
        }
        assert_eq!(expected.bins, vec![5, 1, 0, 4]);

        // Without nulls (the plain loop), integers in place, and the sum
        // added to what earlier batches left, in row order.
        let column: ArrayRef = Arc::new(arrow::array::Int16Array::from(vec![-3, -2, -1, 0, 1]));
        let mut bins = Bins {
            count: 1,
            sum: 0.25,
            bins: vec![0; 4],
        };
        bins.add(&column, low, width);
        assert_eq!(bins.count, 6);
        assert_eq!(bins.sum, 0.25 - 3.0 - 2.0 - 1.0 + 0.0 + 1.0);
        assert_eq!(bins.bins, vec![2, 0, 1, 2]);
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
