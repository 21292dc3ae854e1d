#!/usr/bin/env bash
# Fuzzes the manifest parser and the granule decoder, over local bytes and
# over remote ranges, with cargo fuzz (libFuzzer, AddressSanitizer, nightly
# toolchain).
#
#   fuzz/run.sh [SECONDS [TARGET...]]   each target (default all three:
#                                       manifest granule remote) for
#                                       SECONDS (default 600)
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`.
# The granule seeds are made here, outside the repository: the real ATL08
# clip from ../shared/data/real when it is there, two small synthetic
# granules (`icesat2 synth`, so a binary built with the `hdf5` feature, by
# default the test build's) and the bad-granule corpus the tests use; the
# remote target starts from a copy of them. The manifest seeds are in
# fuzz/corpus/manifest. Crashes land in
# fuzz/artifacts/<target>/; once fixed, make the input a case of the bad
# manifest or bad granule tests.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:-600}"
shift || true
[ $# -gt 0 ] && TARGETS=("$@") || TARGETS=(manifest granule remote)
WORK="${ICESAT2_FUZZ_WORK:-$HOME/.cache/icesat2-fuzz}"
TARGET_DIR="${ICESAT2_FUZZ_TARGET:-$HOME/.cache/icesat2-fuzz-target}"
BIN="${ICESAT2_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/icesat2-target}/debug/icesat2}"
PYTHON="${ICESAT2_PYTHON:-python3}"

# Sixteen codegen units (cargo-fuzz defaults to one). The first build of the
# instrumented tree still takes 40-55 minutes on 2 cores.
cargo +nightly fuzz build -O --codegen-units 16 --target-dir "$TARGET_DIR"

granules="$WORK/corpus/granule"
if [[ " ${TARGETS[*]} " == *" granule "* || " ${TARGETS[*]} " == *" remote "* ]] && [ ! -d "$granules" ]; then
    rm -rf "$WORK/seeds" "$granules.tmp" && mkdir -p "$WORK/seeds" "$granules.tmp"
    "$BIN" synth --out "$WORK/seeds/plain" --granules 1 --segments 5 --no-photons --seed 7
    "$BIN" synth --out "$WORK/seeds/photons" --granules 1 --segments 3 --seed 8
    cp "$WORK"/seeds/plain/*.h5 "$granules.tmp/synthetic.h5"
    cp "$WORK"/seeds/photons/*.h5 "$granules.tmp/synthetic-photons.h5"
    for real in ../../shared/data/real/*.h5; do
        [ -f "$real" ] && cp "$real" "$granules.tmp/real-$(basename "$real")"
    done
    "$PYTHON" ../tests/python/bad_granules.py "$granules.tmp/synthetic.h5" "$WORK/seeds/bad" >/dev/null
    for bad in "$WORK"/seeds/bad/*; do
        cp "$bad" "$granules.tmp/bad-$(basename "$bad")"
    done
    mv "$granules.tmp" "$granules"
fi
if [[ " ${TARGETS[*]} " == *" remote "* && ! -d "$WORK/corpus/remote" ]]; then
    cp -r "$granules" "$WORK/corpus/remote"
fi
manifests="$WORK/corpus/manifest"
mkdir -p "$manifests"
cp corpus/manifest/* "$manifests/"

for target in "${TARGETS[@]}"; do
    corpus="$WORK/corpus/$target"
    echo "fuzzing $target for $SECONDS_EACH s on $(ls "$corpus" | wc -l) seeds"
    # libFuzzer caps inputs at 1 MiB unless told; the synthetic granules
    # are 1.5 MB. Leak checking is off for the decoder: its only report is
    # glibc's 32-byte record of a thread-local destructor on one of rayon's
    # pool threads, which live for the whole process (the decoder reads
    # beams on the pool); Rust's ownership frees everything else.
    limit=()
    [ "$target" != manifest ] && limit=(-max_len=2000000 -detect_leaks=0)
    status=0
    cargo +nightly fuzz run -O --codegen-units 16 --target-dir "$TARGET_DIR" "$target" "$corpus" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -print_final_stats=1 ${limit[@]+"${limit[@]}"} \
        >"$WORK/$target.log" 2>&1 || status=$?
    grep -E "^(#[0-9]+.*(pulse|DONE)|stat::|==|SUMMARY|thread|panicked)" "$WORK/$target.log" || true
    if [ "$status" -ne 0 ]; then
        echo "$target: failed (status $status), see $WORK/$target.log and fuzz/artifacts/$target" >&2
        exit 1
    fi
done
