#!/usr/bin/env bash
# Memory of bulk runs: peak RSS (/usr/bin/time -v) of a 20-granule and a
# 200-granule run with the same settings, every row kept (whole-granule
# bbox, photons as lists), into year/month partitions. The ratio should stay
# under 1.3: memory is bounded by settings, not by the number of granules.
#
#   benches/bulk_rss.sh            (BENCH_DIR to move the 1.6 GB of granules)
set -euo pipefail
source "$(dirname "$0")/common.sh"
work="$bench_root/bulk"
if [ ! -f "$work/granules/.complete" ]; then
  rm -rf "$work/granules"
  synth --out "$work/granules" --granules 200 --segments 2000 --seed 7 --near 147.368,-43.143 >/dev/null
  touch "$work/granules/.complete"
fi
mkdir -p "$work/g20"
# The first 20 by name (a glob, not `ls | head`: under pipefail, ls killed
# by SIGPIPE when head stops reading would end the script).
granules=("$work/granules"/*.h5)
for f in "${granules[@]:0:20}"; do ln -sf "$f" "$work/g20/"; done

rss() { # folder label
  cat > "$work/m-$2.yaml" <<YAML
region: { bbox: [140, -50, 155, -35] }
variables: [land_segments/canopy/h_canopy, land_segments/terrain/h_te_best_fit, land_segments/canopy/canopy_h_metrics, signal_photons/ph_h]
source: { local: { path: $1 } }
output: { path: out-$2 }
YAML
  /usr/bin/time -v "$bin" run "$work/m-$2.yaml" --fresh 2> "$work/time-$2.txt" >/dev/null || true
  local kb rows seconds
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time-$2.txt")
  rows=$(grep -o '[0-9]* rows written' "$work/time-$2.txt" | cut -d' ' -f1)
  seconds=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time-$2.txt")
  echo "$2 granules: $rows rows, wall $seconds, peak RSS $((kb / 1024)) MiB" >&2
  echo "$kb"
}
small=$(rss "$work/g20" 20)
large=$(rss "$work/granules" 200)
awk -v a="$small" -v b="$large" 'BEGIN { printf "peak RSS 200/20 granules: %.2f (limit 1.30)\n", b / a }'
