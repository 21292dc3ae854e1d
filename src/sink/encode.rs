//! GeoParquet 1.1 encoding: WKB `geometry`, a `bbox` covering column, the
//! file's bbox in the `geo` metadata, zstd; and the writer's settings.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::datatypes::SchemaRef;
use geoparquet::writer::{
    GeoParquetRecordBatchEncoder, GeoParquetWriterEncoding, GeoParquetWriterOptionsBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression, ZstdLevel};
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
/// (with a `geoarrow.wkb` geometry column) are encoded as they come; the
/// `geo` metadata (with the bbox of every row written) goes in at `finish`.
///
/// The columns of a row group are encoded in parallel on the rayon pool
/// (parquet's `ArrowColumnWriter`s; `ArrowWriter` encodes them one after
/// another), so the writer thread does not bound a run's speed.
pub struct GeoParquetFile<W: Write + Send> {
    encoder: GeoParquetRecordBatchEncoder,
    /// The schema of the encoded batches (geometry as WKB, bbox covering).
    target_schema: SchemaRef,
    writer: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    /// The open row group's column writers, one per leaf column.
    columns: Option<Vec<ArrowColumnWriter>>,
    rows_in_group: usize,
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
        let level = ZstdLevel::try_new(settings.zstd_level).map_err(|err| encode_error(&err))?;
        // Dictionaries only for the text columns (granule, beam, strength:
        // a few values each). Coordinates, times, heights and WKB points are
        // nearly all distinct: a dictionary there costs a hash per value
        // until the page falls back to plain, and saves nothing after zstd.
        let properties = schema
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
            )
            .set_compression(Compression::ZSTD(level))
            .set_created_by(format!("icesat2 {}", env!("CARGO_PKG_VERSION")))
            .build();
        let target_schema = encoder.target_schema();
        // ArrowWriter sets up the file (the Arrow schema in its metadata);
        // rows then go through the lower-level writers.
        let (writer, factory) = ArrowWriter::try_new(sink, target_schema.clone(), Some(properties))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|err| encode_error(&err))?;
        Ok(GeoParquetFile {
            encoder,
            target_schema,
            writer,
            factory,
            columns: None,
            rows_in_group: 0,
            row_group_rows: settings.row_group_rows.max(1),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let encoded = self
            .encoder
            .encode_record_batch(batch)
            .map_err(|err| encode_error(&err))?;
        let mut offset = 0;
        while offset < encoded.num_rows() {
            let n = (self.row_group_rows - self.rows_in_group).min(encoded.num_rows() - offset);
            self.write_to_group(&encoded.slice(offset, n))?;
            offset += n;
            if self.rows_in_group >= self.row_group_rows {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    /// Encodes rows into the open row group, every column at once.
    fn write_to_group(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let columns = match &mut self.columns {
            Some(columns) => columns,
            none => none.insert(
                self.factory
                    .create_column_writers(self.writer.flushed_row_groups().len())
                    .map_err(|err| encode_error(&err))?,
            ),
        };
        let mut leaves = Vec::with_capacity(columns.len());
        for (field, array) in self.target_schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, array).map_err(|err| encode_error(&err))?);
        }
        columns
            .par_iter_mut()
            .zip(leaves.into_par_iter())
            .try_for_each(|(column, leaf)| column.write(&leaf))
            .map_err(|err| encode_error(&err))?;
        self.rows_in_group += batch.num_rows();
        Ok(())
    }

    /// Memory held by the row group being built.
    pub fn buffered_bytes(&self) -> usize {
        self.columns
            .iter()
            .flatten()
            .map(ArrowColumnWriter::memory_size)
            .sum()
    }

    /// Bytes written so far plus an estimate of the open row group's.
    pub fn estimated_size(&self) -> u64 {
        let open: usize = self
            .columns
            .iter()
            .flatten()
            .map(ArrowColumnWriter::get_estimated_total_bytes)
            .sum();
        (self.writer.bytes_written() + open) as u64
    }

    /// Writes the open row group now (to release its memory).
    pub fn flush_row_group(&mut self) -> Result<(), SinkError> {
        let Some(columns) = self.columns.take() else {
            return Ok(());
        };
        self.rows_in_group = 0;
        let chunks: Vec<ArrowColumnChunk> = columns
            .into_par_iter()
            .map(ArrowColumnWriter::close)
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
        let metadata = self
            .encoder
            .into_keyvalue()
            .map_err(|err| encode_error(&err))?;
        self.writer.append_key_value_metadata(metadata);
        self.writer.into_inner().map_err(|err| encode_error(&err))
    }
}

fn encode_error(err: &dyn std::fmt::Display) -> SinkError {
    SinkError::Encode(err.to_string())
}
