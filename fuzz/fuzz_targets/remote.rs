//! The granule decoder on arbitrary bytes read as remote ranges: the bytes
//! sit behind `RemoteStorage` over an in-memory `RangeSource`, so the head
//! fetched on open, the metadata block cache, the path-by-path preload of
//! groups and chunk B-trees and the prefetch of planned chunks all run on
//! them, as a run over S3 or HTTPS does; then the same request as the
//! `granule` target. Rows or an error, never a panic.
#![no_main]

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use icesat2::granule::reader::{Prefetch, ReaderFile};
use icesat2::granule::{self, Request};
use icesat2::region::Region;
use icesat2::store::remote::{RangeSource, RemoteStorage};
use icesat2::store::{self, StoreError};
use libfuzzer_sys::fuzz_target;

/// The benchmarks' request builder (every beam, no filters).
#[path = "../../benches/support/request.rs"]
mod support;

fn request() -> &'static Request {
    static REQUEST: OnceLock<Request> = OnceLock::new();
    REQUEST.get_or_init(|| {
        support::request(
            Region::from_bbox([-180.0, -90.0, 180.0, 90.0], "fuzz").unwrap(),
            &[
                "land_segments/canopy/h_canopy",
                "land_segments/canopy/canopy_h_metrics",
                "signal_photons/ph_h",
            ],
        )
    })
}

/// The input, served by ranges. `RemoteStorage` asks only for ranges
/// inside the length it was given, which is the input's.
struct Memory(Bytes);

#[async_trait::async_trait]
impl RangeSource for Memory {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        Ok(self.0.slice(range.start as usize..range.end as usize))
    }

    async fn size(&self) -> Result<u64, StoreError> {
        Ok(self.0.len() as u64)
    }

    fn label(&self) -> String {
        "memory".into()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(storage) = RemoteStorage::open(
        Arc::new(Memory(Bytes::copy_from_slice(data))),
        store::runtime().handle().clone(),
        store::remote::HEAD,
    ) else {
        return;
    };
    let storage = Arc::new(storage);
    let prefetch: Arc<dyn Prefetch> = storage.clone();
    let Ok(file) = ReaderFile::open_with_prefetch(storage, Some(prefetch)) else {
        return;
    };
    let name = "ATL08_20190421213054_03750313_006_01.h5";
    granule::preload(&file, request());
    if let Ok(meta) = granule::granule_meta(&file, name) {
        let _ = granule::extract(&file, name, meta, request());
    }
});
