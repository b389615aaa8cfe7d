#!/usr/bin/env bash
# Runs every benchmark with the shipped model; pass the training-photo folder as $1 for the training benchmark.
# Usage: benchmarks/run_all.sh ../shared/data/train/bsds500 > results.txt
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}
$PY efficiency.py
$PY vs_tensorflow.py
$PY tiling.py --sweep
$PY tiling.py --precision int8 --sweep
$PY folder.py
$PY startup.py
$PY scaling.py
$PY degrid.py
$PY train_precision.py
if [ -n "${1:-}" ]; then $PY train_speed.py --data "$1"; fi
