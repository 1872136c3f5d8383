"""What test-time augmentation buys the fast CIFAR-10 runs: each finished run's final weights
evaluated on the test split at TTA level 0 (none), 1 (the mean with the mirror image) and 2
(that and two one-pixel translations: the recipe's), from its checkpoint. No retraining, so this
one part of issue 15's ablation costs seconds; whitening, lookahead and label smoothing need runs
of their own. Level 2 must reproduce the run's own recorded test accuracy (checked, printed).

Run:  JAXLAND_DATA_DIR=../shared/data .venv/bin/python results/fast/tta.py RUN_DIR [RUN_DIR ...]
        [--out=results/fast/<folder>/tta.json]
Prints a markdown table (run, accuracy per level, the run's recorded accuracy) and writes it,
with the command and the machine, as JSON to --out.
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

LEVELS = (0, 1, 2)


def accuracies(run_dir: str) -> dict:
  """{level: test accuracy} of the run's final checkpoint, and its recorded accuracy."""
  import jax

  from jaxland.data import pipeline
  from jaxland.rundir import artifacts, checkpoints
  from jaxland.train import loop

  params, batch_stats, step = checkpoints.load_params(run_dir)
  out = {'run': run_dir, 'step': int(step)}
  config = artifacts.load_config(run_dir)
  with tempfile.TemporaryDirectory() as scratch:
    run = loop.build_run(config, scratch, writer=None)
  placed = pipeline.put_global((params, batch_stats), pipeline.replicated(run.mesh))
  for level in LEVELS:  # The run's own test evaluation, rebuilt at each TTA level.
    run.config.train.tta = level
    run.eval_fns['test'] = jax.jit(loop.split_eval_fns(run, *run.device_data['test'])[0])
    out[f'tta{level}'] = float(run.evaluate('test', *placed)['accuracy'])
  with open(os.path.join(run_dir, 'summary.json')) as f:
    out['recorded'] = json.load(f).get('final_test_accuracy')
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('runs', nargs='+')
  parser.add_argument('--out', default='')
  args = parser.parse_args()
  rows = [accuracies(r) for r in args.runs]
  lines = ['| run | step | TTA 0 | TTA 1 | TTA 2 | recorded |', '|---|---|---|---|---|---|']
  for r in rows:
    cells = [os.path.basename(r['run']), r['step'], *(f'{r[f"tta{k}"]:.4f}' for k in LEVELS)]
    lines.append('| ' + ' | '.join(map(str, cells)) + f' | {r["recorded"]} |')
  print('\n'.join(lines))
  if args.out:
    sys.path.insert(0, os.path.join(ROOT, 'bench'))
    import common  # bench/common.py: the machine's one-line description.

    record = {'command': ' '.join(['python', *sys.argv]), 'machine': common.machine(), 'rows': rows}
    with open(args.out, 'w') as f:
      json.dump(record, f, indent=1)


if __name__ == '__main__':
  main()
