"""Issue 16, q4 (seed 002; the thesis' sec. 3.4.2 and its Discussion's "major improvement"):
cosine warm restarts at a wrong initial learning rate, 0.1x and 10x the recipe's, with and
without repulsion. The thesis: without it the maximum accuracy diverges from cycle to cycle;
repulsion keeps it stable.

Each run restarts every t0 epochs (questions.py: 2 of the `cpu` variant's 8, so 4 cycles) and
sets an anchor every k epochs, at strength 10 (`rep`) or 0 (`norep`: virtual anchors, the
trajectory of no repulsion). Per member: the best test accuracy within each cycle, their spread
across cycles (std, and the last cycle's minus the first's: the drift), the final TTA accuracy
and the run's status (a diverged run says so).

Reads <runs>/<run>/seed=<N> (q1.collect), writes q4.csv (per member: each cycle's best, their
std and drift, final TTA, status), q4.json (per run: mean ± std over seeds; rep minus norep
paired by seed) and q4.png (test accuracy against epoch, cycles marked, every member).

Run:  .venv/bin/python results/cifar/q4.py [--runs=runs/cifar/jpeg75_cpu/q4]
        [--out=results/cifar/q4]
        ... q4.py --render   (q4.csv/json and the figure again from the copies in --out)
"""

import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import q1  # noqa: E402  (one owner of copying, reading and spreading the members)
from q3 import baselines  # noqa: E402  (rep against norep)

RUNS = ('lr0.1x_norep', 'lr0.1x_rep', 'lr10x_norep', 'lr10x_rep')
NUMBERS = ('cycle_best_std', 'cycle_best_drift', 'best_accuracy', 'final_test_accuracy')
COMPARED = NUMBERS


def cycles(schedule: dict, num_epochs: int) -> list[tuple[int, int]]:
  """The restarts' cycles as (first, last) epochs: periods t0, t0 x mult, ... (PyTorch's
  CosineAnnealingWarmRestarts in epochs); a last cycle cut by the run's end is kept."""
  out, start, period = [], 0, int(schedule['t0_epochs'])
  while start < num_epochs:
    out.append((start + 1, min(start + period, num_epochs)))
    start, period = start + period, period * int(schedule['t_mult'])
  return out


def row(name: str, summary: dict, config: dict, records: list[dict]) -> dict:
  """One member's row of q4.csv (module docstring)."""
  run, seed = q1.COPY.match(name).groups()
  accuracy = {
    e: r['test/accuracy']
    for e, r in q1.by_epoch(records).items()
    if math.isfinite(r.get('test/accuracy', math.nan))
  }
  spans = cycles(config['optim']['schedule'], config['train']['num_epochs'])
  best = [
    max((accuracy[e] for e in range(a, b + 1) if e in accuracy), default=None) for a, b in spans
  ]
  seen = [b for b in best if b is not None]
  out = {
    'run': run,
    'seed': int(seed),
    'learning_rate': config['optim']['learning_rate'],
    'strength': config['repulsion']['strength'],
    'status': summary['status'],
    'cycles': ' '.join(f'{a}-{b}' for a, b in spans),
    **{f'cycle{i + 1}_best': b for i, b in enumerate(best)},
    'cycle_best_std': statistics.stdev(seen) if len(seen) > 1 else None,
    'cycle_best_drift': seen[-1] - seen[0] if len(seen) > 1 else None,
    'best_accuracy': max(seen, default=None),
    'final_test_accuracy': summary.get('final_test_accuracy'),
  }
  return out


def render(out: str) -> dict:
  """q4.csv, q4.json and q4.png from the copies in `out`; returns q4.json's dict."""
  from jaxland.output import plots, tables

  members = q1.read_members(out)
  rows = sorted(
    (row(name, *m) for name, m in members.items()),
    key=lambda r: (RUNS.index(r['run']), r['seed']),
  )
  columns = list(dict.fromkeys(k for r in rows for k in r))  # A diverged run has fewer cycles.
  tables.write_csv(os.path.join(out, 'q4.csv'), rows, columns)
  spread = q1.by_run(rows, NUMBERS, baselines, COMPARED, ('learning_rate', 'strength', 'cycles'))
  summary = {'dataset': 'cifar10_jpeg75', 'rows': rows, 'by_run': spread}
  tables.write_json(os.path.join(out, 'q4.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 1, size=(6.0, 4.0))
  colors = dict(zip(RUNS, ('tab:blue', 'tab:orange', 'tab:green', 'tab:red'), strict=True))
  for r in rows:
    epochs = q1.by_epoch(members[f'{r["run"]}_seed{r["seed"]}'][2])
    style, label = q1.member_style(r, colors, rows[0]['seed'])
    q1.plot_epochs(axes[0, 0], epochs, 'test/accuracy', label=label, **style)
  for span in rows[0]['cycles'].split()[1:]:
    axes[0, 0].axvline(int(span.split('-')[0]) - 0.5, color='k', lw=0.5, ls=':')
  axes[0, 0].set(xlabel='epoch (dotted: a restart)', ylabel='test accuracy')
  axes[0, 0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'q4.png'))
  return summary


if __name__ == '__main__':
  q1.cli('q4', lambda runs, out: q1.collect(runs, out, RUNS), render, 'q4')
