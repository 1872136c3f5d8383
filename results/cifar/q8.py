"""Issue 16, q8 (seed 001): the momentum range test against a grid of fixed momenta, per seed.

Reads each run folder questions.py's q8 command wrote (<runs>/range_momentum[_seed<N>]: the
sweep's momentum_linear.json / .csv, the grid's momentum_grid-momentum<m>.csv and the task's
summary.json), copies them into <out>/seed<N>/, and writes q8.csv / q8.json and momentum.png.

The question is whether one sweep of the momentum (0.5 -> 0.99 over 200 iterations at the
config's constant LR) picks the momentum that a grid of short runs at fixed momenta finds best.
Each seed's row gives the sweep's picks (the momentum at its peak held-out accuracy and at its
lowest smoothed loss), the grid's best by held-out accuracy at its last evaluation and by
smoothed loss (as the task's own `best_momentum`), and the regret of following the sweep: the
grid's best accuracy minus the grid's accuracy at the grid momentum nearest the sweep's pick
(points). The loss also falls because training goes on during the sweep, so its late values
are favoured; the grid is the reference.

Run:  .venv/bin/python results/cifar/q8.py [--runs=runs/cifar/jpeg75_cpu/q8]
        [--out=results/cifar/q8]
        ... q8.py --render   (q8.csv/json and the figure again from the copies in --out)
"""

import argparse
import glob
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from q6 import curve, spread  # noqa: E402  (one owner of a test's curve and the seeds' spread)

RUN_NAME = re.compile(r'range_momentum(?:_seed(\d+))?$')
SWEEP = 'momentum_linear'
GRID = re.compile(r'momentum_grid-momentum([0-9.e+-]+)\.csv$')


def collect(runs: str, out: str) -> None:
  """Copy every finished q8 run's sweep, grid curves and summary into <out>/seed<N>/."""
  for folder in sorted(glob.glob(os.path.join(runs, 'range_momentum*'))):
    match = RUN_NAME.match(os.path.basename(folder))
    summary = os.path.join(folder, 'summary.json')
    if not match or not _finished(summary):
      continue
    seed_dir = os.path.join(out, f'seed{int(match.group(1) or 0)}')
    os.makedirs(seed_dir, exist_ok=True)
    names = ['summary.json', f'{SWEEP}.json', f'{SWEEP}.csv']
    names += [os.path.basename(p) for p in glob.glob(os.path.join(folder, 'momentum_grid-*.csv'))]
    for name in names:
      shutil.copyfile(os.path.join(folder, name), os.path.join(seed_dir, name))


def _finished(path: str) -> bool:
  try:
    with open(path) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return False
  return summary.get('status') == 'done' and 'momentum_grid' in summary


def nearest(value: float, grid: list[float]) -> float:
  return min(grid, key=lambda g: abs(g - value))


def row(seed_dir: str) -> dict:
  """One seed's row of q8.csv from its copied files."""
  with open(os.path.join(seed_dir, 'summary.json')) as f:
    summary = json.load(f)
  sweep, runs = summary['tests'][SWEEP], summary['momentum_grid']['runs']
  accuracy = {float(m): r['final_val_accuracy'] for m, r in runs.items()}
  completed = {
    float(m): r['final_smooth_loss'] for m, r in runs.items() if r['status'] == 'completed'
  }
  best_by_accuracy = max(accuracy, key=lambda m: accuracy[m] if accuracy[m] is not None else -1.0)
  pick = sweep['suggestions']['peak_accuracy']
  at_pick = None if pick is None else accuracy[nearest(pick, list(accuracy))]
  out = {
    'seed': int(os.path.basename(seed_dir)[len('seed') :]),
    'learning_rate': summary['momentum_grid']['learning_rate'],
    'sweep_shape': sweep['shape'],
    'sweep_status': sweep['status'],
    'sweep_stop_momentum': sweep['stop_value'],
    'sweep_peak_accuracy': sweep['best_val_accuracy'],
    'sweep_peak_accuracy_momentum': pick,
    'sweep_minimum_loss_momentum': sweep['suggestions']['minimum_loss'],
    'grid_best_accuracy_momentum': best_by_accuracy,
    'grid_best_accuracy': accuracy[best_by_accuracy],
    'grid_best_loss_momentum': min(completed, key=completed.get) if completed else None,
    'grid_accuracy_at_sweep_pick': at_pick,
    'regret_points': None if at_pick is None else 100 * (accuracy[best_by_accuracy] - at_pick),
  }
  for m in sorted(accuracy):
    out[f'grid_accuracy_m{m:g}'] = accuracy[m]
    out[f'grid_status_m{m:g}'] = runs[f'{m:g}']['status']
  return out


def render(out: str) -> dict:
  """q8.csv, q8.json and momentum.png from the copies in `out`; returns q8.json's dict."""
  from jaxland.output import plots, tables

  seed_dirs = sorted(glob.glob(os.path.join(out, 'seed*')), key=lambda p: int(p.split('seed')[-1]))
  rows = [row(d) for d in seed_dirs]
  tables.write_csv(os.path.join(out, 'q8.csv'), rows, list(rows[0]))
  momenta = sorted(
    {float(k[len('grid_accuracy_m') :]) for r in rows for k in r if k.startswith('grid_accuracy_m')}
  )
  keys = ('sweep_peak_accuracy_momentum', 'sweep_minimum_loss_momentum', 'regret_points')
  keys += ('grid_best_accuracy', 'sweep_peak_accuracy')
  summary = {
    'dataset': 'cifar10_jpeg75',
    'rows': rows,
    'seeds': [r['seed'] for r in rows],
    **{k: spread(r[k] for r in rows) for k in keys},
    'grid_accuracy': {
      f'{m:g}': spread(r.get(f'grid_accuracy_m{m:g}') for r in rows) for m in momenta
    },
    'grid_best_accuracy_momenta': [r['grid_best_accuracy_momentum'] for r in rows],
  }
  tables.write_json(os.path.join(out, 'q8.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 2, size=(5.5, 4.0))
  dashes = ('-', '--', ':')
  for i, r in enumerate(rows):  # Each seed's row from above; its sweep curve read for the figure.
    c = curve(os.path.join(seed_dirs[i], f'{SWEEP}.csv'))
    style = dict(color=f'C{i}', linestyle=dashes[r['seed'] % 3])
    axes[0, 0].plot(
      c['eval_value'], c['val_accuracy'], marker='.', label=f'seed {r["seed"]}', **style
    )
    accuracy = [r.get(f'grid_accuracy_m{m:g}') for m in momenta]
    axes[0, 1].plot(momenta, accuracy, marker='o', label=f'grid, seed {r["seed"]}', **style)
    if r['sweep_peak_accuracy_momentum'] is not None:
      axes[0, 1].axvline(r['sweep_peak_accuracy_momentum'], color=f'C{i}', linestyle=':', lw=1)
  axes[0, 0].set_title('one sweep, 0.5 -> 0.99')
  axes[0, 1].set_title("grid of fixed momenta (dotted: the sweep's peak)", fontsize=9)
  for ax in axes[0]:
    ax.set_xlabel('momentum')
    ax.set_ylabel('held-out accuracy')
    ax.set_ylim(0.0, 1.0)  # The whole range: no axis exaggerates a gap.
    ax.legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'momentum.png'))
  return summary


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--runs', default=os.path.join(ROOT, 'runs', 'cifar', 'jpeg75_cpu', 'q8'))
  parser.add_argument('--out', default=os.path.join(HERE, 'q8'))
  parser.add_argument('--render', action='store_true', help='only re-render from --out')
  args = parser.parse_args()
  if not args.render:
    collect(args.runs, args.out)
  summary = render(args.out)
  print(json.dumps({k: v for k, v in summary.items() if k != 'rows'}))


if __name__ == '__main__':
  main()
