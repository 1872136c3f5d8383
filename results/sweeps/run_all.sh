#!/bin/bash
# Reruns every reduced seed 003 sweep of results/sweeps/ on CPU, then its report (about 25 min
# on a loaded 2-core machine). More sweeps that fit a bigger budget (same configs):
#   fashion_cnn_{dropout,batchnorm,l2,adam}: seed003_<study>:cpu,fashion,cnn
#   cifar10_jpeg75_mlp_grid: seed003_mlp_grid:cpu,jpeg75
#   bash results/sweeps/run_all.sh [sweep ...]     (default: all, in this order)
# Run dirs (checkpoints, metrics) go to runs/sweeps/<name>; tables and figures to
# results/sweeps/<name>/. A rerun skips finished points and resumes interrupted ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
export JAXLAND_DATA_DIR="${JAXLAND_DATA_DIR:-/work/shared/data}"
PY="${PY:-.venv/bin/python}"
ALL=(
  fashion_mlp_grid:seed003_mlp_grid:cpu,fashion
  fashion_cnn_grid:seed003_cnn_grid:cpu,fashion
  fashion_mlp_dropout:seed003_dropout:cpu,fashion
  fashion_mlp_l2:seed003_l2:cpu,fashion
  fashion_mlp_batchnorm:seed003_batchnorm:cpu,fashion
  fashion_mlp_nobn:seed003_batchnorm:cpu,fashion,nobn
  fashion_mlp_adam:seed003_adam:cpu,fashion
)
for item in "${ALL[@]}"; do
  IFS=: read -r name config arg <<< "${item}"
  if [[ $# -gt 0 && ! " $* " =~ " ${name} " ]]; then continue; fi
  echo "=== ${name}: $(date +%T)"
  nice -n 5 "${PY}" -m jaxland.sweep --config="configs/sweeps/${config}.py:${arg}" \
    --workdir="runs/sweeps/${name}" 2>&1 | grep -E '^\[(sweep|jaxland\] (done|diverged))' || true
  "${PY}" -m jaxland.report "runs/sweeps/${name}" --out="results/sweeps/${name}" 2>&1 | grep "^\[report" || echo "report of ${name} failed"
done
echo "=== finished: $(date +%T)"
