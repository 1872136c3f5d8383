#!/usr/bin/env bash
# Seed 004, steps 1-2 (configs/quadratic_landscape.py): three ResNet-20 (width 10) runs on CIFAR-10
# with the same initial weights and batch order (main: lr 0.1 with drops; low1 / low2: constant
# 0.01 / 0.001), then the Hessian spectra of each run at steps 0, 6, 57 and 140 epochs.
#
# Usage: launch/quadratic_landscape.sh [ARGS] [ROOT]
#   ARGS: extra config arguments, e.g. 'jpeg75' (offline CIFAR-10 JPEG copy in $JAXLAND_DATA_DIR)
#         or 'jpeg75,smoke' (a CPU check of the whole pipeline in a few minutes); default none.
#   ROOT: where the runs go (default runs/quadratic_landscape[_ARGS]).
# Output: ROOT/<run>/ (checkpoints every epoch, trajectory/params_XXXXXXXX.npz every 50 steps,
#   batch_order/, metrics.jsonl) and ROOT/<run>/spectrum/<step>/spectrum.npz + PNGs,
#   ROOT/<run>/spectrum/top_eigenvalues.png (top-50 against step).
# Reruns resume: training continues from the last checkpoint, spectra are recomputed.
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS="${1:-}"
ROOT="${2:-runs/quadratic_landscape${ARGS:+_${ARGS//,/_}}}"
PY="${PYTHON:-.venv/bin/python}"
for run in main low1 low2; do
  "$PY" -m jaxland.main --config="configs/quadratic_landscape.py:run=${run}${ARGS:+,$ARGS}" \
    --workdir="$ROOT/$run"
done
for run in main low1 low2; do
  "$PY" -m jaxland.main --config="configs/quadratic_landscape.py:run=${run},spectrum${ARGS:+,$ARGS}" \
    --workdir="$ROOT/$run"
done
