"""Issue 16, q5 (seeds 002 and 000): snapshot ensembles against warm-restart snapshot ensembles,
by repulsion strength: accuracy as members are added, and agreement and error correlation.

Runs (questions.py): snapshots every k epochs (2, 4, 6 of the `cpu` variant's 8) with an anchor
at each, at strength 0 (virtual), 1 and 10 (q2's sum_l2 run, read from its folder); and warm
restarts every 2 epochs with a snapshot at each restart and no repulsion. After training, the
ensemble task on each member (<member>/ensemble/: its snapshots and final model on the 10,000
test images, equal weights, no TTA) gives the accuracy after each added member, the pairwise
agreement, error correlation and parameter distance.

Reads <runs>/q5/<run>/seed=<N> and <runs>/q2/sum_l2/seed=<N> (q1.collect, with the ensemble
task's summary.json and pairs.csv), writes q5.csv (per member: its members' accuracies and the
ensemble's after each, whether each added member raised it, the gain over the final model, the
mean pairwise agreement, error correlation and parameter distance over distinct members, the
final TTA accuracy of the run), q5.json (per run: mean ± std over seeds; differences from strength
0 paired by seed) and q5.png (ensemble accuracy against members, and error correlation against
strength).

Run:  .venv/bin/python results/cifar/q5.py [--runs=runs/cifar/jpeg75_cpu] [--out=results/cifar/q5]
        ... q5.py --render   (q5.csv/json and the figure again from the copies in --out)
"""

import csv
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import q1  # noqa: E402  (one owner of copying, reading and spreading the members)

RUNS = ('snapshots_s0', 'snapshots_s1', 'snapshots_s10', 'restart_snapshots')
FROM_Q2 = {'snapshots_s10': 'sum_l2'}  # questions.py's '@same_as': read from q2's folder.
BASELINE = 'snapshots_s0'
ENSEMBLE = {'ensemble/summary.json': '.ensemble.json', 'ensemble/pairs.csv': '.pairs.csv'}
PAIRS = ('agreement', 'error_correlation', 'param_distance')
NUMBERS = ('ensemble_accuracy', 'final_member_accuracy', 'gain', 'last_member_gain')
NUMBERS += tuple(f'mean_{k}' for k in PAIRS) + ('final_test_accuracy',)
COMPARED = ('ensemble_accuracy', 'gain', 'mean_agreement', 'mean_error_correlation')


def collect(runs: str, out: str) -> None:
  """Copies every member (q1.collect) with its ensemble files, q2's under q5's run name."""
  q1.collect(os.path.join(runs, 'q5'), out, tuple(r for r in RUNS if r not in FROM_Q2), ENSEMBLE)
  as_q5 = {theirs: mine for mine, theirs in FROM_Q2.items()}
  q1.collect(os.path.join(runs, 'q2'), out, tuple(as_q5), ENSEMBLE, copy_as=as_q5)


def mean_pairs(path: str) -> dict:
  """Mean of each pairwise metric over distinct members (a != b) of an ensemble's pairs.csv."""
  with open(path) as f:
    rows = [r for r in csv.DictReader(f) if r['a'] != r['b']]
  return {f'mean_{k}': statistics.mean(float(r[k]) for r in rows) if rows else None for k in PAIRS}


def row(out: str, name: str, summary: dict, config: dict) -> dict:
  """One member's row of q5.csv (module docstring); ensemble numbers None before its task ran."""
  run, seed = q1.COPY.match(name).groups()
  stem = os.path.join(out, name)
  member = {
    'run': run,
    'seed': int(seed),
    'strength': config['repulsion']['strength'],
    'schedule': config['optim']['schedule']['name'],
    'status': summary['status'],
    'final_test_accuracy': summary.get('final_test_accuracy'),
  }
  if not os.path.exists(stem + '.ensemble.json'):
    return member | dict.fromkeys(('members', *NUMBERS[:-1], 'rises_every_member'))
  with open(stem + '.ensemble.json') as f:
    ensemble = json.load(f)
  cumulative = ensemble['cumulative_accuracy']
  rises = [b > a for a, b in zip(cumulative, cumulative[1:], strict=False)]
  return member | {
    'members': ' '.join(m.replace('epoch ', 'e') for m in ensemble['members']),
    'member_accuracy': ' '.join(f'{a:.4f}' for a in ensemble['member_accuracy']),
    'cumulative_accuracy': ' '.join(f'{a:.4f}' for a in cumulative),
    'ensemble_accuracy': ensemble['ensemble_accuracy'],
    'final_member_accuracy': ensemble['member_accuracy'][-1],
    'gain': ensemble['ensemble_accuracy'] - ensemble['member_accuracy'][-1],
    'last_member_gain': cumulative[-1] - cumulative[-2] if len(cumulative) > 1 else None,
    'rises_every_member': all(rises),
    **mean_pairs(stem + '.pairs.csv'),
  }


def render(out: str) -> dict:
  """q5.csv, q5.json and q5.png from the copies in `out`; returns q5.json's dict."""
  from jaxland.output import plots, tables

  members = q1.read_members(out)
  rows = sorted(
    (row(out, name, summary, config) for name, (summary, config, _) in members.items()),
    key=lambda r: (RUNS.index(r['run']), r['seed']),
  )
  columns = list(dict.fromkeys(k for r in rows for k in r))
  tables.write_csv(os.path.join(out, 'q5.csv'), rows, columns)
  baselines = lambda run: () if run == BASELINE else (BASELINE,)
  spread = q1.by_run(rows, NUMBERS, baselines, COMPARED, ('strength', 'schedule'))
  for run, s in spread.items():
    s['rises_every_member'] = [r['rises_every_member'] for r in rows if r['run'] == run]
  summary = {'dataset': 'cifar10_jpeg75', 'rows': rows, 'by_run': spread}
  tables.write_json(os.path.join(out, 'q5.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 2, size=(5.0, 4.0))
  colors = dict(zip(RUNS, ('k', 'tab:blue', 'tab:orange', 'tab:green'), strict=True))
  for r in rows:
    if r.get('cumulative_accuracy') is None:
      continue
    style, label = q1.member_style(r, colors, rows[0]['seed'])
    cumulative = [float(a) for a in r['cumulative_accuracy'].split()]
    axes[0, 0].plot(
      range(1, len(cumulative) + 1), cumulative, marker='o', ms=3, label=label, **style
    )
    marker = 's' if r['run'] == 'restart_snapshots' else 'o'
    axes[0, 1].plot(r['strength'], r['mean_error_correlation'], marker, color=colors[r['run']])
  from matplotlib import ticker

  axes[0, 0].xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # Members are counted.
  axes[0, 1].set_xscale('symlog', linthresh=1.0)  # Strengths 0, 1, 10.
  axes[0, 0].set(xlabel='members (snapshots in epoch order, then the final model)')
  axes[0, 0].set(ylabel='ensemble test accuracy (no TTA)')
  axes[0, 1].set(xlabel='repulsion strength (square: warm restarts, no repulsion)')
  axes[0, 1].set(ylabel='mean error correlation between members')
  axes[0, 0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'q5.png'))
  return summary


if __name__ == '__main__':
  q1.cli('q5', collect, render, '')
