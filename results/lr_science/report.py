"""Tables and figures of results/lr_science from results.json and the range tests' CSV files.

    .venv/bin/python results/lr_science/report.py      (run_all.py calls it at the end)

Writes tables.md (range tests, smoothing sensitivity, grids, suggestion errors, schedules) and
grid_mlp.png (test accuracy vs peak LR per schedule, with the range test's suggestions).
"""

import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxland.lr import suggest as lr_suggest  # noqa: E402

RULES = ('steepest', 'minimum_10', 'valley', 'robust', 'peak_accuracy', 'collapse')
MATCHING_TEST = 'mlp_log_m0.9_wd5e-4'  # Same optimizer settings as the schedule runs.


def fmt(x, spec='.3g'):
  return '-' if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def range_rows(results):
  for group in ('range', 'cifar_range'):
    for test_dir, summary in results.get(group, {}).items():
      for name, a in summary.get('tests', {}).items():
        yield test_dir, name, a, summary['command']


def range_table(results):
  lines = [
    '| test | curve | stopped at | shape | steepest | min/10 | valley | robust | peak acc |'
    ' collapse | max_lr / min_lr |',
    '|' + '---|' * 11,
  ]
  for test_dir, name, a, _ in range_rows(results):
    s, rec = a['suggestions'], a.get('recommended') or {}
    stop = f'{a["status"]} {fmt(a["stop_value"])}' if a['stop_value'] else a['status']
    bounds = f'{fmt(rec.get("max_lr"))} / {fmt(rec.get("min_lr"))}' if rec else '-'
    lines.append(
      f'| {test_dir} | {name} | {stop} | {a["shape"]} | '
      + ' | '.join(fmt(s.get(r)) for r in RULES)
      + f' | {bounds} |'
    )
  return lines


def read_csv(path):
  with open(path) as f:
    rows = list(csv.DictReader(f))
  return {k: np.array([float(r[k]) if r[k] != '' else np.nan for r in rows]) for k in rows[0]}


def ema(losses, beta):
  avg, out = 0.0, []
  for i, x in enumerate(losses):
    avg = beta * avg + (1 - beta) * x
    out.append(avg / (1 - beta ** (i + 1)))
  return np.asarray(out)


def smoothing_table(results, out):
  lines = [
    '| test | beta | steepest | min/10 | valley | robust |',
    '|---|---|---|---|---|---|',
  ]
  for test_dir, name, a, _ in range_rows(results):
    path = os.path.join(out, 'range', test_dir, f'{name}.csv')
    if a['param'] != 'learning_rate' or a['spacing'] != 'log' or not os.path.exists(path):
      continue
    data = read_csv(path)
    for beta in (0.98, 0.9, 0.0):
      s = lr_suggest.loss_suggestions(data['value'], ema(data['loss'], beta))
      lines.append(
        f'| {test_dir}/{name} | {beta} | '
        + ' | '.join(fmt(s[r]) for r in lr_suggest.LOSS_RULES)
        + ' |'
      )
  return lines


def grid_table(grid):
  schedules = list(dict.fromkeys(r['schedule'] for r in grid['rows']))
  lrs = sorted(set(r['lr'] for r in grid['rows']))
  lines = ['| schedule | ' + ' | '.join(f'{lr:g}' for lr in lrs) + ' | best (val) |']
  lines.append('|' + '---|' * (len(lrs) + 2))
  for s in schedules:
    cells = []
    for lr in lrs:
      r = next((r for r in grid['rows'] if r['schedule'] == s and r['lr'] == lr), None)
      cells.append('-' if r is None else fmt(r['test_accuracy'], '.4f'))
    lines.append(f'| {s} | ' + ' | '.join(cells) + f' | {grid["best_lr_by_val"].get(s, "-")} |')
  return lines


def grid_curve(grid, schedule, key='test_accuracy'):
  rows = sorted((r for r in grid['rows'] if r['schedule'] == schedule), key=lambda r: r['lr'])
  lr = np.array([r['lr'] for r in rows])
  acc = np.array([r[key] if r['status'] == 'done' else np.nan for r in rows], float)
  return lr, acc


def at(lr_grid, acc, value):
  """Test accuracy interpolated in log LR at `value` (NaN outside the grid or past divergence)."""
  if value is None or not lr_grid[0] <= value <= lr_grid[-1]:
    return np.nan
  return float(np.interp(np.log(value), np.log(lr_grid), acc))


def suggestion_error_table(results, test=MATCHING_TEST, grid_key='grid_mlp'):
  a = results['range'][test]['tests']['learning_rate_log']
  grid = results[grid_key]
  rules = dict(a['suggestions'])
  rules['recommended max_lr'] = a['recommended']['max_lr']
  schedules = list(grid['best_lr_by_val'])
  head = '| rule | value | ' + ' | '.join(f'{s}: x best (acc)' for s in schedules) + ' |'
  lines = [head, '|' + '---|' * (len(schedules) + 2)]
  for rule, value in rules.items():
    cells = []
    for s in schedules:
      lr, acc = grid_curve(grid, s)
      best = grid['best_lr_by_val'][s]
      ratio = '-' if value is None else f'{value / best:.2g}'
      cells.append(f'{ratio} ({fmt(at(lr, acc, value), ".3f")})')
    lines.append(f'| {rule} | {fmt(value)} | ' + ' | '.join(cells) + ' |')
  best_row = []
  for s in schedules:
    lr, acc = grid_curve(grid, s)
    best_row.append(
      f'{grid["best_lr_by_val"][s]:g} ({fmt(at(lr, acc, grid["best_lr_by_val"][s]), ".3f")})'
    )
  lines.append('| grid best (by val) | | ' + ' | '.join(best_row) + ' |')
  return lines


def schedules_table(block):
  lines = ['| schedule | peak lr | test accuracy (mean +- std, n) |', '|---|---|---|']
  for s, t in block['table'].items():
    lines.append(f'| {s} | {t["lr"]:g} | {t["mean"]:.4f} +- {t["std"]:.4f} ({t["n"]}) |')
  return lines


def grid_figure(results, path, test=MATCHING_TEST):
  grid = results['grid_mlp']
  a = results['range'][test]['tests']['learning_rate_log']
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for s in grid['best_lr_by_val']:
    lr, acc = grid_curve(grid, s)
    ax.plot(lr, acc, 'o-', label=s)
  marks = dict(a['suggestions'])
  for (rule, value), color in zip(marks.items(), plt.cm.tab10.colors[5:], strict=False):
    if value is not None:
      ax.axvline(value, ls=':', color=color, label=f'{rule} {value:.3g}')
  ax.set_xscale('log')
  ax.set_xlabel('peak learning rate (3 epochs, momentum 0.9, wd 5e-4)')
  ax.set_ylabel('test accuracy (seed 0)')
  lows = [v for s in grid['best_lr_by_val'] for v in grid_curve(grid, s)[1] if np.isfinite(v)]
  ax.set_ylim(max(0.7, min(lows) - 0.01), max(lows) + 0.01)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, ncol=2)
  ax.set_title('Fashion-MNIST MLP: grid of full runs vs range-test suggestions')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(here: str = HERE):
  """tables.md and grid_mlp.png in `here` from its results.json (run_all.py --smoke: elsewhere)."""
  results = json.load(open(os.path.join(here, 'results.json')))
  out = [f'# lr_science tables (generated by report.py)\n\nHardware: {results["hardware"]}\n']
  out += ['## Range tests', ''] + range_table(results) + ['']
  out += ['Commands:', '']
  out += [f'- {d}: `{c}`' for d, c in dict((d, c) for d, _, _, c in range_rows(results)).items()]
  out += ['', '## Smoothing sensitivity (suggestions recomputed from the raw losses)', '']
  out += smoothing_table(results, here) + ['']
  if 'grid_mlp' in results:
    out += ['## Grid of full runs (test accuracy, seed 0)', ''] + grid_table(results['grid_mlp'])
    out += ['', f'## Suggestion rules vs grid best ({MATCHING_TEST})', '']
    out += suggestion_error_table(results) + ['']
    grid_figure(results, os.path.join(here, 'grid_mlp.png'))
  for key, title in (
    ('schedules_mlp_range', 'Schedules at the range test LR (Fashion-MNIST MLP)'),
    ('schedules_mlp_grid', "Schedules at each one's grid-best LR (Fashion-MNIST MLP)"),
    ('schedules_cifar_range', 'Schedules at the range test LR (cifar10_jpeg75 convnet)'),
  ):
    if key in results:
      out += [f'## {title}', ''] + schedules_table(results[key]) + ['']
  seconds = results.get('seconds', {})
  out += ['## Wall time per phase (s)', '', json.dumps({k: round(v) for k, v in seconds.items()})]
  with open(os.path.join(here, 'tables.md'), 'w') as f:
    f.write('\n'.join(out) + '\n')
  print('\n'.join(out))


if __name__ == '__main__':
  main()
