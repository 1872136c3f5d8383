"""Issue 16, q6 (seed 001): linear against log LR range tests on the fast network, per seed.

Reads each range test a questions.py-style run folder wrote (<runs>/range_<spacing>[_seed<N>]:
its <test>.json analysis and <test>.csv curve), copies both into <out>/<spacing>_seed<N>.*,
and writes q6.csv / q6.json (one row per test: shape, stop, peak accuracy and its LR, the
recommended max LR, the best accuracy past the collapse, and the share of the sweep spent below
the LR where learning starts) and range_tests.png (held-out accuracy and smoothed loss against
the LR, every seed, both spacings).

"Where learning starts" is the first LR at which the smoothed train loss has made half of its
fall (from its first value to its lowest; every iteration has one, where the held-out accuracy
is evaluated only every few); the share is the fraction of the iterations run at or below it:
seed 001's complaint is that a linear sweep spends under a tenth of itself there. A peak of the
held-out accuracy at the first evaluation (peak_at_first_eval) means the sweep's evaluations
start past the rise: its shape then reads 'flat' and its max LR is that first evaluated LR.

Run:  .venv/bin/python results/cifar/q6.py [--runs=runs/cifar/jpeg75_cpu/q6]
        [--out=results/cifar/q6]
        ... q6.py --render   (q6.csv/json and the figure again from the copies in --out)
"""

import argparse
import csv
import glob
import json
import os
import re
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

LOSS_AXIS_TOP = 3.0
RUN_NAME = re.compile(r'range_(linear|log)(?:_seed(\d+))?$')


def collect(runs: str, out: str) -> None:
  """Copy every finished test's json and csv from the run folders into `out`."""
  os.makedirs(out, exist_ok=True)
  for folder in sorted(glob.glob(os.path.join(runs, 'range_*'))):
    match = RUN_NAME.match(os.path.basename(folder))
    tests = [p for p in glob.glob(os.path.join(folder, '*.json')) if _is_analysis(p)]
    if not match or len(tests) != 1:
      continue
    spacing, seed = match.group(1), int(match.group(2) or 0)
    stem = os.path.join(out, f'{spacing}_seed{seed}')
    shutil.copyfile(tests[0], stem + '.json')
    shutil.copyfile(tests[0][: -len('.json')] + '.csv', stem + '.csv')


def _is_analysis(path: str) -> bool:
  try:
    with open(path) as f:
      return 'shape' in json.load(f)
  except (OSError, ValueError, TypeError):
    return False


def curve(path: str) -> dict:
  """The csv's columns as float lists; the held-out columns only where they were evaluated."""
  with open(path) as f:
    rows = list(csv.DictReader(f))
  out = {k: [float(r[k]) for r in rows] for k in ('value', 'smooth_loss')}
  evaluated = [r for r in rows if r['val_accuracy'] != '']
  out['eval_value'] = [float(r['value']) for r in evaluated]
  out['val_accuracy'] = [float(r['val_accuracy']) for r in evaluated]
  return out


def learning_start(values: list, smooth_loss: list) -> float | None:
  """The first value where the smoothed loss has made half of its fall to its lowest point."""
  if not smooth_loss:
    return None
  first, low = smooth_loss[0], min(smooth_loss)
  for v, loss in zip(values, smooth_loss, strict=True):
    if loss <= first - (first - low) / 2:
      return v
  return None


def row(stem: str) -> dict:
  """One test's row of q6.csv from its copied json and csv."""
  with open(stem + '.json') as f:
    analysis = json.load(f)
  c = curve(stem + '.csv')
  start = learning_start(c['value'], c['smooth_loss'])
  accuracy = c['val_accuracy']
  below = None if start is None else sum(v <= start for v in c['value']) / len(c['value'])
  spacing, seed = os.path.basename(stem).split('_seed')
  return {
    'spacing': spacing,
    'seed': int(seed),
    'shape': analysis['shape'],
    'status': analysis['status'],
    'iterations': analysis['iterations'],
    'stop_lr': analysis['stop_value'],
    'best_val_accuracy': analysis['best_val_accuracy'],
    'peak_at_first_eval': bool(accuracy) and max(accuracy) == accuracy[0],
    'peak_accuracy_lr': analysis['suggestions']['peak_accuracy'],
    'collapse_lr': analysis['suggestions']['collapse'],
    'best_accuracy_after_collapse': after_collapse(c, analysis['suggestions']['collapse']),
    'recommended_max_lr': analysis['recommended']['max_lr'],
    'robust_loss_lr': analysis['suggestions']['robust'],
    'learning_start_lr': start,
    'share_below_learning_start': below,
  }


def after_collapse(c: dict, collapse: float | None) -> float | None:
  """The best held-out accuracy evaluated past the collapse: seed 001's (iii) is a recovery."""
  if collapse is None:
    return None
  past = [a for v, a in zip(c['eval_value'], c['val_accuracy'], strict=True) if v > collapse]
  return max(past) if past else None


def spread(values) -> dict:
  """n, mean, sample std and median (an LR across seeds spreads by factors: the median says it)."""
  values = [v for v in values if v is not None]
  std = statistics.stdev(values) if len(values) > 1 else None
  mean, median = (statistics.mean(values), statistics.median(values)) if values else (None, None)
  return {'n': len(values), 'mean': mean, 'std': std, 'median': median}


def render(out: str) -> dict:
  """q6.csv, q6.json and range_tests.png from the copies in `out`; returns q6.json's dict."""
  from jaxland.output import plots, tables

  stems = sorted(p[: -len('.json')] for p in glob.glob(os.path.join(out, '*_seed*.json')))
  rows = sorted((row(s) for s in stems), key=lambda r: (r['spacing'], r['seed']))
  tables.write_csv(os.path.join(out, 'q6.csv'), rows, list(rows[0]))
  keys = ('best_val_accuracy', 'peak_accuracy_lr', 'recommended_max_lr', 'robust_loss_lr')
  keys += ('learning_start_lr', 'share_below_learning_start', 'best_accuracy_after_collapse')
  by_spacing = {}
  for spacing in dict.fromkeys(r['spacing'] for r in rows):
    mine = [r for r in rows if r['spacing'] == spacing]
    shapes = [r['shape'] for r in mine]
    by_spacing[spacing] = {
      'seeds': [r['seed'] for r in mine],
      'shapes': {s: shapes.count(s) for s in dict.fromkeys(shapes)},
      **{k: spread(r[k] for r in mine) for k in keys},
    }
  summary = {'dataset': 'cifar10_jpeg75', 'rows': rows, 'by_spacing': by_spacing}
  tables.write_json(os.path.join(out, 'q6.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 2, size=(5.5, 4.0))
  colors, dashes = {'linear': 'tab:blue', 'log': 'tab:orange'}, ('-', '--', ':')
  for r in rows:  # Each test's row from above; its curve read again for the figure.
    c = curve(os.path.join(out, f'{r["spacing"]}_seed{r["seed"]}.csv'))
    style = dict(color=colors[r['spacing']], linestyle=dashes[r['seed'] % 3])
    label = f'{r["spacing"]} seed {r["seed"]} ({r["shape"]})'
    axes[0, 0].plot(c['eval_value'], c['val_accuracy'], marker='.', label=label, **style)
    axes[0, 1].plot(c['value'], c['smooth_loss'], **style)
  axes[0, 1].set_ylim(top=LOSS_AXIS_TOP)  # A diverging sweep's last losses would flatten the rest.
  loss_name = f'smoothed train loss (axis cut at {LOSS_AXIS_TOP:g})'
  for ax, name in zip(axes[0], ('held-out accuracy', loss_name), strict=True):
    ax.set_xscale('log')
    ax.set_xlabel('learning rate (log axis; both sweeps 0.001 to 30)')
    ax.set_ylabel(name)
  axes[0, 0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'range_tests.png'))
  return summary


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--runs', default=os.path.join(ROOT, 'runs', 'cifar', 'jpeg75_cpu', 'q6'))
  parser.add_argument('--out', default=os.path.join(HERE, 'q6'))
  parser.add_argument('--render', action='store_true', help='only re-render from --out')
  args = parser.parse_args()
  if not args.render:
    collect(args.runs, args.out)
  summary = render(args.out)
  for spacing, s in summary['by_spacing'].items():
    print(spacing, json.dumps(s))


if __name__ == '__main__':
  main()
