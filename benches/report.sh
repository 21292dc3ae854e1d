#!/usr/bin/env bash
# Report benchmark: `icesat2 report` (HTML and PNG) over the query
# benchmark's dataset (8 full-size synthetic granules, 820,693 rows; built
# by benches/query.sh when missing); median of 5 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icesat2-target}"
bin="${ICESAT2_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --features hdf5 --quiet
  bin="$CARGO_TARGET_DIR/release/icesat2"
fi
work="${BENCH_DIR:-$HOME/.cache/icesat2-bench}/query"
if [ ! -d "$work/out" ]; then
  ICESAT2_BIN="$bin" benches/query.sh >/dev/null
fi
rows=$("$bin" query "$work/out" "select count(*) from segments" --format csv 2>/dev/null | tail -1)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
times=()
for _ in 1 2 3 4 5; do
  start=$(date +%s.%N)
  "$bin" report "$work/out" --out "$scratch/report.html" --png "$scratch/map.png" 2>/dev/null
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc -l)")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
printf 'icesat2 report: %s rows, median of 5: %.2f s (runs: %s)\n' "$rows" "$median" "${times[*]}"
