//! Links the `icesat2` binary as a position-dependent executable on Linux
//! with glibc (`-no-pie`).
//!
//! Why: the crates the binary holds (DataFusion, Arrow, Parquet, ...) give
//! it about 242,000 pointers in static data that a position-independent
//! executable has the loader relocate at every start (a 5.8 MB relocation
//! table read, 4 MB of pages written): `icesat2 --version` took 8.5 ms
//! against 1.7 ms linked this way (median of 30), about 5 ms of the
//! small-polygon benchmark's 110 ms run. What is lost is the executable's
//! own address randomisation; shared libraries, stack and heap are still
//! randomised. Only the binary is linked so: the crates are compiled as
//! always, and tests and benchmarks link as before.
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
