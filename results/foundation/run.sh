#!/usr/bin/env bash
# Reruns everything in results/foundation/: the demo over 3 seeds, its learning curves, the benches.
# Run from the repository root: bash results/foundation/run.sh
# SMOKE=1: the same in seconds (the demo's :smoke, one-step benches), into /tmp.
set -euo pipefail
PY=.venv/bin/python
OUT=results/foundation RUNS=runs/foundation ARG='' BENCH=''
if [ "${SMOKE:-0}" = 1 ]; then
  OUT=/tmp/jaxland_results_smoke/foundation RUNS=/tmp/jaxland_results_smoke/foundation/runs
  ARG=:smoke BENCH='--steps 1'
  mkdir -p $OUT
fi
export RUNS
for seed in 0 1 2; do
  $PY -m jaxland.main --config=configs/fashion_mlp.py$ARG --workdir=$RUNS/demo_seed$seed \
    --config.seed=$seed --config.overwrite=True 2>/dev/null | grep "^\[jaxland\]" > $OUT/demo_seed$seed.log
done
$PY results/foundation/plot_demo.py $RUNS/demo_seed0 $OUT/demo_curves.png
$PY - <<'PY' > $OUT/demo_accuracy.md
import json, os, statistics
runs = os.environ['RUNS']
accs = [json.load(open(f'{runs}/demo_seed{s}/summary.json'))['final_test_accuracy'] for s in range(3)]
print('| run | test accuracy after 2 epochs |\n|---|---|')
for s, a in enumerate(accs):
  print(f'| configs/fashion_mlp.py seed {s} | {a:.4f} |')
print(f'| mean ± std (3 seeds) | {statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f} |')
PY
$PY bench/pipeline.py $BENCH > $OUT/bench_pipeline.txt 2>/dev/null
$PY bench/train_step.py --rounds 3 $BENCH > $OUT/bench_train_step.txt 2>/dev/null
