//! The granule decoder on arbitrary bytes: open, read the granule's
//! metadata and extract every row of every beam with a segment variable, a
//! 2-D variable and photons, as a run would. Rows or an error, never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use hdf5_reader::storage::BytesStorage;
use icesat2::granule::reader::ReaderFile;
use icesat2::granule::{self, Request};
use icesat2::region::Region;
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

fuzz_target!(|data: &[u8]| {
    let storage = Arc::new(BytesStorage::new(data.to_vec()));
    let Ok(file) = ReaderFile::open(storage) else {
        return;
    };
    let name = "ATL08_20190421213054_03750313_006_01.h5";
    granule::preload(&file, request());
    if let Ok(meta) = granule::granule_meta(&file, name) {
        let _ = granule::extract(&file, name, meta, request());
    }
});
