//! Columns whose values come in long runs (the text columns granule, beam
//! and beam strength, and the never-null small integers rgt, cycle, region:
//! a few distinct values, each repeated for thousands of rows), encoded
//! straight to a dictionary page and RLE data pages.
//!
//! parquet's own writer hashes every value into its dictionary and compares
//! it with the running minimum and maximum: for the three text columns,
//! 9.7% of a bulk run's instructions. Without a dictionary, the integers
//! were written PLAIN, four bytes a row, for zstd to squeeze back to
//! nothing. Here a value is compared only with the one
//! before it. The chunk has what parquet's writer gives these columns (a
//! dictionary page in PLAIN, version 1 data pages in RLE_DICTIONARY, chunk
//! and page statistics, column and offset index), with two differences: a
//! page holds `data_page_row_count_limit` rows exactly (parquet cuts after
//! a 1,024-row batch), and the column index's boundary order is left
//! unordered. Each run is one RLE run; a column whose values do not come
//! in long runs, or whose dictionary would pass its page size limit, is
//! left to parquet's writer.

use std::hash::Hash;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int8Type, Int16Type, Int32Type, UInt8Type, UInt16Type};
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

/// Whether rows of this Arrow type can be written here: text, and the
/// integers parquet stores as INT32 whose order as an i32 is their own
/// (not UInt32, whose large values would read as negative).
pub(super) fn supports(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
    )
}

/// Whether a column is written here: a required, unnested byte array or
/// INT32 with a dictionary, page statistics, no bloom filter, zstd or no
/// compression, version 1 pages.
pub(super) fn applies(column: &ColumnDescriptor, properties: &WriterProperties) -> bool {
    let path = column.path();
    matches!(column.physical_type(), Type::BYTE_ARRAY | Type::INT32)
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

/// A value of a column written here: text or an INT32 number.
trait RunValue: Copy + Eq + Hash + Ord {
    const TYPE: Type;
    /// Whether the statistics hold the value untruncated.
    fn fits(self, limit: usize) -> bool;
    /// Appends the value in PLAIN encoding.
    fn plain(self, out: &mut Vec<u8>);
    /// The value as the column index holds it.
    fn index_bytes(self) -> Vec<u8>;
    /// Bytes of text (none for numbers: the chunk then records none).
    fn text_bytes(self) -> Option<i64>;
    /// Statistics of values from `min` to `max` (no nulls).
    fn statistics(min: Self, max: Self, signed: bool) -> Statistics;
}

impl RunValue for &str {
    const TYPE: Type = Type::BYTE_ARRAY;

    fn fits(self, limit: usize) -> bool {
        self.len() <= limit
    }

    fn plain(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        out.extend_from_slice(self.as_bytes());
    }

    fn index_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn text_bytes(self) -> Option<i64> {
        Some(self.len() as i64)
    }

    fn statistics(min: Self, max: Self, signed: bool) -> Statistics {
        Statistics::ByteArray(
            ValueStatistics::new(
                Some(ByteArray::from(min.as_bytes().to_vec())),
                Some(ByteArray::from(max.as_bytes().to_vec())),
                None,
                Some(0),
                false,
            )
            .with_backwards_compatible_min_max(signed),
        )
    }
}

impl RunValue for i32 {
    const TYPE: Type = Type::INT32;

    fn fits(self, _: usize) -> bool {
        true
    }

    fn plain(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }

    fn index_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }

    fn text_bytes(self) -> Option<i64> {
        None
    }

    fn statistics(min: Self, max: Self, signed: bool) -> Statistics {
        Statistics::Int32(
            ValueStatistics::new(Some(min), Some(max), None, Some(0), false)
                .with_backwards_compatible_min_max(signed),
        )
    }
}

/// The distinct values in order of appearance, and the rows as runs of
/// (value, length).
struct Runs<V> {
    dictionary: Vec<V>,
    keys: FxHashMap<V, u32>,
    runs: Vec<(u32, usize)>,
    previous: Option<V>,
}

impl<V: RunValue> Runs<V> {
    fn new() -> Self {
        Runs {
            dictionary: Vec::new(),
            keys: FxHashMap::default(),
            runs: Vec::new(),
            previous: None,
        }
    }

    /// Adds the next rows; `None` when a value does not fit the statistics.
    fn extend(&mut self, values: impl Iterator<Item = V>, limit: usize) -> Result<Option<()>> {
        for value in values {
            if self.previous == Some(value) {
                if let Some(run) = self.runs.last_mut() {
                    run.1 += 1;
                }
                continue;
            }
            self.previous = Some(value);
            let key = match self.keys.get(&value) {
                Some(key) => *key,
                None if !value.fits(limit) => return Ok(None),
                None => {
                    let key = u32::try_from(self.dictionary.len())
                        .map_err(|_| ParquetError::General("too many distinct values".into()))?;
                    self.dictionary.push(value);
                    self.keys.insert(value, key);
                    key
                }
            };
            match self.runs.last_mut() {
                Some(run) if run.0 == key => run.1 += 1,
                _ => self.runs.push((key, 1)),
            }
        }
        Ok(Some(()))
    }
}

/// Encodes `arrays` (the row group's rows, in order, all of one type that
/// `supports` accepts) as one column chunk; `None` when a value is null or
/// longer than the statistics may hold untruncated, or the values do not
/// come in long runs (parquet's writer then encodes the column).
pub(super) fn encode(
    arrays: &[&ArrayRef],
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
    if arrays.iter().any(|array| array.null_count() > 0) {
        return Ok(None);
    }
    let Some(first) = arrays.first() else {
        return Ok(None);
    };
    if arrays
        .iter()
        .any(|array| array.data_type() != first.data_type())
    {
        return Ok(None);
    }
    macro_rules! numbers {
        ($type:ty) => {{
            let mut runs = Runs::<i32>::new();
            for array in arrays {
                let values = array.as_primitive::<$type>().values().iter();
                if runs
                    .extend(values.map(|&value| i32::from(value)), limit)?
                    .is_none()
                {
                    return Ok(None);
                }
            }
            write_chunk(runs, column, properties)
        }};
    }
    match (first.data_type(), column.physical_type()) {
        (DataType::Utf8, Type::BYTE_ARRAY) => {
            let mut runs = Runs::<&str>::new();
            for array in arrays {
                if runs
                    .extend(array.as_string::<i32>().iter().flatten(), limit)?
                    .is_none()
                {
                    return Ok(None);
                }
            }
            write_chunk(runs, column, properties)
        }
        (DataType::Int8, Type::INT32) => numbers!(Int8Type),
        (DataType::Int16, Type::INT32) => numbers!(Int16Type),
        (DataType::Int32, Type::INT32) => numbers!(Int32Type),
        (DataType::UInt8, Type::INT32) => numbers!(UInt8Type),
        (DataType::UInt16, Type::INT32) => numbers!(UInt16Type),
        _ => Ok(None),
    }
}

/// The chunk of `runs`: a PLAIN dictionary page, then RLE_DICTIONARY pages
/// of `data_page_row_count_limit` rows, each run one RLE run.
fn write_chunk<V: RunValue>(
    runs: Runs<V>,
    column: ColumnDescPtr,
    properties: &WriterProperties,
) -> Result<Option<Chunk>> {
    let Runs {
        dictionary, runs, ..
    } = runs;
    let rows: usize = runs.iter().map(|run| run.1).sum();
    let mut plain = Vec::new();
    for value in &dictionary {
        value.plain(&mut plain);
    }
    if runs.len() * 8 > rows
        || plain.len() > properties.column_dictionary_page_size_limit(column.path())
    {
        return Ok(None);
    }
    let signed = column.sort_order().is_signed();
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
    let mut column_index = ColumnIndexBuilder::new(V::TYPE);
    let mut offset_index = OffsetIndexBuilder::new();
    let (mut data_pages, mut first_data_page) = (0, None);
    let (mut chunk_min, mut chunk_max): (Option<V>, Option<V>) = (None, None);
    let mut text_bytes: Option<i64> = None;
    // The next run, and how many of its rows earlier pages hold.
    let (mut run, mut used) = (0, 0);
    while run < runs.len() {
        let mut page = vec![bit_width];
        let mut count = 0;
        let mut page_bytes: Option<i64> = None;
        let (mut min, mut max): (Option<V>, Option<V>) = (None, None);
        while count < page_rows && run < runs.len() {
            let (key, length) = runs[run];
            let taken = (length - used).min(page_rows - count);
            uleb128(&mut page, (taken as u64) << 1);
            page.extend_from_slice(&key.to_le_bytes()[..key_bytes]);
            let value = dictionary[key as usize];
            min = Some(min.map_or(value, |min| min.min(value)));
            max = Some(max.map_or(value, |max| max.max(value)));
            if let Some(bytes) = value.text_bytes() {
                *page_bytes.get_or_insert(0) += bytes * taken as i64;
            }
            count += taken;
            used += taken;
            if used == length {
                (run, used) = (run + 1, 0);
            }
        }
        let (Some(min), Some(max)) = (min, max) else {
            break;
        };
        chunk_min = Some(chunk_min.map_or(min, |chunk| chunk.min(min)));
        chunk_max = Some(chunk_max.map_or(max, |chunk| chunk.max(max)));
        if let Some(bytes) = page_bytes {
            *text_bytes.get_or_insert(0) += bytes;
        }
        let (buf, size) = compress(page)?;
        let spec = writer.write_page(CompressedPage::new(
            Page::DataPage {
                buf,
                num_values: count as u32,
                encoding: properties.dictionary_data_page_encoding(),
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: header_statistics.then(|| V::statistics(min, max, signed)),
            },
            size,
        ))?;
        first_data_page.get_or_insert(spec.offset);
        data_pages += 1;
        compressed += spec.bytes_written;
        uncompressed += spec.uncompressed_size as u64;
        column_index.append(false, min.index_bytes(), max.index_bytes(), 0);
        offset_index.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
        offset_index.append_row_count(count as i64);
        offset_index.append_unencoded_byte_array_data_bytes(page_bytes);
    }

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
        .set_unencoded_byte_array_data_bytes(text_bytes);
    if let (Some(min), Some(max)) = (chunk_min, chunk_max) {
        metadata = metadata.set_statistics(V::statistics(min, max, signed));
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

    use arrow::array::StringArray;
    use arrow::datatypes::{Field, Schema};
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
        let arrays: Vec<ArrayRef> = arrays
            .iter()
            .map(|array| Arc::new((*array).clone()) as ArrayRef)
            .collect();
        written_as(DataType::Utf8, &arrays, properties)
    }

    /// A file of one required column `name` of `data_type`, written by `encode`.
    fn written_as(data_type: DataType, arrays: &[ArrayRef], properties: WriterProperties) -> Bytes {
        let arrays: Vec<&ArrayRef> = arrays.iter().collect();
        let arrow = Schema::new(vec![Field::new("name", data_type, false)]);
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
        let chunk = encode(&arrays, column, &properties).unwrap().unwrap();
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
        assert_eq!(
            metadata_of(&file)
                .row_group(0)
                .column(0)
                .encodings()
                .collect::<Vec<_>>(),
            [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY]
        );

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
            assert_eq!(index.min_value(page), Some(min), "page {page}");
            assert_eq!(index.max_value(page), Some(max), "page {page}");
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
            encode(&[&text(nulls)], schema.column(0), &properties)
                .unwrap()
                .is_none()
        );
        let unsorted: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
        let unsorted = StringArray::from(unsorted);
        assert!(
            encode(&[&text(unsorted)], schema.column(0), &properties)
                .unwrap()
                .is_none()
        );
        let long = "x".repeat(65);
        let long = StringArray::from(vec!["a", long.as_str()]);
        assert!(
            encode(&[&text(long)], schema.column(0), &properties)
                .unwrap()
                .is_none()
        );
        let one = StringArray::from(vec!["only"; 8]);
        let file = written(&[&one], properties);
        assert_eq!(read(&file, None).0, vec!["only"; 8]);
    }

    fn text(array: StringArray) -> ArrayRef {
        Arc::new(array)
    }

    fn metadata_of(file: &Bytes) -> Arc<ParquetMetaData> {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        ParquetRecordBatchReaderBuilder::try_new_with_options(file.clone(), options)
            .unwrap()
            .metadata()
            .clone()
    }

    /// The file's one column as i64 values, read through parquet's reader.
    fn read_numbers(file: &Bytes, selection: Option<RowSelection>) -> Vec<i64> {
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap();
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        let mut values = Vec::new();
        for batch in builder.build().unwrap() {
            let column = arrow::compute::cast(batch.unwrap().column(0), &DataType::Int64).unwrap();
            values.extend(
                column
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .iter(),
            );
        }
        values
    }

    #[test]
    fn integer_runs_read_back_as_their_type_with_statistics_and_index() {
        use arrow::array::{Int32Array, UInt16Array};
        // rgt-like values (UInt16 in Arrow, INT32 with an unsigned logical
        // type in parquet): runs across arrays and 7-row pages.
        let first: Vec<u16> = [vec![1387; 15], vec![2; 12]].concat();
        let second: Vec<u16> = [vec![2; 9], vec![640; 36], vec![1387; 6]].concat();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(UInt16Array::from(first.clone())),
            Arc::new(UInt16Array::from(second.clone())),
        ];
        let expected: Vec<i64> = first.iter().chain(&second).map(|&v| i64::from(v)).collect();
        let file = written_as(DataType::UInt16, &arrays, properties(7));
        let read = ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap();
        assert_eq!(
            read.schema().field(0).data_type(),
            &DataType::UInt16,
            "the Arrow type comes back"
        );
        assert_eq!(read_numbers(&file, None), expected);
        let metadata = metadata_of(&file);
        let chunk = metadata.row_group(0).column(0);
        assert_eq!(
            chunk.encodings().collect::<Vec<_>>(),
            [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY]
        );
        assert_eq!(chunk.unencoded_byte_array_data_bytes(), None);
        let Some(Statistics::Int32(statistics)) = chunk.statistics() else {
            panic!("no statistics: {:?}", chunk.statistics());
        };
        assert_eq!(
            (
                statistics.min_opt(),
                statistics.max_opt(),
                statistics.null_count_opt()
            ),
            (Some(&2), Some(&1387), Some(0))
        );
        let ColumnIndexMetaData::INT32(index) = &metadata.column_index().unwrap()[0][0] else {
            panic!("not an INT32 column index");
        };
        for (page, rows) in expected.chunks(7).enumerate() {
            let min = *rows.iter().min().unwrap() as i32;
            let max = *rows.iter().max().unwrap() as i32;
            assert_eq!(index.min_value(page), Some(&min), "page {page}");
            assert_eq!(index.max_value(page), Some(&max), "page {page}");
        }
        let selection = RowSelection::from(vec![
            RowSelector::skip(8),
            RowSelector::select(9),
            RowSelector::skip(expected.len() - 17),
        ]);
        assert_eq!(read_numbers(&file, Some(selection)), expected[8..17]);

        // Signed values keep their order: the minimum is the negative one.
        let signed: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(
            [vec![5; 10], vec![-3; 10], vec![7; 10]].concat(),
        ))];
        let file = written_as(DataType::Int32, &signed, properties(20_000));
        assert_eq!(
            read_numbers(&file, None),
            [vec![5; 10], vec![-3; 10], vec![7; 10]].concat()
        );
        let Some(Statistics::Int32(statistics)) = metadata_of(&file)
            .row_group(0)
            .column(0)
            .statistics()
            .cloned()
        else {
            panic!("no statistics");
        };
        assert_eq!(
            (statistics.min_opt(), statistics.max_opt()),
            (Some(&-3), Some(&7))
        );
        // UInt32 would read as negative past i32::MAX: not written here.
        assert!(!supports(&DataType::UInt32));
        assert!(supports(&DataType::UInt8) && supports(&DataType::Utf8));
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

    /// An integer as bytes that sort as the integers do.
    fn ordered(value: i64) -> Vec<u8> {
        ((value as u64) ^ (1 << 63)).to_be_bytes().to_vec()
    }

    /// What a column-index page says: its minimum and maximum as i64
    /// (INT32) or bytes (text).
    fn page_bounds(metadata: &ParquetMetaData, page: usize) -> (Vec<u8>, Vec<u8>) {
        match &metadata.column_index().unwrap()[0][0] {
            ColumnIndexMetaData::INT32(index) => (
                ordered(i64::from(*index.min_value(page).unwrap())),
                ordered(i64::from(*index.max_value(page).unwrap())),
            ),
            ColumnIndexMetaData::BYTE_ARRAY(index) => (
                index.min_value(page).unwrap().to_vec(),
                index.max_value(page).unwrap().to_vec(),
            ),
            other => panic!("unexpected column index {other:?}"),
        }
    }

    /// Every page of the file's column index bounds exactly the rows the
    /// offset index places on it (`keys`: each row's value, ordered as the
    /// column orders it).
    fn check_pages(metadata: &ParquetMetaData, keys: &[Vec<u8>]) {
        let locations = metadata.offset_index().unwrap()[0][0].page_locations();
        for (page, location) in locations.iter().enumerate() {
            let start = location.first_row_index as usize;
            let end = locations
                .get(page + 1)
                .map_or(keys.len(), |next| next.first_row_index as usize);
            let rows = &keys[start..end];
            let bounds = (
                rows.iter().min().unwrap().clone(),
                rows.iter().max().unwrap().clone(),
            );
            assert_eq!(page_bounds(metadata, page), bounds, "page {page}");
        }
    }

    #[test]
    fn random_runs_agree_with_parquets_own_writer() {
        use parquet::arrow::ArrowWriter;
        use rand::{Rng, SeedableRng};

        let texts = [
            "gt1l",
            "gt1r",
            "gt2l",
            "strong",
            "weak",
            "",
            "ATL08_20190419091339",
        ];
        let types = [
            DataType::Utf8,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::UInt8,
            DataType::UInt16,
        ];
        for seed in 0..24u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let data_type = types[seed as usize % types.len()].clone();
            let page_rows = [7, 100, 1024, 20_000][rng.random_range(0..4)];
            // Runs of 40 to 3,000 rows of values drawn from a few.
            let (low, high): (i64, i64) = match data_type {
                DataType::Int8 => (-128, 127),
                DataType::Int16 => (-32_768, 32_767),
                DataType::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
                DataType::UInt8 => (0, 255),
                DataType::UInt16 => (0, 65_535),
                _ => (0, texts.len() as i64 - 1),
            };
            let pool: Vec<i64> = (0..rng.random_range(1..6))
                .map(|_| rng.random_range(low..=high))
                .collect();
            let mut values: Vec<i64> = Vec::new();
            for _ in 0..rng.random_range(1..30) {
                let value = pool[rng.random_range(0..pool.len())];
                values.extend(std::iter::repeat_n(value, rng.random_range(40..3_000)));
            }
            let whole: ArrayRef = match data_type {
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                    values.iter().map(|&v| texts[v as usize]),
                )),
                _ => arrow::compute::cast(
                    &arrow::array::Int64Array::from(values.clone()),
                    &data_type,
                )
                .unwrap(),
            };
            let keys: Vec<Vec<u8>> = match data_type {
                DataType::Utf8 => values
                    .iter()
                    .map(|&v| texts[v as usize].as_bytes().to_vec())
                    .collect(),
                _ => values.iter().map(|&v| ordered(v)).collect(),
            };
            // The rows in arrays cut at random places, as batches come.
            let mut arrays: Vec<ArrayRef> = Vec::new();
            let mut at = 0;
            while at < values.len() {
                let length = rng.random_range(1..=values.len() - at);
                arrays.push(whole.slice(at, length));
                at += length;
            }
            let properties = properties(page_rows);
            let ours = written_as(data_type.clone(), &arrays, properties.clone());

            let schema = Arc::new(Schema::new(vec![Field::new(
                "name",
                data_type.clone(),
                false,
            )]));
            let mut writer =
                ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties)).unwrap();
            let batch = arrow::array::RecordBatch::try_new(schema, vec![whole.clone()]).unwrap();
            writer.write(&batch).unwrap();
            let theirs = Bytes::from(writer.into_inner().unwrap());

            let label = format!("seed {seed}, {data_type}, {page_rows} rows a page");
            let read_all = |file: &Bytes, selection: Option<RowSelection>| -> Vec<ArrayRef> {
                let mut builder = ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap();
                if let Some(selection) = selection {
                    builder = builder.with_row_selection(selection);
                }
                builder
                    .build()
                    .unwrap()
                    .map(|batch| batch.unwrap().column(0).clone())
                    .collect()
            };
            let concat = |arrays: Vec<ArrayRef>| {
                let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                arrow::compute::concat(&refs).unwrap()
            };
            assert_eq!(
                concat(read_all(&ours, None)).as_ref(),
                whole.as_ref(),
                "{label}"
            );
            assert_eq!(
                concat(read_all(&theirs, None)).as_ref(),
                whole.as_ref(),
                "{label}"
            );
            let skip = rng.random_range(0..values.len());
            let take = rng.random_range(1..=values.len() - skip);
            let selection = || {
                RowSelection::from(vec![
                    RowSelector::skip(skip),
                    RowSelector::select(take),
                    RowSelector::skip(values.len() - skip - take),
                ])
            };
            assert_eq!(
                concat(read_all(&ours, Some(selection()))).as_ref(),
                whole.slice(skip, take).as_ref(),
                "{label}: rows {skip}..{}",
                skip + take
            );

            let (ours, theirs) = (metadata_of(&ours), metadata_of(&theirs));
            let (a, b) = (ours.row_group(0).column(0), theirs.row_group(0).column(0));
            assert_eq!(a.num_values(), b.num_values(), "{label}");
            assert_eq!(a.statistics(), b.statistics(), "{label}");
            assert_eq!(
                a.unencoded_byte_array_data_bytes(),
                b.unencoded_byte_array_data_bytes(),
                "{label}"
            );
            check_pages(&ours, &keys);
            check_pages(&theirs, &keys);
        }
    }
}
