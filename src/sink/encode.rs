//! GeoParquet 1.1 encoding: WKB `geometry`, a `bbox` covering column, the
//! file's bbox in the `geo` metadata, zstd; and the writer's settings.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use geoparquet::writer::{
    GeoParquetRecordBatchEncoder, GeoParquetWriterEncoding, GeoParquetWriterOptionsBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

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
            zstd_level: 3,
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
pub struct GeoParquetFile<W: Write + Send> {
    encoder: GeoParquetRecordBatchEncoder,
    writer: ArrowWriter<W>,
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
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(settings.row_group_rows.max(1)))
            .set_created_by(format!("icesat2 {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(sink, encoder.target_schema(), Some(properties))
            .map_err(|err| encode_error(&err))?;
        Ok(GeoParquetFile { encoder, writer })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let encoded = self
            .encoder
            .encode_record_batch(batch)
            .map_err(|err| encode_error(&err))?;
        self.writer
            .write(&encoded)
            .map_err(|err| encode_error(&err))
    }

    /// Memory held by the row group being built.
    pub fn buffered_bytes(&self) -> usize {
        self.writer.in_progress_size()
    }

    /// Bytes written so far plus an estimate of the open row group's.
    pub fn estimated_size(&self) -> u64 {
        self.writer.bytes_written() as u64 + self.writer.in_progress_size() as u64
    }

    /// Writes the open row group now (to release its memory).
    pub fn flush_row_group(&mut self) -> Result<(), SinkError> {
        self.writer.flush().map_err(|err| encode_error(&err))
    }

    /// Ends the file (footer with the `geo` metadata); returns the sink.
    pub fn finish(mut self) -> Result<W, SinkError> {
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
