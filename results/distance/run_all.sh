#!/usr/bin/env bash
# Reruns everything in results/distance/: 63 short Fashion-MNIST MLP runs (experiments.py, about
# 15 s each on the 2-core CPU; finished runs are skipped), the repulsion benchmark, then every
# figure and table (analyse.py). Run from the repository root: bash results/distance/run_all.sh
# SMOKE=1 runs the same at seconds-to-minutes scale into /tmp/jaxland_results_smoke/distance.
set -euo pipefail
PY=.venv/bin/python
OUT=results/distance
if [ "${SMOKE:-0}" = 1 ]; then
  $PY $OUT/experiments.py --smoke
  $PY bench/repulsion.py --models=mlp --rounds=1 --steps=2 > /dev/null
  $PY $OUT/analyse.py --smoke
  exit 0
fi
nice -n 5 $PY $OUT/experiments.py
{ echo "Command: \`nice -n 5 .venv/bin/python bench/repulsion.py\`"; echo; nice -n 5 $PY bench/repulsion.py 2>/dev/null | grep -v "^\[jaxland\]"; } > $OUT/bench_repulsion.md
nice -n 5 $PY $OUT/analyse.py
