#!/usr/bin/env bash
# Reruns everything in results/foundation/: the demo over 3 seeds, its learning curves, the benches.
# Run from the repository root: bash results/foundation/run.sh
set -euo pipefail
PY=.venv/bin/python
OUT=results/foundation
for seed in 0 1 2; do
  $PY -m jaxland.main --config=configs/fashion_mlp.py --workdir=runs/foundation/demo_seed$seed \
    --config.seed=$seed --config.overwrite=True 2>/dev/null | grep "^\[jaxland\]" > $OUT/demo_seed$seed.log
done
$PY $OUT/plot_demo.py runs/foundation/demo_seed0 $OUT/demo_curves.png
$PY - <<'PY' > $OUT/demo_accuracy.md
import json, statistics
accs = [json.load(open(f'runs/foundation/demo_seed{s}/summary.json'))['final_test_accuracy'] for s in range(3)]
print('| run | test accuracy after 2 epochs |\n|---|---|')
for s, a in enumerate(accs):
  print(f'| configs/fashion_mlp.py seed {s} | {a:.4f} |')
print(f'| mean ± std (3 seeds) | {statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f} |')
PY
(cd bench && ../$PY pipeline.py) > $OUT/bench_pipeline.txt 2>/dev/null
(cd bench && ../$PY train_step.py --rounds 3) > $OUT/bench_train_step.txt 2>/dev/null
