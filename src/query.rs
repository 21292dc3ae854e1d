//! `icesat2 query`: DataFusion SQL over a dataset (local folder or `s3://`
//! prefix) registered as table `segments`, a listing table with typed hive
//! partition columns (partition filters prune files), geodatafusion's
//! spatial functions, a few UDFs for gridded summaries, read-only, and
//! output streamed batch by batch (table output is the only one held whole).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryReservation, TrackConsumersPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::atomic::Staged;
use crate::sink::PartitionKey;

/// The table name queries see.
pub const TABLE: &str = "segments";

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

/// Why a query could not run: one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Output(String),
}

fn input(message: impl Into<String>) -> QueryError {
    QueryError::Input(message.into())
}

/// The memory limit when none is given: half the machine's memory (4 GiB
/// where it cannot be read), leaving the rest to the page cache the
/// Parquet reads go through and to other processes.
pub fn default_memory_mb() -> u64 {
    // SAFETY: sysconf has no preconditions; failure is a negative value.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    match (u64::try_from(pages), u64::try_from(page_size)) {
        (Ok(pages), Ok(size)) if pages > 0 && size > 0 => (pages.saturating_mul(size) >> 21).max(1),
        _ => 4096,
    }
}

/// Runs `sql` over `dataset`; writes results to `out` (or stdout). Returns
/// the row count. What the query holds (hash tables, sort buffers, the
/// table output's rows) is limited to `memory_mb` MiB: operators that can
/// spill to disk do so at their share of it, and a query that still needs
/// more fails with that said.
pub fn run(
    dataset: &str,
    sql: &str,
    format: Format,
    out: Option<&Path>,
    memory_mb: u64,
) -> Result<u64, QueryError> {
    if format == Format::Parquet && out.is_none() {
        return Err(input("--format parquet needs --out FILE"));
    }
    if memory_mb == 0 {
        return Err(input("--memory-mb must be at least 1"));
    }
    crate::store::runtime().block_on(async {
        let ctx = context_with_memory(dataset, memory_mb).await?;
        let explain = |err| explain(&ctx, err, memory_mb);
        let frame = ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(explain)?;
        let mut stream = frame.execute_stream().await.map_err(explain)?;
        let schema = stream.schema();
        let reservation =
            MemoryConsumer::new("table output").register(&ctx.runtime_env().memory_pool);
        let mut sink = Sink::open(format, out, &schema, reservation)?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(explain)?;
            rows += batch.num_rows() as u64;
            sink.write(&batch).map_err(|err| match err {
                SinkError::Query(err) => explain(err),
                SinkError::Output(err) => err,
            })?;
        }
        sink.finish()?;
        Ok(rows)
    })
}

fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A session with `segments` registered over `dataset`, spatial functions
/// and our UDFs, and the memory limit of `default_memory_mb`.
pub async fn context(dataset: &str) -> Result<SessionContext, QueryError> {
    context_with_memory(dataset, default_memory_mb()).await
}

/// `context` with what the query may hold limited to `memory_mb` MiB, in
/// DataFusion's fair spill pool (spilling operators share what the others
/// leave; the error of a query that needs more names the largest
/// consumers).
pub async fn context_with_memory(
    dataset: &str,
    memory_mb: u64,
) -> Result<SessionContext, QueryError> {
    let bytes = usize::try_from(memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(bytes),
        std::num::NonZeroUsize::new(3).expect("not zero"),
    );
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
        .map_err(|err| input(one_line(&err)))?;
    let ctx = SessionContext::new_with_config_rt(
        SessionConfig::new().with_information_schema(true),
        runtime,
    );
    geodatafusion::register(&ctx);
    for udf in udfs() {
        ctx.register_udf(udf);
    }
    let (url, partitions) = if dataset.starts_with("s3://") {
        let bucket = crate::dataset::location::S3Url::parse(dataset)
            .ok_or_else(|| input(format!("{dataset}: no bucket")))?
            .bucket;
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|err| input(format!("{dataset}: {err}")))?;
        let base = url::Url::parse(&format!("s3://{bucket}"))
            .map_err(|err| input(format!("{dataset}: {err}")))?;
        ctx.register_object_store(&base, Arc::new(store));
        let partitions = partition_columns_remote(&ctx, dataset).await?;
        (format!("{}/", dataset.trim_end_matches('/')), partitions)
    } else {
        let path = PathBuf::from(dataset);
        if !path.is_dir() {
            return Err(input(format!("{dataset}: not a dataset folder")));
        }
        let absolute =
            std::fs::canonicalize(&path).map_err(|err| input(format!("{dataset}: {err}")))?;
        let partitions = partition_columns_local(&absolute);
        (format!("{}/", absolute.display()), partitions)
    };
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partitions);
    ctx.register_listing_table(TABLE, &url, options, None, None)
        .await
        .map_err(|err| input(format!("{dataset}: {}", one_line(&err))))?;
    Ok(ctx)
}

/// The hive partition columns under `root`, from the first data file's folders.
fn partition_columns_local(root: &Path) -> Vec<(String, DataType)> {
    let mut folder = root.to_path_buf();
    let mut keys = Vec::new();
    loop {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            break;
        };
        let mut next = None;
        let mut names: Vec<_> = entries.flatten().collect();
        names.sort_by_key(|entry| entry.file_name());
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir()
                && !crate::sink::is_hidden(&name)
                && let Some((key, _)) = name.split_once('=')
            {
                next = Some((key.to_string(), entry.path()));
                break;
            }
        }
        let Some((key, path)) = next else { break };
        keys.push(key);
        folder = path;
    }
    typed(keys)
}

async fn partition_columns_remote(
    ctx: &SessionContext,
    dataset: &str,
) -> Result<Vec<(String, DataType)>, QueryError> {
    let url = datafusion::datasource::listing::ListingTableUrl::parse(dataset)
        .map_err(|err| input(one_line(&err)))?;
    let store = ctx
        .runtime_env()
        .object_store(&url)
        .map_err(|err| input(one_line(&err)))?;
    let mut listing = store.list(Some(url.prefix()));
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|err| input(format!("{dataset}: {err}")))?;
        let relative = meta
            .location
            .as_ref()
            .strip_prefix(url.prefix().as_ref())
            .unwrap_or(meta.location.as_ref());
        if !crate::sink::is_data_file(relative) {
            continue;
        }
        let keys = relative
            .split('/')
            .filter_map(|part| part.split_once('=').map(|(key, _)| key.to_string()))
            .collect();
        return Ok(typed(keys));
    }
    Ok(Vec::new())
}

/// Partition keys with the types of their columns.
fn typed(keys: Vec<String>) -> Vec<(String, DataType)> {
    keys.into_iter()
        .map(|key| {
            let data_type = match PartitionKey::parse(&key) {
                Some(PartitionKey::Year | PartitionKey::Month) => DataType::Int32,
                Some(PartitionKey::Rgt) => DataType::UInt16,
                Some(PartitionKey::Cycle) => DataType::UInt8,
                _ => DataType::Utf8,
            };
            (key, data_type)
        })
        .collect()
}

/// DataFusion's error as one line, with what exists when a name is unknown,
/// a plain word when a write is refused, and the limit when memory ran out.
fn explain(ctx: &SessionContext, err: DataFusionError, memory_mb: u64) -> QueryError {
    let text = one_line(&err);
    if text.contains("Resources exhausted") {
        // "Resources exhausted: Additional allocation failed for X with top
        // memory consumers (across reservations) as: ... Error: Failed to
        // allocate ...": the consumers and the failed allocation.
        let detail = text
            .split_once("Resources exhausted: ")
            .map_or(text.as_str(), |(_, rest)| rest);
        return input(format!(
            "the query needs more memory than its limit of {memory_mb} MiB (--memory-mb): {detail}"
        ));
    }
    if text.contains("DDL not supported")
        || text.contains("DML not supported")
        || text.contains("Statement not supported")
    {
        return input(format!(
            "icesat2 query is read-only: {} is refused (no CREATE, DROP, INSERT, UPDATE, DELETE or COPY)",
            text.rsplit(": ").next().unwrap_or("this statement")
        ));
    }
    if text.contains("table '") && text.contains("not found") || text.contains("table not found") {
        let tables = ctx
            .catalog("datafusion")
            .and_then(|catalog| catalog.schema("public"))
            .map(|schema| schema.table_names().join(", "))
            .unwrap_or_else(|| TABLE.to_string());
        return input(format!("{text}; tables: {tables}"));
    }
    input(text)
}

fn one_line(err: &dyn std::fmt::Display) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where batches go.
struct Sink {
    kind: SinkKind,
    /// The file being written under a hidden name, renamed into place by `finish`.
    staged: Option<Staged>,
}

enum SinkKind {
    /// Printed whole at the end: its rows count against the memory limit.
    Table {
        batches: Vec<RecordBatch>,
        reservation: MemoryReservation,
        out: Box<dyn Write + Send>,
    },
    Csv(arrow::csv::Writer<Box<dyn Write + Send>>),
    Json(arrow::json::ArrayWriter<Box<dyn Write + Send>>),
    Parquet(parquet::arrow::ArrowWriter<Box<dyn Write + Send>>),
}

/// Why a batch could not be written.
enum SinkError {
    /// The memory limit refused the table output's rows.
    Query(DataFusionError),
    Output(QueryError),
}

impl From<QueryError> for SinkError {
    fn from(err: QueryError) -> SinkError {
        SinkError::Output(err)
    }
}

impl Sink {
    fn open(
        format: Format,
        out: Option<&Path>,
        schema: &SchemaRef,
        reservation: MemoryReservation,
    ) -> Result<Sink, QueryError> {
        let output_error = |err: &dyn std::fmt::Display| {
            QueryError::Output(format!(
                "{}: {err}",
                out.map(|p| p.display().to_string())
                    .unwrap_or("stdout".into())
            ))
        };
        let (staged, writer): (Option<Staged>, Box<dyn Write + Send>) = match out {
            Some(path) => {
                let (staged, file) = Staged::create(path)
                    .map_err(|err| QueryError::Output(format!("{}: {err}", path.display())))?;
                (Some(staged), Box::new(std::io::BufWriter::new(file)))
            }
            None => (None, Box::new(std::io::BufWriter::new(std::io::stdout()))),
        };
        let kind = match format {
            Format::Table => SinkKind::Table {
                batches: Vec::new(),
                reservation,
                out: writer,
            },
            Format::Csv => SinkKind::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(writer),
            ),
            Format::Json => SinkKind::Json(arrow::json::ArrayWriter::new(writer)),
            Format::Parquet => {
                let properties = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(
                        parquet::basic::ZstdLevel::default(),
                    ))
                    .build();
                SinkKind::Parquet(
                    parquet::arrow::ArrowWriter::try_new(writer, schema.clone(), Some(properties))
                        .map_err(|err| output_error(&err))?,
                )
            }
        };
        Ok(Sink { kind, staged })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let output_error = |err: &dyn std::fmt::Display| QueryError::Output(err.to_string());
        match &mut self.kind {
            SinkKind::Table {
                batches,
                reservation,
                ..
            } => {
                reservation
                    .try_grow(batch.get_array_memory_size())
                    .map_err(SinkError::Query)?;
                batches.push(batch.clone());
            }
            SinkKind::Csv(writer) => writer
                .write(&as_text(batch)?)
                .map_err(|err| output_error(&err))?,
            SinkKind::Json(writer) => writer
                .write(&for_json(batch)?)
                .map_err(|err| output_error(&err))?,
            SinkKind::Parquet(writer) => writer.write(batch).map_err(|err| output_error(&err))?,
        }
        Ok(())
    }

    fn finish(self) -> Result<(), QueryError> {
        let output_error = |err: &dyn std::fmt::Display| QueryError::Output(err.to_string());
        let mut out: Box<dyn Write + Send> = match self.kind {
            SinkKind::Table {
                batches, mut out, ..
            } => {
                let text: Vec<RecordBatch> =
                    batches.iter().map(as_text).collect::<Result<_, _>>()?;
                let table = arrow::util::pretty::pretty_format_batches(&text)
                    .map_err(|err| output_error(&err))?;
                writeln!(out, "{table}").map_err(|err| output_error(&err))?;
                out
            }
            SinkKind::Csv(writer) => writer.into_inner(),
            SinkKind::Json(mut writer) => {
                writer.finish().map_err(|err| output_error(&err))?;
                let mut inner = writer.into_inner();
                writeln!(inner).map_err(|err| output_error(&err))?;
                inner
            }
            SinkKind::Parquet(writer) => writer.into_inner().map_err(|err| output_error(&err))?,
        };
        out.flush().map_err(|err| output_error(&err))?;
        drop(out);
        match self.staged {
            Some(staged) => staged.commit(false).map_err(|err| output_error(&err)),
            None => Ok(()),
        }
    }
}

/// Every column as text (lists as `[a, b]`, WKB points as WKT): CSV and
/// the table take only flat values.
fn as_text(batch: &RecordBatch) -> Result<RecordBatch, QueryError> {
    let options = FormatOptions::default().with_null("");
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(
            field.data_type(),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        ) {
            columns.push(Arc::new(wkt_points(column)));
        } else if field.data_type().is_nested() {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
                .map_err(|err| QueryError::Output(err.to_string()))?;
            let text: StringArray = (0..column.len())
                .map(|row| {
                    column
                        .is_valid(row)
                        .then(|| formatter.value(row).to_string())
                })
                .collect();
            columns.push(Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        fields.push(Field::new(field.name(), DataType::Utf8, true));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|err| QueryError::Output(err.to_string()))
}

/// JSON takes nested values as they are; binary (geometry) becomes WKT.
fn for_json(batch: &RecordBatch) -> Result<RecordBatch, QueryError> {
    if !batch.schema().fields().iter().any(|f| {
        matches!(
            f.data_type(),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    }) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(
            field.data_type(),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        ) {
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(wkt_points(column)));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|err| QueryError::Output(err.to_string()))
}

/// WKB points as `POINT (x y)`; other binary as hex.
fn wkt_points(column: &ArrayRef) -> StringArray {
    let cast = arrow::compute::cast(column, &DataType::Binary).ok();
    let binary = cast.as_ref().map(|array| array.as_binary::<i32>());
    (0..column.len())
        .map(|row| {
            let bytes = binary.filter(|b| b.is_valid(row)).map(|b| b.value(row))?;
            Some(match bytes {
                [1, 1, 0, 0, 0, rest @ ..] if rest.len() == 16 => {
                    let x = f64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
                    let y = f64::from_le_bytes(rest[8..].try_into().unwrap_or_default());
                    format!("POINT ({x} {y})")
                }
                other => other.iter().map(|b| format!("{b:02x}")).collect(),
            })
        })
        .collect()
}

/// Cells per row of the global grid of `size` degrees.
fn grid_columns(size: f64) -> i64 {
    (360.0 / size).ceil() as i64
}

/// The smallest grid size in degrees: the cell ids of a global grid of it
/// (rows times columns) still fit in an int64.
pub const MIN_GRID_SIZE: f64 = 1e-7;

/// Whether the grid functions take `size`: finite and at least
/// `MIN_GRID_SIZE` (0, negative, NaN and infinite sizes have no grid).
pub fn valid_grid_size(size: f64) -> bool {
    size.is_finite() && size >= MIN_GRID_SIZE
}

/// The id of the grid cell holding (lon, lat) in a global grid of `size`
/// degrees: `row * columns + column`, rows from 90 S, columns from 180 W.
/// `None` for a size the grid functions refuse, a coordinate that is not
/// finite, or one so far outside the globe that its id does not fit.
pub fn grid_cell(lon: f64, lat: f64, size: f64) -> Option<i64> {
    if !valid_grid_size(size) || !lon.is_finite() || !lat.is_finite() {
        return None;
    }
    let column = ((lon + 180.0) / size).floor() as i64;
    let row = ((lat + 90.0) / size).floor() as i64;
    row.checked_mul(grid_columns(size))?.checked_add(column)
}

/// The centre (lon, lat) of grid cell `cell` of `size` degrees.
pub fn grid_center(cell: i64, size: f64) -> Option<(f64, f64)> {
    if !valid_grid_size(size) || cell < 0 {
        return None;
    }
    let columns = grid_columns(size);
    let (row, column) = (cell / columns, cell % columns);
    Some((
        -180.0 + (column as f64 + 0.5) * size,
        -90.0 + (row as f64 + 0.5) * size,
    ))
}

/// The relative height at `percent` (10, 15, ..., 95) from a
/// `canopy_h_metrics` list.
pub fn rh_index(percent: f64) -> Option<usize> {
    let index = (percent - 10.0) / 5.0;
    (index >= 0.0 && index.fract() == 0.0 && index <= 17.0).then_some(index as usize)
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Udf {
    GridCell,
    GridLon,
    GridLat,
    Rh,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Function {
    udf: Udf,
    signature: Signature,
}

fn udfs() -> Vec<ScalarUDF> {
    let float3 = Signature::uniform(3, vec![DataType::Float64], Volatility::Immutable);
    let cell = Signature::exact(
        vec![DataType::Int64, DataType::Float64],
        Volatility::Immutable,
    );
    let rh = Signature::new(TypeSignature::Any(2), Volatility::Immutable);
    vec![
        ScalarUDF::new_from_impl(Function {
            udf: Udf::GridCell,
            signature: float3,
        }),
        ScalarUDF::new_from_impl(Function {
            udf: Udf::GridLon,
            signature: cell.clone(),
        }),
        ScalarUDF::new_from_impl(Function {
            udf: Udf::GridLat,
            signature: cell,
        }),
        ScalarUDF::new_from_impl(Function {
            udf: Udf::Rh,
            signature: rh,
        }),
    ]
}

impl ScalarUDFImpl for Function {
    fn name(&self) -> &str {
        match self.udf {
            Udf::GridCell => "grid_cell",
            Udf::GridLon => "grid_lon",
            Udf::GridLat => "grid_lat",
            Udf::Rh => "rh",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(match self.udf {
            Udf::GridCell => DataType::Int64,
            Udf::GridLon | Udf::GridLat | Udf::Rh => DataType::Float64,
        })
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if self.udf != Udf::Rh {
            // The size is the last argument of the grid functions.
            let sizes = arrays[arrays.len() - 1].as_primitive::<Float64Type>();
            if let Some(size) = sizes.iter().flatten().find(|&size| !valid_grid_size(size)) {
                return Err(DataFusionError::Execution(format!(
                    "{}: size_deg must be a finite number of degrees, at least {MIN_GRID_SIZE:?}; got {size:?}",
                    self.name()
                )));
            }
        }
        let result: ArrayRef = match self.udf {
            Udf::GridCell => {
                let lon = arrays[0].as_primitive::<Float64Type>();
                let lat = arrays[1].as_primitive::<Float64Type>();
                let size = arrays[2].as_primitive::<Float64Type>();
                Arc::new(
                    (0..lon.len())
                        .map(|i| {
                            (lon.is_valid(i) && lat.is_valid(i) && size.is_valid(i))
                                .then(|| grid_cell(lon.value(i), lat.value(i), size.value(i)))
                                .flatten()
                        })
                        .collect::<Int64Array>(),
                )
            }
            Udf::GridLon | Udf::GridLat => {
                let cell = arrays[0].as_primitive::<arrow::datatypes::Int64Type>();
                let size = arrays[1].as_primitive::<Float64Type>();
                let longitude = self.udf == Udf::GridLon;
                Arc::new(
                    (0..cell.len())
                        .map(|i| {
                            (cell.is_valid(i) && size.is_valid(i))
                                .then(|| grid_center(cell.value(i), size.value(i)))
                                .flatten()
                                .map(|(lon, lat)| if longitude { lon } else { lat })
                        })
                        .collect::<Float64Array>(),
                )
            }
            Udf::Rh => {
                let percent = arrow::compute::cast(&arrays[1], &DataType::Float64)?;
                let percent = percent.as_primitive::<Float64Type>();
                let lists = arrays[0].as_fixed_size_list_opt().ok_or_else(|| {
                    DataFusionError::Plan(
                        "rh(metrics, percent) takes canopy_h_metrics (a fixed-size list of 18)"
                            .into(),
                    )
                })?;
                let values = arrow::compute::cast(lists.values(), &DataType::Float64)?;
                let values = values.as_primitive::<Float64Type>();
                let width = lists.value_length() as usize;
                Arc::new(
                    (0..lists.len())
                        .map(|i| {
                            if !lists.is_valid(i) || !percent.is_valid(i) {
                                return None;
                            }
                            let k = rh_index(percent.value(i)).filter(|k| *k < width)?;
                            let position = i * width + k;
                            values.is_valid(position).then(|| values.value(position))
                        })
                        .collect::<Float64Array>(),
                )
            }
        };
        Ok(ColumnarValue::Array(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_cells_and_centres() {
        let cell = grid_cell(147.368, -43.143, 0.1).unwrap();
        let (lon, lat) = grid_center(cell, 0.1).unwrap();
        assert!(
            (lon - 147.35).abs() < 1e-9 && (lat + 43.15).abs() < 1e-9,
            "{lon} {lat}"
        );
        assert_eq!(grid_cell(-180.0, -90.0, 1.0), Some(0));
        for size in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
        ] {
            assert_eq!(grid_cell(0.0, 0.0, size), None, "{size}");
            assert_eq!(grid_center(5, size), None, "{size}");
        }
        // The smallest size: the last cell's id still fits.
        let last = grid_cell(179.999_999_99, 89.999_999_99, MIN_GRID_SIZE).unwrap();
        assert!(last > 0);
        assert!(grid_center(last, MIN_GRID_SIZE).is_some());
        // A point far off the globe has no id rather than an overflow.
        assert_eq!(grid_cell(1e300, 1e300, MIN_GRID_SIZE), None);
    }

    #[test]
    fn rh_positions() {
        assert_eq!(rh_index(10.0), Some(0));
        assert_eq!(rh_index(50.0), Some(8));
        assert_eq!(rh_index(95.0), Some(17));
        assert_eq!(rh_index(98.0), None);
        assert_eq!(rh_index(12.0), None);
    }
}
