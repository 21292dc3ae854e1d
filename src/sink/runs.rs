//! Text columns whose values come in long runs (granule, beam, beam
//! strength: a few distinct values, each repeated for thousands of rows),
//! encoded straight to a dictionary page and RLE data pages.
//!
//! parquet's own writer hashes every value into its dictionary and compares
//! it with the running minimum and maximum: for these three columns, 9.7% of
//! a bulk run's instructions. Here a value is compared only with the one
//! before it. The chunk has what parquet's writer gives these columns (a
//! dictionary page in PLAIN, version 1 data pages in RLE_DICTIONARY, chunk
//! and page statistics, column and offset index), with two differences: a
//! page holds `data_page_row_count_limit` rows exactly (parquet cuts after
//! a 1,024-row batch), and the column index's boundary order is left
//! unordered. Each run is one RLE run; a column whose values do not come
//! in long runs, or whose dictionary would pass its page size limit, is
//! left to parquet's writer.

use arrow::array::{Array, StringArray};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, Type};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnDescPtr, ColumnDescriptor};
use rustc_hash::FxHashMap;

/// Whether a column is written here: a required, unnested byte array with a
/// dictionary, page statistics, no bloom filter, zstd or no compression,
/// version 1 pages.
pub(super) fn applies(column: &ColumnDescriptor, properties: &WriterProperties) -> bool {
    let path = column.path();
    column.physical_type() == Type::BYTE_ARRAY
        && column.max_def_level() == 0
        && column.max_rep_level() == 0
        && properties.dictionary_enabled(path)
        && properties.statistics_enabled(path) == EnabledStatistics::Page
        && properties.bloom_filter_properties(path).is_none()
        && properties.writer_version() == WriterVersion::PARQUET_1_0
        && matches!(
            properties.compression(path),
            Compression::ZSTD(_) | Compression::UNCOMPRESSED
        )
}

/// One encoded column chunk: its bytes (offsets in `close` count from
/// their start) and what the row group records of it.
pub(super) struct Chunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

/// Encodes `arrays` (the row group's rows, in order) as one column chunk;
/// `None` when a value is null or longer than the statistics may hold
/// untruncated (parquet's writer then encodes the column).
pub(super) fn encode(
    arrays: &[&StringArray],
    column: ColumnDescPtr,
    properties: &WriterProperties,
) -> Result<Option<Chunk>> {
    let limit = [
        properties.statistics_truncate_length(),
        properties.column_index_truncate_length(),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(usize::MAX);
    // The distinct values in order of appearance, and the rows as runs of
    // (value, length).
    let mut dictionary: Vec<&str> = Vec::new();
    let mut keys: FxHashMap<&str, u32> = FxHashMap::default();
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for array in arrays {
        if array.null_count() > 0 {
            return Ok(None);
        }
        let mut previous: Option<&str> = None;
        for value in array.iter().flatten() {
            if previous == Some(value) {
                if let Some(run) = runs.last_mut() {
                    run.1 += 1;
                }
                continue;
            }
            previous = Some(value);
            let key = match keys.get(value) {
                Some(key) => *key,
                None if value.len() > limit => return Ok(None),
                None => {
                    let key = u32::try_from(dictionary.len())
                        .map_err(|_| ParquetError::General("too many distinct values".into()))?;
                    dictionary.push(value);
                    keys.insert(value, key);
                    key
                }
            };
            match runs.last_mut() {
                Some(run) if run.0 == key => run.1 += 1,
                _ => runs.push((key, 1)),
            }
        }
    }
    let rows: usize = runs.iter().map(|run| run.1).sum();
    let dictionary_bytes: usize = dictionary.iter().map(|value| 4 + value.len()).sum();
    if runs.len() * 8 > rows
        || dictionary_bytes > properties.column_dictionary_page_size_limit(column.path())
    {
        return Ok(None);
    }
    let level = match properties.compression(column.path()) {
        Compression::ZSTD(level) => Some(level.compression_level()),
        _ => None,
    };
    let compress = |data: Vec<u8>| -> Result<(Bytes, usize)> {
        let size = data.len();
        let data = match level {
            Some(level) => zstd::bulk::compress(&data, level)
                .map_err(|err| ParquetError::External(Box::new(err)))?,
            None => data,
        };
        Ok((Bytes::from(data), size))
    };

    let mut sink = TrackedWrite::new(Vec::new());
    let mut writer = SerializedPageWriter::new(&mut sink);
    let (mut compressed, mut uncompressed) = (0u64, 0u64);

    let mut plain = Vec::new();
    for value in &dictionary {
        plain.extend_from_slice(&(value.len() as u32).to_le_bytes());
        plain.extend_from_slice(value.as_bytes());
    }
    let (buf, size) = compress(plain)?;
    let spec = writer.write_page(CompressedPage::new(
        Page::DictionaryPage {
            buf,
            num_values: dictionary.len() as u32,
            encoding: properties.dictionary_page_encoding(),
            is_sorted: false,
        },
        size,
    ))?;
    compressed += spec.bytes_written;
    uncompressed += spec.uncompressed_size as u64;

    let bit_width = bits(dictionary.len().saturating_sub(1) as u64);
    let key_bytes = bit_width.div_ceil(8) as usize;
    let header_statistics = properties.write_page_header_statistics(column.path());
    let page_rows = properties.data_page_row_count_limit().max(1);
    let mut column_index = ColumnIndexBuilder::new(Type::BYTE_ARRAY);
    let mut offset_index = OffsetIndexBuilder::new();
    let (mut data_pages, mut first_data_page) = (0, None);
    let (mut chunk_min, mut chunk_max): (Option<&str>, Option<&str>) = (None, None);
    let mut text_bytes = 0i64;
    // The next run, and how many of its rows earlier pages hold.
    let (mut run, mut used) = (0, 0);
    while run < runs.len() {
        let mut page = vec![bit_width];
        let (mut count, mut page_bytes) = (0, 0i64);
        let (mut min, mut max): (Option<&str>, Option<&str>) = (None, None);
        while count < page_rows && run < runs.len() {
            let (key, length) = runs[run];
            let taken = (length - used).min(page_rows - count);
            uleb128(&mut page, (taken as u64) << 1);
            page.extend_from_slice(&key.to_le_bytes()[..key_bytes]);
            let value = dictionary[key as usize];
            min = Some(min.map_or(value, |min| min.min(value)));
            max = Some(max.map_or(value, |max| max.max(value)));
            page_bytes += (value.len() * taken) as i64;
            count += taken;
            used += taken;
            if used == length {
                (run, used) = (run + 1, 0);
            }
        }
        let (min, max) = (min.unwrap_or_default(), max.unwrap_or_default());
        chunk_min = Some(chunk_min.map_or(min, |chunk| chunk.min(min)));
        chunk_max = Some(chunk_max.map_or(max, |chunk| chunk.max(max)));
        text_bytes += page_bytes;
        let (buf, size) = compress(page)?;
        let spec = writer.write_page(CompressedPage::new(
            Page::DataPage {
                buf,
                num_values: count as u32,
                encoding: properties.dictionary_data_page_encoding(),
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: header_statistics.then(|| statistics(min, max)),
            },
            size,
        ))?;
        first_data_page.get_or_insert(spec.offset);
        data_pages += 1;
        compressed += spec.bytes_written;
        uncompressed += spec.uncompressed_size as u64;
        column_index.append(false, min.as_bytes().to_vec(), max.as_bytes().to_vec(), 0);
        offset_index.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
        offset_index.append_row_count(count as i64);
        offset_index.append_unencoded_byte_array_data_bytes(Some(page_bytes));
    }
    drop(writer);

    let encodings = [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
    let mut metadata = ColumnChunkMetaData::builder(column.clone())
        .set_compression(properties.compression(column.path()))
        .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
        .set_page_encoding_stats(vec![
            PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: properties.dictionary_page_encoding(),
                count: 1,
            },
            PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: properties.dictionary_data_page_encoding(),
                count: data_pages,
            },
        ])
        .set_total_compressed_size(compressed as i64)
        .set_total_uncompressed_size(uncompressed as i64)
        .set_num_values(rows as i64)
        .set_data_page_offset(first_data_page.unwrap_or(compressed) as i64)
        .set_dictionary_page_offset(Some(0))
        .set_unencoded_byte_array_data_bytes(Some(text_bytes));
    if let (Some(min), Some(max)) = (chunk_min, chunk_max) {
        metadata = metadata.set_statistics(statistics(min, max));
    }
    let bytes = Bytes::from(sink.into_inner()?);
    Ok(Some(Chunk {
        close: ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: rows as u64,
            metadata: metadata.build()?,
            bloom_filter: None,
            column_index: Some(column_index.build()?),
            offset_index: Some(offset_index.build()),
        },
        bytes,
    }))
}

/// Statistics of text values (no nulls).
fn statistics(min: &str, max: &str) -> Statistics {
    Statistics::ByteArray(
        ValueStatistics::new(
            Some(ByteArray::from(min.as_bytes().to_vec())),
            Some(ByteArray::from(max.as_bytes().to_vec())),
            None,
            Some(0),
            false,
        )
        .with_backwards_compatible_min_max(false),
    )
}

/// Bits to hold `value` (0 for 0), as parquet sizes dictionary keys.
fn bits(value: u64) -> u8 {
    (64 - value.leading_zeros()) as u8
}

/// An unsigned LEB128 varint (the RLE run header).
fn uleb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowSchemaConverter;
    use parquet::arrow::arrow_reader::{
        ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
    };
    use parquet::basic::ZstdLevel;
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
    use parquet::file::page_index::column_index::ColumnIndexMetaData;
    use parquet::file::writer::SerializedFileWriter;

    use super::*;

    fn properties(page_rows: usize) -> WriterProperties {
        WriterProperties::builder()
            .set_data_page_row_count_limit(page_rows)
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
            .build()
    }

    /// A file of one required text column `name`, written by `encode`.
    fn written(arrays: &[&StringArray], properties: WriterProperties) -> Bytes {
        let arrow = Schema::new(vec![Field::new("name", DataType::Utf8, false)]);
        let schema = ArrowSchemaConverter::new().convert(&arrow).unwrap();
        let column = schema.column(0);
        assert!(applies(&column, &properties));
        let mut writer = SerializedFileWriter::new(
            Vec::new(),
            schema.root_schema_ptr(),
            Arc::new(properties.clone()),
        )
        .unwrap();
        let mut row_group = writer.next_row_group().unwrap();
        let chunk = encode(arrays, column, &properties).unwrap().unwrap();
        row_group.append_column(&chunk.bytes, chunk.close).unwrap();
        row_group.close().unwrap();
        Bytes::from(writer.into_inner().unwrap())
    }

    fn read(file: &Bytes, selection: Option<RowSelection>) -> (Vec<String>, Arc<ParquetMetaData>) {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let mut builder =
            ParquetRecordBatchReaderBuilder::try_new_with_options(file.clone(), options).unwrap();
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        let metadata = builder.metadata().clone();
        let mut values = Vec::new();
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            assert_eq!(batch.column(0).null_count(), 0);
            values.extend(
                batch
                    .column(0)
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(String::from),
            );
        }
        (values, metadata)
    }

    #[test]
    fn runs_read_back_with_their_pages_statistics_and_index() {
        // Runs that cross an array boundary and page boundaries (7 rows a
        // page), a value seen again after others, a single-row run.
        let first = StringArray::from(vec!["gt2l", "gt2l", "gt1r", "gt1r", "gt1r", "gt1r", "gt1r"]);
        let second = StringArray::from(vec!["gt1r", "gt1r", "gt3l", "gt2l", "gt2l", "a", "gt2l"]);
        let mut expected: Vec<String> = Vec::new();
        for array in [&first, &second] {
            expected.extend(array.iter().flatten().map(String::from));
        }
        let more: Vec<&str> = (0..60)
            .map(|i| if i < 40 { "gt3r" } else { "gt1l" })
            .collect();
        let third = StringArray::from(more.clone());
        expected.extend(more.iter().map(|value| value.to_string()));
        let file = written(&[&first, &second, &third], properties(7));

        let (values, metadata) = read(&file, None);
        assert_eq!(values, expected);
        let chunk = metadata.row_group(0).column(0);
        assert_eq!(chunk.num_values(), expected.len() as i64);
        let Some(Statistics::ByteArray(statistics)) = chunk.statistics() else {
            panic!("no statistics: {:?}", chunk.statistics());
        };
        assert_eq!(statistics.min_opt().unwrap().as_utf8().unwrap(), "a");
        assert_eq!(statistics.max_opt().unwrap().as_utf8().unwrap(), "gt3r");
        assert_eq!(statistics.null_count_opt(), Some(0));
        assert_eq!(
            chunk.unencoded_byte_array_data_bytes(),
            Some(expected.iter().map(|value| value.len() as i64).sum())
        );

        let pages: Vec<&[String]> = expected.chunks(7).collect();
        let offsets = &metadata.offset_index().unwrap()[0][0];
        let first_rows: Vec<i64> = offsets
            .page_locations()
            .iter()
            .map(|page| page.first_row_index)
            .collect();
        assert_eq!(
            first_rows,
            (0..pages.len() as i64)
                .map(|page| page * 7)
                .collect::<Vec<_>>()
        );
        let ColumnIndexMetaData::BYTE_ARRAY(index) = &metadata.column_index().unwrap()[0][0] else {
            panic!("not a byte array column index");
        };
        for (page, rows) in pages.iter().enumerate() {
            let min = rows.iter().min().unwrap().as_bytes();
            let max = rows.iter().max().unwrap().as_bytes();
            assert_eq!(
                index.min_value(page).map(|value| value.as_ref()),
                Some(min),
                "page {page}"
            );
            assert_eq!(
                index.max_value(page).map(|value| value.as_ref()),
                Some(max),
                "page {page}"
            );
            assert_eq!(index.null_count(page), Some(0));
        }

        // Reading from the page index: rows 10..25 only.
        let selection = RowSelection::from(vec![
            RowSelector::skip(10),
            RowSelector::select(15),
            RowSelector::skip(expected.len() - 25),
        ]);
        let (values, _) = read(&file, Some(selection));
        assert_eq!(values, expected[10..25]);
    }

    #[test]
    fn nulls_short_runs_and_values_past_the_statistics_length_are_left_to_parquet() {
        let arrow = Schema::new(vec![Field::new("name", DataType::Utf8, false)]);
        let schema = ArrowSchemaConverter::new().convert(&arrow).unwrap();
        let properties = properties(20_000);
        let nulls = StringArray::from(vec![Some("a"), None]);
        assert!(
            encode(&[&nulls], schema.column(0), &properties)
                .unwrap()
                .is_none()
        );
        let unsorted: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
        let unsorted = StringArray::from(unsorted);
        assert!(
            encode(&[&unsorted], schema.column(0), &properties)
                .unwrap()
                .is_none()
        );
        let long = "x".repeat(65);
        let long = StringArray::from(vec!["a", long.as_str()]);
        assert!(
            encode(&[&long], schema.column(0), &properties)
                .unwrap()
                .is_none()
        );
        let one = StringArray::from(vec!["only"; 8]);
        let file = written(&[&one], properties);
        assert_eq!(read(&file, None).0, vec!["only"; 8]);
    }

    #[test]
    fn run_headers_are_uleb128() {
        let mut out = Vec::new();
        uleb128(&mut out, 300 << 1);
        assert_eq!(out, [0xd8, 0x04]);
        assert_eq!(
            (bits(0), bits(1), bits(2), bits(255), bits(256)),
            (0, 1, 2, 8, 9)
        );
    }
}
