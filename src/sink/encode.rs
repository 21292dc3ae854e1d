//! GeoParquet 1.1 encoding: WKB `geometry`, a `bbox` covering column, the
//! file's bbox in the `geo` metadata, zstd; and the writer's settings.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use geoarrow_schema::Dimension;
use geoparquet::metadata::{
    GeoParquetGeometryType, GeoParquetGeometryTypeAndDimension, GeoParquetMetadata,
};
use geoparquet::writer::{
    GeoParquetRecordBatchEncoder, GeoParquetWriterEncoding, GeoParquetWriterOptionsBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::EnabledStatistics;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::SinkError;

/// How the dataset writer sizes, buffers and commits files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriterSettings {
    pub zstd_level: i32,
    pub row_group_rows: usize,
    /// A file is closed once its encoded size reaches this.
    pub file_bytes: u64,
    /// Memory for rows waiting in open files, all partitions together.
    pub buffer_bytes: usize,
    /// Commit after this many granules...
    pub checkpoint_granules: u64,
    /// ...or after this many seconds.
    pub checkpoint_seconds: f64,
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            // Level 1: on the bulk benchmark (689,308 rows) 12% less run
            // time than level 3 for files 2% larger.
            zstd_level: 1,
            row_group_rows: 128 * 1024,
            file_bytes: 256 * 1024 * 1024,
            buffer_bytes: 32 * 1024 * 1024,
            checkpoint_granules: 500,
            checkpoint_seconds: 600.0,
        }
    }
}

/// One GeoParquet 1.1 file being written: batches in the full file schema
/// (with a `geoarrow.wkb` geometry column) are encoded a row group at a
/// time; the `geo` metadata (with the bbox of every row written) goes in at `finish`.
///
/// The `geo` metadata and the file schema (with the `bbox` covering) come
/// from the `geoparquet` crate, but its per-batch encoder is not used: it
/// parses every WKB point four times (geometry types, bounds, re-encoding,
/// covering), 7.6% of a bulk run's instructions, on the writer thread. Our geometry is
/// always the point (longitude, latitude), so the covering is those two
/// columns shared, not copied (xmin = xmax = longitude, ymin = ymax =
/// latitude), and the file's bbox is their range.
///
/// Rows wait as Arrow batches until a row group is full (or is written
/// early to bound memory, or the file ends); then its columns are encoded
/// all at once, in parallel on the rayon pool (parquet's
/// `ArrowColumnWriter`s; `ArrowWriter` encodes them one after another), so
/// the writer thread does not bound a run's speed. Encoding rows as they
/// came kept a column writer, and its zstd context (0.2-1.3 MB), open per
/// column of every open file: 100 MB of the bulk benchmark's 210 MB peak
/// (15 partitions, 25 columns), none of it counted in `buffer_bytes`.
pub struct GeoParquetFile<W: Write + Send> {
    /// The `geo` metadata without geometry types and bbox, filled at `finish`.
    geo: GeoParquetMetadata,
    /// Indices of longitude and latitude in the input batches.
    coordinates: (usize, usize),
    /// [xmin, ymin, xmax, ymax] of the rows written.
    bounds: Option<[f64; 4]>,
    /// The schema of the encoded batches (geometry as WKB, bbox covering).
    target_schema: SchemaRef,
    writer: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    /// Rows of the next row group, in the target schema.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// Memory held by `pending` (Arrow buffers, a slice counted by its
    /// share of its batch).
    pending_bytes: usize,
    /// Memory of the rows already encoded, to estimate the waiting rows'
    /// encoded size by the file's ratio so far.
    flushed_bytes: usize,
    row_group_rows: usize,
}

impl<W: Write + Send> GeoParquetFile<W> {
    pub fn new(schema: &SchemaRef, settings: &WriterSettings, sink: W) -> Result<Self, SinkError> {
        let options = GeoParquetWriterOptionsBuilder::default()
            .set_encoding(GeoParquetWriterEncoding::WKB)
            .set_generate_covering(true)
            .build();
        let encoder = GeoParquetRecordBatchEncoder::try_new(schema, &options)
            .map_err(|err| encode_error(&err))?;
        let target_schema = encoder.target_schema();
        let geo = encoder.into_geoparquet_metadata();
        let index = |name: &str| {
            schema
                .index_of(name)
                .map_err(|_| SinkError::Encode(format!("the rows have no {name} column")))
        };
        let coordinates = (index("longitude")?, index("latitude")?);
        let level = ZstdLevel::try_new(settings.zstd_level).map_err(|err| encode_error(&err))?;
        // Dictionaries only for the text columns (granule, beam, strength:
        // a few values each). Coordinates, times, heights and WKB points are
        // nearly all distinct: a dictionary there costs a hash per value
        // until the page falls back to plain, and saves nothing after zstd.
        let builder = schema
            .fields()
            .iter()
            .filter(|field| field.data_type() == &DataType::Utf8)
            .fold(
                WriterProperties::builder().set_dictionary_enabled(false),
                |builder, field| {
                    builder.set_column_dictionary_enabled(
                        ColumnPath::from(field.name().as_str()),
                        true,
                    )
                },
            );
        let properties = encodings(&target_schema)
            .into_iter()
            .fold(builder, |builder, (path, encoding)| {
                builder.set_column_encoding(path, encoding)
            })
            // Min and max of WKB bytes order nothing; the bbox columns
            // carry the statistics readers prune row groups with.
            .set_column_statistics_enabled(
                ColumnPath::from(crate::granule::columns::GEOMETRY_COLUMN),
                EnabledStatistics::None,
            )
            .set_compression(Compression::ZSTD(level))
            .set_created_by(format!("icesat2 {}", env!("CARGO_PKG_VERSION")))
            .build();
        // ArrowWriter sets up the file (the Arrow schema in its metadata);
        // rows then go through the lower-level writers.
        let (writer, factory) = ArrowWriter::try_new(sink, target_schema.clone(), Some(properties))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|err| encode_error(&err))?;
        Ok(GeoParquetFile {
            geo,
            coordinates,
            bounds: None,
            target_schema,
            writer,
            factory,
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            flushed_bytes: 0,
            row_group_rows: settings.row_group_rows.max(1),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let rows = batch.num_rows();
        let bytes = batch.get_array_memory_size();
        let encoded = self.encode(batch)?;
        let mut offset = 0;
        while offset < rows {
            let n = (self.row_group_rows - self.pending_rows).min(rows - offset);
            let mut part = encoded.slice(offset, n);
            if offset > 0 {
                // The rest of a batch whose head went into a row group
                // already written: copied, so the whole batch is not kept
                // alive (and uncounted) by a slice.
                part = arrow::compute::concat_batches(&self.target_schema, [&part])
                    .map_err(|err| encode_error(&err))?;
            }
            self.pending.push(part);
            self.pending_rows += n;
            self.pending_bytes += bytes * n / rows;
            offset += n;
            if self.pending_rows >= self.row_group_rows {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    /// The rows in the target schema: the input columns, then the `bbox`
    /// covering built from longitude and latitude (no copy).
    fn encode(&mut self, batch: &RecordBatch) -> Result<RecordBatch, SinkError> {
        let (x, y) = self.coordinates;
        let longitude = batch.column(x);
        let latitude = batch.column(y);
        let (Some(lon), Some(lat)) = (
            longitude.as_primitive_opt::<Float64Type>(),
            latitude.as_primitive_opt::<Float64Type>(),
        ) else {
            return Err(SinkError::Encode(
                "longitude and latitude must be float64".into(),
            ));
        };
        for (values, low, high) in [(lon, 0, 2), (lat, 1, 3)] {
            // NaN (never a kept row's) is skipped, as the crate's bounds do.
            for value in values.iter().flatten().filter(|value| !value.is_nan()) {
                let bounds = self.bounds.get_or_insert([
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                ]);
                bounds[low] = bounds[low].min(value);
                bounds[high] = bounds[high].max(value);
            }
        }
        let mut columns = batch.columns().to_vec();
        for field in &self.target_schema.fields()[columns.len()..] {
            let DataType::Struct(fields) = field.data_type() else {
                return Err(SinkError::Encode(format!(
                    "unexpected column {} in the GeoParquet schema",
                    field.name()
                )));
            };
            let children: Vec<ArrayRef> = vec![
                longitude.clone(),
                latitude.clone(),
                longitude.clone(),
                latitude.clone(),
            ];
            let nulls = batch
                .column_by_name(crate::granule::columns::GEOMETRY_COLUMN)
                .and_then(|geometry| geometry.logical_nulls());
            let covering = StructArray::try_new(fields.clone(), children, nulls)
                .map_err(|err| encode_error(&err))?;
            columns.push(Arc::new(covering));
        }
        RecordBatch::try_new(self.target_schema.clone(), columns).map_err(|err| encode_error(&err))
    }

    /// Memory held by the rows waiting for the next row group.
    pub fn buffered_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes written so far plus the waiting rows' encoded size, estimated
    /// by the file's ratio so far (their memory before any row group).
    pub fn estimated_size(&self) -> u64 {
        let written = self.writer.bytes_written();
        let waiting = if self.flushed_bytes > 0 {
            (self.pending_bytes as u128 * written as u128 / self.flushed_bytes as u128) as usize
        } else {
            self.pending_bytes
        };
        (written + waiting) as u64
    }

    /// Writes the waiting rows as a row group now (also to release their
    /// memory): every column encoded at once on the rayon pool, each with
    /// all the row group's batches.
    pub fn flush_row_group(&mut self) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        self.flushed_bytes += std::mem::take(&mut self.pending_bytes);
        let columns = self
            .factory
            .create_column_writers(self.writer.flushed_row_groups().len())
            .map_err(|err| encode_error(&err))?;
        // The leaves of every batch, by column.
        let mut leaves: Vec<Vec<ArrowLeafColumn>> = columns
            .iter()
            .map(|_| Vec::with_capacity(batches.len()))
            .collect();
        for batch in &batches {
            let mut column = leaves.iter_mut();
            for (field, array) in self.target_schema.fields().iter().zip(batch.columns()) {
                for leaf in compute_leaves(field, array).map_err(|err| encode_error(&err))? {
                    column
                        .next()
                        .ok_or_else(|| {
                            SinkError::Encode("more leaf columns than column writers".into())
                        })?
                        .push(leaf);
                }
            }
        }
        let chunks: Vec<ArrowColumnChunk> = columns
            .into_par_iter()
            .zip(leaves.into_par_iter())
            .map(|(mut column, leaves)| {
                for leaf in &leaves {
                    column.write(leaf)?;
                }
                column.close()
            })
            .collect::<Result<_, _>>()
            .map_err(|err| encode_error(&err))?;
        let mut row_group = self
            .writer
            .next_row_group()
            .map_err(|err| encode_error(&err))?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut row_group)
                .map_err(|err| encode_error(&err))?;
        }
        row_group.close().map_err(|err| encode_error(&err))?;
        Ok(())
    }

    /// Ends the file (footer with the `geo` metadata); returns the sink.
    pub fn finish(mut self) -> Result<W, SinkError> {
        self.flush_row_group()?;
        for column in self.geo.columns.values_mut() {
            column.geometry_types = HashSet::from([GeoParquetGeometryTypeAndDimension::new(
                GeoParquetGeometryType::Point,
                Dimension::XY,
            )]);
            column.bbox = self.bounds.map(Vec::from);
        }
        let geo = serde_json::to_string(&self.geo).map_err(|err| encode_error(&err))?;
        self.writer
            .append_key_value_metadata(KeyValue::new("geo".to_string(), Some(geo)));
        self.writer.into_inner().map_err(|err| encode_error(&err))
    }
}

/// The encodings other than plain, by column. Along a track, neighbouring
/// values share their sign, exponent and leading mantissa bytes: byte
/// stream split (the top-level float columns and the bbox's; float lists
/// stay plain) puts those bytes side
/// by side for zstd, and times and segment numbers grow by nearly the same
/// step, which delta encoding packs into a few bits. Bulk benchmark,
/// pyarrow writing the same rows at zstd level 1, against plain: latitude
/// 1.35 MB -> 0.39 MB, longitude 1.08 MB -> 0.23 MB (each written in 40% of
/// the time), time 0.62 MB -> 0.13 MB, segment_index 0.42 MB -> 0.01 MB;
/// pyarrow reads them back in half the time.
fn encodings(schema: &arrow::datatypes::Schema) -> Vec<(ColumnPath, Encoding)> {
    let float = |data_type: &DataType| matches!(data_type, DataType::Float32 | DataType::Float64);
    let mut encodings = Vec::new();
    for field in schema.fields() {
        let name = field.name().clone();
        match field.data_type() {
            data_type if float(data_type) => {
                encodings.push((ColumnPath::new(vec![name]), Encoding::BYTE_STREAM_SPLIT));
            }
            DataType::Timestamp(..) => {
                encodings.push((ColumnPath::new(vec![name]), Encoding::DELTA_BINARY_PACKED));
            }
            DataType::UInt32 if name == "segment_index" => {
                encodings.push((ColumnPath::new(vec![name]), Encoding::DELTA_BINARY_PACKED));
            }
            DataType::Struct(children) => {
                for child in children.iter().filter(|child| float(child.data_type())) {
                    encodings.push((
                        ColumnPath::new(vec![name.clone(), child.name().clone()]),
                        Encoding::BYTE_STREAM_SPLIT,
                    ));
                }
            }
            _ => {}
        }
    }
    encodings
}

fn encode_error(err: &dyn std::fmt::Display) -> SinkError {
    SinkError::Encode(err.to_string())
}
