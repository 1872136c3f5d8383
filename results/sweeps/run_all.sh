#!/bin/bash
# Reruns every reduced seed 003 sweep of results/sweeps/ on CPU, then its report (about an hour
# on a loaded 2-core machine).
#   bash results/sweeps/run_all.sh [sweep ...]     (default: all, in this order)
# Run dirs (checkpoints, metrics) go to runs/sweeps/<name>; tables and figures to
# results/sweeps/<name>/. A rerun skips finished points and resumes interrupted ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
export JAXLAND_DATA_DIR="${JAXLAND_DATA_DIR:-$(cd ../shared/data 2>/dev/null && pwd)}"
PY="${PY:-.venv/bin/python}"
RUNS=runs/sweeps RES=results/sweeps SMOKE_ARG=''
if [ "${SMOKE:-0}" = 1 ]; then  # Every sweep's smoke variant; runs and outputs under /tmp.
  RUNS=/tmp/jaxland_results_smoke/sweeps/runs RES=/tmp/jaxland_results_smoke/sweeps SMOKE_ARG=,smoke
fi
ALL=(
  fashion_mlp_grid:seed003_mlp_grid:cpu,fashion
  fashion_cnn_grid:seed003_cnn_grid:cpu,fashion
  fashion_mlp_dropout:seed003_dropout:cpu,fashion
  fashion_mlp_l2:seed003_l2:cpu,fashion
  fashion_mlp_batchnorm:seed003_batchnorm:cpu,fashion
  fashion_mlp_nobn:seed003_batchnorm:cpu,fashion,nobn
  fashion_mlp_adam:seed003_adam:cpu,fashion
  fashion_cnn_dropout:seed003_dropout:cpu,fashion,cnn
  fashion_cnn_l2:seed003_l2:cpu,fashion,cnn
  fashion_cnn_batchnorm:seed003_batchnorm:cpu,fashion,cnn
  fashion_cnn_nobn:seed003_batchnorm:cpu,fashion,cnn,nobn
  fashion_cnn_adam:seed003_adam:cpu,fashion,cnn
  cifar10_jpeg75_mlp_grid:seed003_mlp_grid:cpu,jpeg75
  cifar10_jpeg75_cnn_grid:seed003_cnn_grid:cpu,jpeg75
  cifar10_jpeg75_mlp_seeds:seed003_mlp_vs_cnn:cpu,jpeg75
  cifar10_jpeg75_cnn_seeds:seed003_mlp_vs_cnn:cpu,jpeg75,cnn
)
for item in "${ALL[@]}"; do
  IFS=: read -r name config arg <<< "${item}"
  if [[ $# -gt 0 && ! " $* " =~ " ${name} " ]]; then continue; fi
  echo "=== ${name}: $(date +%T)"
  nice -n 5 "${PY}" -m jaxland.sweep --config="configs/sweeps/${config}.py:${arg}${SMOKE_ARG}" \
    --workdir="${RUNS}/${name}" 2>&1 | grep -E '^\[(sweep|jaxland\] (done|diverged))' || true
  "${PY}" -m jaxland.report "${RUNS}/${name}" --out="${RES}/${name}" 2>&1 | grep "^\[report" || echo "report of ${name} failed"
done
# Two sweeps in one report each (model x LR, BatchNorm x LR, MLP vs CNN over seeds), once both ran.
combined() {  # combined OUT "SWEEP SWEEP" [report flags]
  local out=$1 dirs=() d
  for d in $2; do
    [[ -d "${RUNS}/${d}" ]] || return 0
    dirs+=("${RUNS}/${d}")
  done
  "${PY}" -m jaxland.report "${dirs[@]}" --out="${RES}/${out}" --group_by=sweep "${@:3}" \
    2>&1 | grep "^\[report" || echo "report ${out} failed"
}
LR_MAP=--heatmap=sweep,optim.learning_rate
combined fashion_mlp_vs_cnn "fashion_mlp_grid fashion_cnn_grid" "${LR_MAP}"
combined fashion_mlp_bn_vs_nobn "fashion_mlp_batchnorm fashion_mlp_nobn" "${LR_MAP}"
combined fashion_cnn_bn_vs_nobn "fashion_cnn_batchnorm fashion_cnn_nobn" "${LR_MAP}"
combined cifar10_jpeg75_mlp_vs_cnn "cifar10_jpeg75_mlp_grid cifar10_jpeg75_cnn_grid" --colour_by=sweep
combined cifar10_jpeg75_mlp_vs_cnn_seeds "cifar10_jpeg75_mlp_seeds cifar10_jpeg75_cnn_seeds" --colour_by=sweep
echo "=== finished: $(date +%T)"
