"""The strength x seed study of strength.md again, as ONE population (12 members: strengths 0, 1,
10, 100 x seeds 0, 1, 2; strength 0 is the virtual-anchor baseline), against the recorded
sequential table: population.md, population.json.

Run:  nice -n 5 .venv/bin/python results/distance/population.py [--smoke]
(the runs go to runs/distance/population/; --smoke: the smoke protocol of experiments.py)
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

import experiments as ex  # noqa: E402

from jaxland import tasks  # noqa: E402
from jaxland.output import metrics  # noqa: E402

STRENGTHS, SEEDS = (0.0, 1.0, 10.0, 100.0), (0, 1, 2)
LABELS = {0.0: 'none (virtual anchor)', 1.0: 's = 1', 10.0: 's = 10', 100.0: 's = 100'}
COLUMNS = [('test/accuracy', 36), ('anchor/0/distance', 7), ('anchor/0/distance', 36)]


def population_config(root: str):
  config = ex.get_config('anchor=6,strength=1', 0)
  config.unlock()
  config.repulsion.enabled = True  # Strength 0 = the baseline's virtual anchors, exactly.
  config.population.mode = 'product'
  config.population.seed = SEEDS
  config.population.repulsion.strength = STRENGTHS
  config.population.names = tuple(
    f'{"none" if s == 0 else f"s{s:g}"}_s{seed}' for seed in SEEDS for s in STRENGTHS
  )
  config.population.member_root = root
  config.lock()
  return config


def epoch_value(run_dir, key, epoch):
  for r in metrics.read_jsonl(run_dir):
    if r.get('epoch') == epoch and key in r:
      return r[key]
  return float('nan')


def recorded() -> dict:
  """{label: [cells]} of strength.md's table (mean +- std strings)."""
  rows = {}
  for line in open(os.path.join(HERE, 'strength.md')):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if cells and cells[0] in LABELS.values():
      rows[cells[0]] = cells[1:]
  return rows


def mean_std(values, digits):
  v = np.asarray(values, float)
  return f'{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}'


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--smoke', action='store_true')
  args = parser.parse_args()
  out = ex.smoke() if args.smoke else HERE
  root = os.path.join(ex.RUNS_DIR, 'population')
  config = population_config(os.path.join(root, 'members'))
  t0 = time.time()
  summary = tasks.run(config, root)
  seconds = time.time() - t0
  table, old = {}, recorded()
  for s in STRENGTHS:
    dirs = [
      os.path.join(root, 'members', f'{"none" if s == 0 else f"s{s:g}"}_s{seed}') for seed in SEEDS
    ]
    table[LABELS[s]] = [
      mean_std([epoch_value(d, key, e) for d in dirs], 4 if 'accuracy' in key else 2)
      for key, e in COLUMNS
    ]
  # strength.md's columns: acc@6, min 7-12, drop, acc@36, d@7, d@9, d@12, d@36.
  recorded_cells = {k: [v[3], v[4], v[7]] for k, v in old.items()}
  same = {k: table[k] == recorded_cells.get(k) for k in table}
  result = {
    'command': 'nice -n 5 .venv/bin/python results/distance/population.py',
    'members': summary.get('members'),
    'population_seconds': seconds,
    'columns': [f'{k} at epoch {e}' for k, e in COLUMNS],
    'population': table,
    'recorded_sequential': recorded_cells,
    'identical_to_4_decimals': same,
    'load_average': os.getloadavg(),
  }
  with open(os.path.join(out, 'population.json'), 'w') as f:
    json.dump(result, f, indent=1)
  lines = [
    '# The strength x seed study as one population',
    '',
    f'`{result["command"]}`: 12 members (strengths 0, 1, 10, 100 x seeds 0, 1, 2) trained as one',
    f'jitted, vmapped step in {seconds:.0f} s (load {os.getloadavg()[0]:.1f}, 2-core CPU).',
    "Mean ± std over seeds; the sequential numbers are strength.md's (63 runs, one process each).",
    '',
    '| strength | ' + ' | '.join(result['columns']) + ' | same as sequential |',
    '|---|' + '---|' * (len(COLUMNS) + 1),
  ]
  for k in table:
    lines.append(f'| {k} | ' + ' | '.join(table[k]) + f' | {"yes" if same[k] else "no"} |')
    lines.append('| (sequential) | ' + ' | '.join(recorded_cells.get(k, ['-'] * 3)) + ' | |')
  with open(os.path.join(out, 'population.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
