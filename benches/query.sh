#!/usr/bin/env bash
# Query benchmark: a dataset from 8 full-size synthetic granules (all rows
# kept), then the five queries with icesat2 and DuckDB; prints the ratios.
set -euo pipefail
source "$(dirname "$0")/common.sh"
work="$bench_root/query"
venv="${ICESAT2_VENV:-$HOME/.cache/icesat2-venv}"
if [ ! -d "$work/granules" ]; then
  synth --out "$work/granules" --granules 8 --segments 20000 --seed 42 >/dev/null
fi
cat > "$work/m.yaml" <<YAML
region: { bbox: [-180, -89, 180, 89] }
variables: [land_segments/canopy/h_canopy, land_segments/terrain/h_te_best_fit, land_segments/canopy/canopy_h_metrics, land_segments/night_flag, signal_photons/ph_h]
source: { local: { path: granules } }
output: { path: out }
YAML
"$bin" run "$work/m.yaml" --fresh 2>/dev/null
"$venv/bin/python" benches/query.py "$bin" "$work/out"
