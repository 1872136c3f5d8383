"""Issue 16, q1 (seed 002): the distance to an anchor with and without repulsion on the fast
network, by strength {0, 1, 10, 100} (width 10) and width {1, 100} (strength 10), each a
population over seeds.

Reads every member of questions.py's q1 runs (<runs>/<run>/seed=<N>: summary.json, metrics.jsonl,
config.json), copies them into <out>/<run>_seed<N>.{summary.json,jsonl,config.json}, and writes
q1.csv (one row per member: its strength, width and anchor epoch; test accuracy at the anchor, one
epoch after it, its lowest after it and the drop to that, the first epoch after the lowest one
back at the anchor's accuracy (recovery), the final TTA accuracy; the distance to the anchor one
epoch after it and at the end, its growth per epoch, the distance to the initial weights at the
end), q1.json (per run: mean ± std over seeds, and the differences from strength 0 paired by seed)
and q1.png (test accuracy and the distance to the anchor against epoch, every member).

Run:  .venv/bin/python results/cifar/q1.py [--runs=runs/cifar/jpeg75_cpu/q1]
        [--out=results/cifar/q1]
        ... q1.py --render   (q1.csv/json and the figure again from the copies in --out)
"""

import argparse
import glob
import json
import math
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from q6 import spread  # noqa: E402  (one owner of the seeds' n / mean / std / median)
from q7 import paired  # noqa: E402  (one owner of the by-seed differences)

RUNS = ('strength0', 'strength1', 'strength10', 'strength100', 'width1', 'width100')
BASELINE = 'strength0'  # The virtual anchor: the same run's drift with no force.
MEMBER = re.compile(r'seed=(\d+)$')
COPY = re.compile(r'([\w.]+)_seed(\d+)$')  # A copy's name in --out: <run>_seed<N>.
FILES = ('summary.json', 'metrics.jsonl', 'config.json')
SUFFIXES = ('.summary.json', '.jsonl', '.config.json')  # Their copies' suffixes, in that order.


def collect(
  runs: str,
  out: str,
  names: tuple[str, ...] = RUNS,
  extra: dict | None = None,
  copy_as: dict | None = None,
) -> None:
  """Copy each finished member's summary, metrics and config (one without a summary is skipped)
  of the runs `names` under `runs`, and the files of `extra` ({path in the member: suffix})
  that it has, as <copy_as[run] or run>_seed<N> (q2-q5 collect theirs with it)."""
  os.makedirs(out, exist_ok=True)
  for run in names:
    for member in sorted(glob.glob(os.path.join(runs, run, 'seed=*'))):
      match = MEMBER.search(member)
      if not match or not os.path.exists(os.path.join(member, 'summary.json')):
        continue
      stem = os.path.join(out, f'{(copy_as or {}).get(run, run)}_seed{match.group(1)}')
      for name, suffix in zip(FILES, SUFFIXES, strict=True):
        shutil.copyfile(os.path.join(member, name), stem + suffix)
      for name, suffix in (extra or {}).items():
        if os.path.exists(os.path.join(member, name)):
          shutil.copyfile(os.path.join(member, name), stem + suffix)


def read_member(stem: str) -> tuple[dict, dict, list[dict]]:
  """(summary, config, metrics records) of one copied member."""
  from jaxland.output import metrics

  with open(stem + '.summary.json') as f:
    summary = json.load(f)
  with open(stem + '.config.json') as f:
    config = json.load(f)
  return summary, config, metrics.read_jsonl(stem + '.jsonl')


def read_members(out: str) -> dict[str, tuple[dict, dict, list[dict]]]:
  """{copy name (<run>_seed<N>): read_member} of every copy in `out`, each read once."""
  stems = [p[: -len('.summary.json')] for p in glob.glob(os.path.join(out, '*.summary.json'))]
  return {os.path.basename(stem): read_member(stem) for stem in stems}


def by_epoch(records: list[dict]) -> dict[int, dict]:
  """{epoch: every scalar logged with that epoch} (the eval, the anchor probe, the epoch time)."""
  out = {}
  for record in records:
    if 'epoch' in record:
      out.setdefault(int(record['epoch']), {}).update(record)
  return out


def recovery_epoch(accuracy: dict[int, float], anchor: int) -> int | None:
  """The first epoch after the lowest post-anchor accuracy at or above the anchor's; None if
  none (or no drop: the lowest is not below the anchor's accuracy)."""
  after = {e: a for e, a in accuracy.items() if e > anchor}
  if anchor not in accuracy or not after:
    return None
  lowest = min(after, key=after.get)
  if after[lowest] >= accuracy[anchor]:
    return None
  return next((e for e in sorted(after) if e > lowest and after[e] >= accuracy[anchor]), None)


def row(name: str, summary: dict, config: dict, records: list[dict]) -> dict:
  """One member's row of q1.csv (module docstring) from its copies."""
  run, seed = COPY.match(name).groups()
  epochs = by_epoch(records)
  anchor = int(config['repulsion']['anchor_epochs'][0])
  accuracy = {e: r['test/accuracy'] for e, r in epochs.items() if 'test/accuracy' in r}
  distance = {e: r['anchor/0/distance'] for e, r in epochs.items() if 'anchor/0/distance' in r}
  last = max(epochs)
  after = [a for e, a in accuracy.items() if e > anchor]
  lowest = min(after) if after else None
  at_anchor = accuracy.get(anchor)
  end_distance, next_distance = distance.get(last), distance.get(anchor + 1)
  growth = None
  if end_distance is not None and next_distance is not None and last > anchor + 1:
    growth = (end_distance - next_distance) / (last - anchor - 1)
  return {
    'run': run,
    'seed': int(seed),
    'strength': config['repulsion']['strength'],
    'width': config['repulsion']['width'],
    'anchor_epoch': anchor,
    'last_epoch': last,
    'status': summary['status'],
    'accuracy_at_anchor': at_anchor,
    'accuracy_next_epoch': accuracy.get(anchor + 1),
    'lowest_accuracy_after': lowest,
    'drop': None if lowest is None or at_anchor is None else at_anchor - lowest,
    'recovery_epoch': recovery_epoch(accuracy, anchor),
    'final_test_accuracy': summary.get('final_test_accuracy'),
    'distance_next_epoch': next_distance,
    'distance_end': end_distance,
    'distance_growth_per_epoch': growth,
    'init_distance_end': epochs[last].get('anchor/init_distance'),
  }


NUMBERS = (  # The rows' measurements that by_run spreads over seeds.
  'accuracy_at_anchor',
  'accuracy_next_epoch',
  'lowest_accuracy_after',
  'drop',
  'final_test_accuracy',
  'distance_next_epoch',
  'distance_end',
  'distance_growth_per_epoch',
  'init_distance_end',
)
COMPARED = ('final_test_accuracy', 'accuracy_next_epoch', 'distance_end')  # Paired with strength 0.


def by_run(
  rows: list[dict],
  numbers: tuple[str, ...] = NUMBERS,
  baselines=lambda run: () if run == BASELINE else (BASELINE,),
  compared: tuple[str, ...] = COMPARED,
  labels: tuple[str, ...] = ('strength', 'width'),
) -> dict:
  """Per run: its seeds, `labels` (its first row's), mean ± std of each of `numbers`, and for each
  of `baselines(run)`, the differences in `compared` from it paired by seed (accuracies in
  points). q2-q5 spread theirs with it."""
  out = {}
  for run in dict.fromkeys(r['run'] for r in rows):
    mine = [r for r in rows if r['run'] == run]
    out[run] = {
      'seeds': [r['seed'] for r in mine],
      **{k: mine[0][k] for k in labels},
      **{k: spread(r[k] for r in mine) for k in numbers},
    }
    for other in baselines(run):
      base = {r['seed']: r for r in rows if r['run'] == other}
      out[run][f'minus_{other}'] = {
        k: paired(
          {r['seed']: r[k] for r in mine if r[k] is not None},
          {s: b[k] for s, b in base.items() if b[k] is not None},
          unit='points' if 'accuracy' in k else '',
        )
        for k in compared
      }
  return out


def member_style(row: dict, colors: dict, first_seed: int) -> tuple[dict, str | None]:
  """(line style, legend label) of one member's curve in q1-q5's figures: its run's colour, a
  dash per seed, the run's name on its first seed only."""
  style = dict(color=colors[row['run']], linestyle=('-', '--', ':')[row['seed'] % 3], lw=1)
  return style, row['run'] if row['seed'] == first_seed else None


def plot_epochs(ax, epochs: dict[int, dict], key: str, **style) -> None:
  """One member's finite values of `key` against epoch (by_epoch's dict), if it logged any."""
  points = sorted((e, x[key]) for e, x in epochs.items() if key in x and math.isfinite(x[key]))
  if points:
    ax.plot(*zip(*points, strict=True), marker='o', ms=3, **style)


def render(out: str) -> dict:
  """q1.csv, q1.json and q1.png from the copies in `out`; returns q1.json's dict."""
  from jaxland.output import plots, tables

  members = read_members(out)
  rows = sorted(
    (row(name, *member) for name, member in members.items()),
    key=lambda r: (RUNS.index(r['run']), r['seed']),
  )
  tables.write_csv(os.path.join(out, 'q1.csv'), rows, list(rows[0]))
  summary = {'dataset': 'cifar10_jpeg75', 'rows': rows, 'by_run': by_run(rows)}
  tables.write_json(os.path.join(out, 'q1.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 2, size=(5.5, 4.0))
  colors = dict(
    zip(RUNS, ('k', 'tab:blue', 'tab:orange', 'tab:red', 'tab:green', 'tab:purple'), strict=True)
  )
  for r in rows:
    epochs = by_epoch(members[f'{r["run"]}_seed{r["seed"]}'][2])
    style, label = member_style(r, colors, rows[0]['seed'])
    for ax, key in zip(axes[0], ('test/accuracy', 'anchor/0/distance'), strict=True):
      plot_epochs(ax, epochs, key, label=label, **style)
  anchor = rows[0]['anchor_epoch']
  for ax in axes[0]:
    ax.axvline(anchor, color='k', lw=0.5, ls=':')
  axes[0, 0].set(xlabel='epoch', ylabel='test accuracy (TTA)')
  axes[0, 1].set(xlabel='epoch', ylabel=f'L2 distance to the anchor (epoch {anchor})')
  axes[0, 0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'q1.png'))
  return summary


def cli(question: str, collect_into, render_from, runs: str) -> None:
  """q1-q5's command line: --runs (default runs/cifar/jpeg75_cpu/<runs>), --out (default
  results/cifar/<question>), --render (only re-render from --out); prints each run's spread."""
  parser = argparse.ArgumentParser()
  parser.add_argument('--runs', default=os.path.join(ROOT, 'runs', 'cifar', 'jpeg75_cpu', runs))
  parser.add_argument('--out', default=os.path.join(HERE, question))
  parser.add_argument('--render', action='store_true', help='only re-render from --out')
  args = parser.parse_args()
  if not args.render:
    collect_into(args.runs, args.out)
  for name, s in render_from(args.out)['by_run'].items():
    print(name, json.dumps(s))


if __name__ == '__main__':
  cli('q1', collect, render, 'q1')
