//! The manifest parser on arbitrary text: a manifest or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = icesat2::manifest::Manifest::parse(text, "fuzz.yaml");
    }
});
