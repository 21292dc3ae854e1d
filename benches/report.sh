#!/usr/bin/env bash
# Report benchmark: `icesat2 report` (HTML and PNG) over the query
# benchmark's dataset (8 full-size synthetic granules, 820,693 rows; built
# by benches/query.sh when missing); median of 5 runs.
set -euo pipefail
source "$(dirname "$0")/common.sh"
work="$bench_root/query"
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
