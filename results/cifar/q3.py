"""Issue 16, q3 (seed 002): step decay and cosine warm restarts, with and without repulsion. Does
the distance follow the learning rate?

Each run sets an anchor every k epochs (questions.py: 2, 4 and 6 of the `cpu` variant's 8), at
strength 10 (`rep`) or 0 (`norep`: virtual anchors, the same trajectory as no repulsion, their
distances logged). Per member and epoch e: the mean learning rate over e's steps (the logged
optim/learning_rate), the growth of the distance to the initial weights over e and the growth of
the distance to the latest anchor set before e. The distance follows the LR when the two move
together: their Pearson correlation over the epochs.

Reads <runs>/<run>/seed=<N> (q1.collect), writes q3_epochs.csv (per member and epoch: LR and
growths), q3.csv (per member: both correlations, the mean growths, the final TTA accuracy, the
distance to the initial weights at the end), q3.json (per run: mean ± std over seeds; rep minus
norep paired by seed) and q3.png (LR, init-distance growth and anchor-distance growth against
epoch, every member).

Run:  .venv/bin/python results/cifar/q3.py [--runs=runs/cifar/jpeg75_cpu/q3]
        [--out=results/cifar/q3]
        ... q3.py --render   (q3.csv/json and the figure again from the copies in --out)
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
from q2 import anchor_epochs  # noqa: E402  (one owner of the member's anchor epochs)

RUNS = ('step_norep', 'step_rep', 'restarts_norep', 'restarts_rep')
NUMBERS = ('lr_vs_init_growth', 'lr_vs_anchor_growth', 'mean_init_growth', 'mean_anchor_growth')
NUMBERS += ('final_test_accuracy', 'init_distance_end')
COMPARED = NUMBERS


def baselines(run: str) -> tuple[str, ...]:
  return (run.replace('_rep', '_norep'),) if run.endswith('_rep') else ()


def mean_lr(records: list[dict], epoch: int, steps_per_epoch: int) -> float | None:
  """The mean logged optim/learning_rate over epoch's steps ((epoch - 1) spe, epoch spe]."""
  lo, hi = (epoch - 1) * steps_per_epoch, epoch * steps_per_epoch
  key = 'optim/learning_rate'
  lrs = [r[key] for r in records if key in r and lo < r['step'] <= hi]
  return statistics.mean(lrs) if lrs else None


def per_epoch(config: dict, records: list[dict], epochs: dict[int, dict]) -> list[dict]:
  """Epochs 1..last: mean LR, growth of the init distance and of the latest anchor's distance
  (`epochs`: q1.by_epoch of `records`)."""
  anchors = anchor_epochs(config)
  spe = next(int(r['step']) // e for e, r in sorted(epochs.items()) if e > 0 and 'step' in r)
  out = []
  for e in range(1, max(epochs) + 1):
    now, before = epochs.get(e, {}), epochs.get(e - 1, {})
    slots = [i for i, a in enumerate(anchors) if a <= e - 1]  # Set by the end of epoch e - 1.
    key = f'anchor/{slots[-1]}/distance' if slots else None
    growth = lambda k, now=now, before=before: (
      now[k] - before[k] if k and k in now and k in before else None
    )
    out.append(
      {
        'epoch': e,
        'learning_rate': mean_lr(records, e, spe),
        'init_growth': growth('anchor/init_distance'),
        'anchor': anchors[slots[-1]] if slots else None,
        'anchor_growth': growth(key),
      }
    )
  return out


def correlation(rows: list[dict], key: str) -> float | None:
  import numpy as np

  from jaxland.landscape.fits import correlation as pearson

  value = lambda r, k: np.nan if r[k] is None else r[k]
  lr = np.array([value(r, 'learning_rate') for r in rows], float)
  r = pearson(lr, np.array([value(r, key) for r in rows], float))
  return None if math.isnan(r) else r


def row(name: str, summary: dict, config: dict, records: list[dict]) -> tuple[dict, list[dict]]:
  """One member's row of q3.csv and its rows of q3_epochs.csv (module docstring)."""
  run, seed = q1.COPY.match(name).groups()
  logged = q1.by_epoch(records)
  epochs = per_epoch(config, records, logged)
  mean = lambda k: statistics.mean(x) if (x := [r[k] for r in epochs if r[k] is not None]) else None
  member = {
    'run': run,
    'seed': int(seed),
    'schedule': config['optim']['schedule']['name'],
    'strength': config['repulsion']['strength'],
    'status': summary['status'],
    'lr_vs_init_growth': correlation(epochs, 'init_growth'),
    'lr_vs_anchor_growth': correlation(epochs, 'anchor_growth'),
    'mean_init_growth': mean('init_growth'),
    'mean_anchor_growth': mean('anchor_growth'),
    'final_test_accuracy': summary.get('final_test_accuracy'),
    'init_distance_end': logged[max(logged)].get('anchor/init_distance'),
  }
  return member, [{'run': run, 'seed': int(seed), **r} for r in epochs]


def render(out: str) -> dict:
  """q3.csv, q3_epochs.csv, q3.json and q3.png from the copies in `out`; returns q3.json's dict."""
  from jaxland.output import plots, tables

  made = sorted(
    (row(name, *m) for name, m in q1.read_members(out).items()),
    key=lambda r: (RUNS.index(r[0]['run']), r[0]['seed']),
  )
  rows, epoch_rows = [r for r, _ in made], [e for _, es in made for e in es]
  tables.write_csv(os.path.join(out, 'q3.csv'), rows, list(rows[0]))
  tables.write_csv(os.path.join(out, 'q3_epochs.csv'), epoch_rows, list(epoch_rows[0]))
  spread = q1.by_run(rows, NUMBERS, baselines, COMPARED, ('schedule', 'strength'))
  summary = {'dataset': 'cifar10_jpeg75', 'rows': rows, 'by_run': spread}
  tables.write_json(os.path.join(out, 'q3.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 3, size=(4.5, 3.8))
  colors = dict(zip(RUNS, ('tab:blue', 'tab:orange', 'tab:green', 'tab:red'), strict=True))
  for r in rows:
    mine = [e for e in epoch_rows if (e['run'], e['seed']) == (r['run'], r['seed'])]
    style, label = q1.member_style(r, colors, rows[0]['seed'])
    for ax, key in zip(axes[0], ('learning_rate', 'init_growth', 'anchor_growth'), strict=True):
      points = [(e['epoch'], e[key]) for e in mine if e[key] is not None]
      if points:
        ax.plot(*zip(*points, strict=True), marker='o', ms=3, label=label, **style)
  labels = ('mean learning rate of the epoch', 'growth of the distance to init')
  labels += ('growth of the distance to the latest anchor',)
  for ax, ylabel in zip(axes[0], labels, strict=True):
    ax.set(xlabel='epoch', ylabel=ylabel)
  axes[0, 0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'q3.png'))
  return summary


if __name__ == '__main__':
  q1.cli('q3', lambda runs, out: q1.collect(runs, out, RUNS), render, 'q3')
