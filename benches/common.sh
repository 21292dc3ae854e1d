# Sourced by the benchmark scripts: runs from the repository root and sets
#   bin         the icesat2 binary: $ICESAT2_BIN, else a release build
#               (with `--features hdf5`, for `synth`);
#   bench_root  where generated granules and outputs live: $BENCH_DIR, else
#               ~/.cache/icesat2-bench (kept between runs).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icesat2-target}"
bin="${ICESAT2_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --features hdf5 --quiet
  bin="$CARGO_TARGET_DIR/release/icesat2"
fi
bench_root="${BENCH_DIR:-$HOME/.cache/icesat2-bench}"
