#!/usr/bin/env bash
# End-to-end benchmark: `icesat2 run` beside the notebook's method, a skilled
# Python version and the inflate floor, on the same 40 full-size synthetic
# granules (generated once, 2.9 GB), in one run; median of 5 (REPEATS).
#   small: the notebook's polygon, 20 granules, 8 variables
#   bulk:  a 3 x 3 degree box around it, 40 granules, 8 variables; also
#          one core (taskset) against all of them
# Prints seconds, rows per second and the ratios, and checks that every
# method produced the same rows. See benches/e2e.py for the methods.
set -euo pipefail
source "$(dirname "$0")/common.sh"
work="$bench_root/e2e"
venv="${BENCH_VENV:-$HOME/.cache/icesat2-bench-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r benches/requirements.txt
if [ ! -f "$work/granules/.complete" ]; then
  rm -rf "$work/granules"
  synth --out "$work/granules" --granules 40 --segments 20000 --seed 17 --near 147.368,-43.143 >/dev/null
  touch "$work/granules/.complete"
fi
"$venv/bin/python" benches/e2e.py run --bin "$bin" --granules "$work/granules" --work "$work" --repeats "${REPEATS:-5}"
