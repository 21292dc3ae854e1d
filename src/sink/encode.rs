//! GeoParquet 1.1 encoding: WKB `geometry`, a `bbox` covering column, the
//! file's bbox in the `geo` metadata, zstd.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use geoparquet::writer::{
    GeoParquetRecordBatchEncoder, GeoParquetWriterEncoding, GeoParquetWriterOptionsBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::SinkError;

/// Parquet settings of the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterSettings {
    pub zstd_level: i32,
    pub row_group_rows: usize,
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            zstd_level: 3,
            row_group_rows: 128 * 1024,
        }
    }
}

/// Encodes `batches` (all of `schema`, which has a `geoarrow.wkb` geometry
/// column) as one GeoParquet file in memory.
pub fn encode_geoparquet(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    settings: &WriterSettings,
) -> Result<Vec<u8>, SinkError> {
    let encode_error = |err: &dyn std::fmt::Display| SinkError::Encode(err.to_string());
    let options = GeoParquetWriterOptionsBuilder::default()
        .set_encoding(GeoParquetWriterEncoding::WKB)
        .set_generate_covering(true)
        .build();
    let mut encoder = GeoParquetRecordBatchEncoder::try_new(schema, &options)
        .map_err(|err| encode_error(&err))?;
    let level = ZstdLevel::try_new(settings.zstd_level).map_err(|err| encode_error(&err))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(settings.row_group_rows.max(1)))
        .set_created_by(format!("icesat2 {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, encoder.target_schema(), Some(properties))
        .map_err(|err| encode_error(&err))?;
    for batch in batches {
        let encoded = encoder
            .encode_record_batch(batch)
            .map_err(|err| encode_error(&err))?;
        writer.write(&encoded).map_err(|err| encode_error(&err))?;
    }
    writer.append_key_value_metadata(encoder.into_keyvalue().map_err(|err| encode_error(&err))?);
    writer.close().map_err(|err| encode_error(&err))?;
    Ok(bytes)
}
