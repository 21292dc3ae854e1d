//! Inflate of deflate-compressed HDF5 chunks with libdeflate, registered as
//! each file's deflate filter (HDF5 filter 1) in place of hdf5-reader's
//! built-in one (flate2 over zlib-rs, streaming); and the shuffle filter
//! (HDF5 filter 2) undone a block at a time (`unshuffle`).
//!
//! Why: inflate is the largest single cost of a run (39% of the
//! instructions of the bulk benchmark). An HDF5 chunk is one whole zlib
//! stream whose decoded size has a known bound, which is the case libdeflate
//! is built for: it decodes the buffer in one call. On the bulk benchmark's
//! 3,660 chunks, one core: zlib-rs (as flate2 builds it here, without its
//! runtime CPU detection) about 0.55 s, zlib-ng 0.45 s, libdeflate 0.38 s.
//!
//! The filter interface passes no output limit. The output buffer is sized
//! by the file's largest chunk in bytes, from the dataset layouts read so
//! far (`ChunkLimit`, raised by `ReaderFile` for every dataset it opens); a
//! stream that needs more is decoded again into the largest chunk plus a
//! margin (`MARGIN_DIVISOR`, `MARGIN_BYTES`): what a filter applied before
//! deflate adds (Fletcher-32 four bytes; a second deflate its stored-block
//! framing, five bytes for each 64 KiB). Anything longer is no chunk of
//! this file and is refused, so a crafted stream that inflates a
//! thousandfold costs no more than that. Before any dataset is laid out
//! (no chunk known) the bound is the deflate format's own (1032:1). All
//! are capped by `cap` and by the stream's own ratio bound, and
//! hdf5-reader then checks the decoded length against the chunk's own
//! size.

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hdf5_reader::FilterRegistry;
use hdf5_reader::error::Error;
use hdf5_reader::filters::{FILTER_DEFLATE, FILTER_SHUFFLE};
use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_result_LIBDEFLATE_BAD_DATA, libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE,
    libdeflate_result_LIBDEFLATE_SUCCESS, libdeflate_zlib_decompress_ex,
};

/// The largest chunk (decoded bytes) of the datasets a file has laid out.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChunkLimit(Arc<AtomicUsize>);

impl ChunkLimit {
    /// Records a dataset's chunk size.
    pub(crate) fn raise(&self, chunk_bytes: u64) {
        let bytes = usize::try_from(chunk_bytes).unwrap_or(usize::MAX);
        self.0.fetch_max(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The filters for one file: hdf5-reader's, with deflate and shuffle
/// undone here.
pub(crate) fn registry(limit: ChunkLimit, cap: usize) -> FilterRegistry {
    let mut registry = FilterRegistry::new();
    registry.register(
        FILTER_SHUFFLE,
        Box::new(|_, data, element_size| Ok(unshuffle(data, element_size))),
    );
    registry.register(
        FILTER_DEFLATE,
        Box::new(move |_, data, _| {
            let (first, most) = output_bounds(data.len(), limit.get(), cap);
            match inflate(data, first) {
                Err(Inflate::TooLarge(_)) if first < most => inflate(data, most),
                result => result,
            }
            .map_err(Inflate::into_error)
        }),
    );
    registry
}

/// The margin over the largest chunk a stream may decode to: this part of
/// the chunk...
const MARGIN_DIVISOR: usize = 64;
/// ...plus this many bytes.
const MARGIN_BYTES: usize = 4096;

/// The output size to try first for a stream of `compressed` bytes, and the
/// most it may decode to.
fn output_bounds(compressed: usize, largest_chunk: usize, cap: usize) -> (usize, usize) {
    // The deflate format's own bound: 1032 output bytes an input byte.
    let format = compressed.saturating_mul(1032).saturating_add(64).min(cap);
    if largest_chunk == 0 {
        return (format, format);
    }
    let most = largest_chunk
        .saturating_add(largest_chunk / MARGIN_DIVISOR)
        .saturating_add(MARGIN_BYTES)
        .min(format);
    (largest_chunk.min(most), most)
}

/// Why a stream did not decode.
#[derive(Debug)]
pub(crate) enum Inflate {
    /// It decodes to more than this many bytes.
    TooLarge(usize),
    Failed(String),
}

impl Inflate {
    fn into_error(self) -> Error {
        let why = match self {
            Inflate::TooLarge(bound) => {
                format!("a chunk decoded to more than {bound} bytes, more than expected")
            }
            Inflate::Failed(why) => why,
        };
        Error::DecompressionError(format!("DEFLATE decompression failed: {why}"))
    }
}

/// One libdeflate decompressor per thread (it holds only tables, rebuilt
/// for each stream).
struct Decompressor(*mut libdeflate_decompressor);

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is
        // freed once, here.
        unsafe { libdeflate_free_decompressor(self.0) }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Decodes one zlib stream (trailing bytes after it are ignored, as zlib
/// does) of at most `bound` bytes.
pub(crate) fn inflate(data: &[u8], bound: usize) -> Result<Vec<u8>, Inflate> {
    let failed = |why: &str| Inflate::Failed(why.to_string());
    let mut output: Vec<u8> = Vec::new();
    output
        .try_reserve_exact(bound)
        .map_err(|_| failed(&format!("cannot allocate {bound} output bytes")))?;
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            // SAFETY: no preconditions; a null return is checked below.
            let pointer = unsafe { libdeflate_alloc_decompressor() };
            if pointer.is_null() {
                return Err(failed("cannot allocate a decompressor"));
            }
            *slot = Some(Decompressor(pointer));
        }
        let decompressor = slot.as_ref().expect("set above").0;
        let mut read = 0usize;
        let mut written = 0usize;
        // SAFETY: `data` is valid for `data.len()` bytes of reading and the
        // output's spare capacity for `bound` bytes (reserved above; the C
        // code writes there and reads back only what it wrote, as matches
        // copy earlier output); only the first `written` bytes are exposed
        // below. The decompressor is used by this thread only.
        let result = unsafe {
            libdeflate_zlib_decompress_ex(
                decompressor,
                data.as_ptr().cast::<c_void>(),
                data.len(),
                output.spare_capacity_mut().as_mut_ptr().cast::<c_void>(),
                bound,
                &mut read,
                &mut written,
            )
        };
        #[allow(non_upper_case_globals)]
        match result {
            libdeflate_result_LIBDEFLATE_SUCCESS => {
                // SAFETY: libdeflate wrote `written` (<= bound) bytes.
                unsafe { output.set_len(written) };
                output.shrink_to_fit();
                Ok(output)
            }
            libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Err(Inflate::TooLarge(bound)),
            libdeflate_result_LIBDEFLATE_BAD_DATA => Err(failed("corrupt data")),
            other => Err(failed(&format!("libdeflate error {other}"))),
        }
    })
}

/// Undoes HDF5's shuffle filter: the chunk holds byte 0 of every element,
/// then byte 1 of every element, and so on; bytes past the last whole
/// element are kept as they are. The same result as hdf5-reader's
/// `unshuffle`, which moves one byte at a time with two bounds checks each
/// (2.4% of the bulk benchmark's instructions, for its 4-byte integer
/// columns); here the common widths go a block of 16 elements at a time
/// through fixed-size arrays, which the compiler unrolls without checks.
pub(crate) fn unshuffle(data: &[u8], element_size: usize) -> Vec<u8> {
    let elements = if element_size > 1 {
        data.len() / element_size
    } else {
        0
    };
    if elements == 0 {
        return data.to_vec();
    }
    let whole = elements * element_size;
    let mut output = vec![0u8; data.len()];
    let (head, tail) = output.split_at_mut(whole);
    match element_size {
        2 => unshuffle_width::<2>(&data[..whole], head),
        4 => unshuffle_width::<4>(&data[..whole], head),
        8 => unshuffle_width::<8>(&data[..whole], head),
        _ => {
            for (index, element) in head.chunks_exact_mut(element_size).enumerate() {
                for (byte, out) in element.iter_mut().enumerate() {
                    *out = data[byte * elements + index];
                }
            }
        }
    }
    tail.copy_from_slice(&data[whole..]);
    output
}

/// `unshuffle` of whole elements of `N` bytes.
fn unshuffle_width<const N: usize>(data: &[u8], output: &mut [u8]) {
    const BLOCK: usize = 16;
    let elements = data.len() / N;
    let blocks = elements / BLOCK;
    for block in 0..blocks {
        let mut lanes = [[0u8; BLOCK]; N];
        for (byte, lane) in lanes.iter_mut().enumerate() {
            lane.copy_from_slice(&data[byte * elements + block * BLOCK..][..BLOCK]);
        }
        let out = &mut output[block * BLOCK * N..][..BLOCK * N];
        for index in 0..BLOCK {
            for (byte, lane) in lanes.iter().enumerate() {
                out[index * N + byte] = lane[index];
            }
        }
    }
    for index in blocks * BLOCK..elements {
        for byte in 0..N {
            output[index * N + byte] = data[byte * elements + index];
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn decodes_what_zlib_encodes() {
        let bytes: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let compressed = zlib(&bytes);
        assert_eq!(inflate(&compressed, bytes.len()).unwrap(), bytes);
        // Bytes after the stream are ignored.
        let mut padded = compressed.clone();
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(inflate(&padded, bytes.len() + 10).unwrap(), bytes);
    }

    #[test]
    fn refuses_output_over_the_bound_and_corrupt_streams() {
        let bytes = vec![7u8; 50_000];
        let compressed = zlib(&bytes);
        let err = inflate(&compressed, 49_999)
            .unwrap_err()
            .into_error()
            .to_string();
        assert!(err.contains("decoded to more than 49999 bytes"), "{err}");
        let mut corrupt = compressed.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff; // the Adler-32 checksum
        let err = inflate(&corrupt, bytes.len())
            .unwrap_err()
            .into_error()
            .to_string();
        assert!(err.contains("corrupt data"), "{err}");
    }

    #[test]
    fn a_stream_beyond_the_largest_chunk_is_decoded_again_within_the_margin() {
        let filter = hdf5_reader::messages::filter_pipeline::FilterDescription {
            id: FILTER_DEFLATE,
            name: None,
            client_data: vec![6],
        };
        let limit = ChunkLimit::default();
        limit.raise(40_000);
        // 4 bytes more than any chunk laid out (Fletcher-32 before deflate).
        let bytes = vec![3u8; 40_004];
        let decoded = registry(limit.clone(), usize::MAX).apply(&filter, &zlib(&bytes), 1);
        assert_eq!(decoded.unwrap(), bytes);
        // The chunk deflated again (a second deflate filter): its stream is
        // a few bytes longer than the chunk even when it does not compress.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..40_000)
            .map(|_| {
                // xorshift64: bytes deflate cannot shorten.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        let stored = zlib(&noise);
        assert!(stored.len() > noise.len(), "{}", stored.len());
        let decoded = registry(limit.clone(), usize::MAX).apply(&filter, &zlib(&stored), 1);
        assert_eq!(decoded.unwrap(), stored);
        // A stream that inflates far beyond any chunk of the file (a
        // thousandfold, within the format's bound) is refused at the
        // largest chunk plus the margin.
        let bomb = zlib(&vec![0u8; 4 << 20]);
        let err = registry(limit, usize::MAX)
            .apply(&filter, &bomb, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("decoded to more than 44721 bytes"), "{err}");
    }

    #[test]
    fn unshuffle_gives_what_hdf5_reader_gives() {
        let bytes: Vec<u8> = (0..1_000u32).map(|i| (i * 7 % 256) as u8).collect();
        for width in [1, 2, 3, 4, 5, 8, 16] {
            // Whole blocks, a partial block, a few elements, trailing bytes.
            for len in [0, 1, 7, 64, 100, 333, 512, 517, 1_000] {
                let data = &bytes[..len];
                assert_eq!(
                    unshuffle(data, width),
                    hdf5_reader::filters::shuffle::unshuffle(data, width),
                    "width {width}, {len} bytes"
                );
            }
        }
        // Byte 0 of each element first: [1, 2] [3, 4] [5, 6].
        assert_eq!(unshuffle(&[1, 3, 5, 2, 4, 6], 2), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn the_bound_is_the_largest_chunk_plus_a_margin_else_the_format_ratio() {
        // No chunk laid out yet: the format's ratio.
        assert_eq!(output_bounds(100, 0, usize::MAX), (103_264, 103_264));
        // 40,000 + 40,000 / 64 + 4096.
        assert_eq!(output_bounds(100, 40_000, usize::MAX), (40_000, 44_721));
        assert_eq!(output_bounds(30_000, 40_000, usize::MAX), (40_000, 44_721));
        // A short stream cannot decode to a large chunk.
        assert_eq!(output_bounds(100, 1 << 20, usize::MAX), (103_264, 103_264));
        assert_eq!(output_bounds(100, 40_000, 1_000), (1_000, 1_000));
        let limit = ChunkLimit::default();
        limit.raise(80_000);
        limit.raise(40_000);
        assert_eq!(limit.get(), 80_000);
    }
}
