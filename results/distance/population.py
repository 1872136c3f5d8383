"""The strength x seed study of strength.md again, as ONE population (12 members: strengths 0, 1,
10, 100 x seeds 0, 1, 2; strength 0 is the virtual-anchor baseline), against the recorded
sequential table and the same members run alone now: population.md, population.json.

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

from bench import common  # noqa: E402
from jaxland import tasks  # noqa: E402
from jaxland.output import metrics  # noqa: E402
from jaxland.rundir import checkpoints  # noqa: E402
from jaxland.train import population  # noqa: E402

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
  config.population.member_root = root
  # Names in the members' own order (product order follows the sorted keys: repulsion.strength
  # before seed), read from the members, never assumed.
  config.population.names = tuple(
    f'{member_label(m["repulsion.strength"])}_s{m["seed"]}' for m in population.members(config)
  )
  config.lock()
  return config


def member_label(strength: float) -> str:
  return 'none' if strength == 0 else f's{strength:g}'


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


def cells(root: str) -> dict:
  """{strength label: [mean ± std over seeds of each COLUMN]} of the runs under `root`."""
  table = {}
  for s in STRENGTHS:
    dirs = [os.path.join(root, f'{member_label(s)}_s{seed}') for seed in SEEDS]
    table[LABELS[s]] = [
      mean_std([epoch_value(d, key, e) for d in dirs], 4 if 'accuracy' in key else 2)
      for key, e in COLUMNS
    ]
  return table


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--smoke', action='store_true')
  parser.add_argument(
    '--tables', action='store_true', help='only the tables again, from the finished runs'
  )
  args = parser.parse_args()
  out = ex.smoke() if args.smoke else HERE
  root = os.path.join(ex.RUNS_DIR, 'population')
  alone_root = os.path.join(ex.RUNS_DIR, 'population_alone')
  members_root = os.path.join(root, 'members')
  config = population_config(members_root)
  if args.tables:  # Same runs, same timings: the tables again from the run dirs.
    with open(os.path.join(out, 'population.json')) as f:
      timing = json.load(f)
    seconds, alone_seconds = timing['population_seconds'], timing['alone_seconds']
    members, load = timing['members'], timing['load_average']
  else:
    alone_seconds, seconds, members = run(config, root, alone_root)
    load = os.getloadavg()
  write(out, config, members_root, alone_root, seconds, alone_seconds, members, load)


def run(config, root: str, alone_root: str):
  """Each member alone (the oracle, first: the population's own load must not slow it, one
  after the other in this process), then the population; (alone s, population s, statuses)."""
  names = population.member_names(config)
  t0 = time.time()
  for name, overrides in zip(names, population.members(config), strict=True):
    alone = population.member_config(config, overrides)
    alone.unlock()
    alone.overwrite = True
    alone.lock()
    tasks.run(alone, os.path.join(alone_root, name))
  alone_seconds = time.time() - t0
  config.unlock()
  config.overwrite = True
  config.lock()
  t0 = time.time()
  summary = tasks.run(config, root)
  return alone_seconds, time.time() - t0, summary.get('members')


def write(out, config, members_root, alone_root, seconds, alone_seconds, members, load):
  """population.json and population.md from the finished runs."""
  names = population.member_names(config)
  table, alone_table, old = cells(members_root), cells(alone_root), recorded()
  # strength.md's columns: acc@6, min 7-12, drop, acc@36, d@7, d@9, d@12, d@36.
  recorded_cells = {k: [v[3], v[4], v[7]] for k, v in old.items()}
  drift = {
    name: checkpoints.relative_param_difference(
      os.path.join(members_root, name), os.path.join(alone_root, name)
    )
    for name in names
  }
  result = {
    'command': 'nice -n 5 .venv/bin/python results/distance/population.py',
    'hardware': common.machine(),
    'members': members,
    'population_seconds': seconds,
    'alone_seconds': alone_seconds,
    'columns': [f'{k} at epoch {e}' for k, e in COLUMNS],
    'population': table,
    'alone_now': alone_table,
    'recorded_sequential': recorded_cells,
    'identical_to_alone_now': {k: table[k] == alone_table[k] for k in table},
    'identical_to_recorded': {k: table[k] == recorded_cells.get(k) for k in table},
    'final_param_relative_l2_to_alone': drift,
    'load_average': list(load),
  }
  with open(os.path.join(out, 'population.json'), 'w') as f:
    json.dump(result, f, indent=1)
  with open(os.path.join(out, 'population.md'), 'w') as f:
    f.write(render(result))
  print(render(result))


def render(result: dict) -> str:
  """population.md from population.json's data."""
  seconds, alone = result['population_seconds'], result['alone_seconds']
  drift = result['final_param_relative_l2_to_alone'].values()
  pairs = [
    [float(x) for x in (a[0].split(' ± ') + b[0].split(' ± '))]
    for a, b in zip(result['population'].values(), result['alone_now'].values(), strict=True)
  ]
  gap = max(abs(p[0] - p[2]) for p in pairs)
  spread = max(max(p[1], p[3]) for p in pairs)
  lines = [
    '# The strength x seed study as one population',
    '',
    f'`{result["command"]}` ({result["hardware"]}; load {result["load_average"][0]:.1f}): 12',
    'members (strengths 0, 1, 10, 100 x seeds 0, 1, 2) trained as one jitted, vmapped step in',
    f'{seconds:.0f} s, against {alone:.0f} s for the same 12 runs alone, one after the other in',
    f'one process before it ({alone / seconds:.2f}x; not interleaved). Mean ± std over seeds: the',
    'population, the same members run alone now on this machine (the oracle), and the recorded',
    'sequential numbers of strength.md (another machine: they do not rerun bit for bit here).',
    f'Final params, population member against the same run alone: relative L2 {min(drift):.1e}',
    f'to {max(drift):.1e} (36 epochs of SGD amplify the first reassociation differences).',
    f'Final test accuracies: the population and the runs alone differ by at most {gap:.4f}',
    f'(mean over seeds), against a seed std of up to {spread:.4f}.',
    '',
    '| strength | ' + ' | '.join(result['columns']) + ' | same as alone now |',
    '|---|' + '---|' * (len(COLUMNS) + 1),
  ]
  for k, row in result['population'].items():
    same = 'yes' if result['identical_to_alone_now'][k] else 'no'
    lines.append(f'| {k} | ' + ' | '.join(row) + f' | {same} |')
    lines.append('| (alone now) | ' + ' | '.join(result['alone_now'][k]) + ' | |')
    recorded_row = result['recorded_sequential'].get(k, ['-'] * len(COLUMNS))
    lines.append('| (recorded) | ' + ' | '.join(recorded_row) + ' | |')
  return '\n'.join(lines) + '\n'


if __name__ == '__main__':
  main()
