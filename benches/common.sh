# Sourced by the benchmark scripts: runs from the repository root and sets
#   bin         the icesat2 binary timed: $ICESAT2_BIN, else a release build
#               with the default features, the one users install (the
#               `hdf5` feature links libhdf5 and 30 more libraries, which
#               cost 14 ms at every start);
#   synth       a function running `icesat2 synth` (it needs `--features
#               hdf5`): $ICESAT2_SYNTH_BIN, else a release build with it,
#               made the first time it is needed;
#   bench_root  where generated granules and outputs live: $BENCH_DIR, else
#               ~/.cache/icesat2-bench (kept between runs).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icesat2-target}"
# Both builds write target/release/icesat2: each is copied out.
bin="${ICESAT2_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin="$CARGO_TARGET_DIR/release/icesat2-bench"
  cp "$CARGO_TARGET_DIR/release/icesat2" "$bin"
fi
synth() {
  local synth_bin="${ICESAT2_SYNTH_BIN:-}"
  if [ -z "$synth_bin" ]; then
    cargo build --release --features hdf5 --quiet
    synth_bin="$CARGO_TARGET_DIR/release/icesat2-synth"
    cp "$CARGO_TARGET_DIR/release/icesat2" "$synth_bin"
  fi
  "$synth_bin" synth "$@"
}
bench_root="${BENCH_DIR:-$HOME/.cache/icesat2-bench}"
