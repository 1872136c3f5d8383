"""The schedule x seed table of tables.md (Fashion-MNIST MLP, 3 epochs, LR 0.0555, seeds 0-2)
again, each schedule as ONE population of its three seeds (a population shares its schedule's
form), against the same points run alone, now, on this machine (the oracle), and against the
recorded sequential runs of results.json: population.md, population.json.

Run:  nice -n 5 .venv/bin/python results/lr_science/population.py
"""

import copy
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from configs import fashion_schedules  # noqa: E402
from jaxland import tasks  # noqa: E402
from jaxland.rundir import checkpoints  # noqa: E402

SEEDS = (0, 1, 2)
LR = 0.0555
ALONE = os.path.join(ROOT, 'runs', 'lr_science', 'population_alone')


def final_accuracy(run_dir: str) -> float:
  with open(os.path.join(run_dir, 'summary.json')) as f:
    return json.load(f)['final_test_accuracy']


def main():
  recorded = json.load(open(os.path.join(HERE, 'results.json')))['schedules_mlp_range']['rows']
  rows, seconds, alone_seconds = [], {}, {}
  for schedule in fashion_schedules.SCHEDULES:
    config = fashion_schedules.get_config(
      f'schedule={schedule},lr={LR},model=mlp,epochs=3,train_subset=0'
    )
    workdir = os.path.join(ROOT, 'runs', 'lr_science', 'population', schedule)
    alone_seconds[schedule] = 0.0
    for seed in SEEDS:  # Sequential first: the population's own load must not slow them.
      alone = copy.deepcopy(config)
      alone.seed = seed
      alone.overwrite = True
      t0 = time.time()
      tasks.run(alone, os.path.join(ALONE, schedule, f'seed{seed}'))
      alone_seconds[schedule] += time.time() - t0
    config.unlock()
    config.population.seed = SEEDS
    config.population.names = tuple(f'seed{s}' for s in SEEDS)
    config.overwrite = True
    config.lock()
    t0 = time.time()
    tasks.run(config, workdir)
    seconds[schedule] = time.time() - t0
    for seed in SEEDS:
      member, alone = (
        os.path.join(workdir, f'seed{seed}'),
        os.path.join(ALONE, schedule, f'seed{seed}'),
      )
      old = next(
        r['test_accuracy'] for r in recorded if (r['schedule'], r['seed']) == (schedule, seed)
      )
      rows.append({
        'schedule': schedule, 'seed': seed, 'population': final_accuracy(member),
        'alone_now': final_accuracy(alone), 'recorded': old,
        'param_rel_diff': checkpoints.relative_param_difference(member, alone),
      })  # fmt: skip
  sequential = {
    s: sum(r['seconds'] for r in recorded if r['schedule'] == s)
    for s in fashion_schedules.SCHEDULES
  }
  result = {
    'command': 'nice -n 5 .venv/bin/python results/lr_science/population.py',
    'hardware': f'{os.cpu_count()}-core CPU, {platform.platform()}',
    'rows': rows,
    'max_abs_difference_population_alone': max(abs(r['population'] - r['alone_now']) for r in rows),
    'max_abs_difference_alone_recorded': max(abs(r['alone_now'] - r['recorded']) for r in rows),
    'max_param_rel_diff': max(r['param_rel_diff'] for r in rows),
    'population_seconds': seconds,
    'alone_seconds': alone_seconds,
    'recorded_sequential_seconds': sequential,
    'load_average': os.getloadavg(),
  }
  with open(os.path.join(HERE, 'population.json'), 'w') as f:
    json.dump(result, f, indent=1)
  render(result)


def render(result: dict) -> None:
  """population.md from population.json's `result` (--render redoes it without the runs)."""
  rows, seconds, alone_seconds = (
    result['rows'],
    result['population_seconds'],
    result['alone_seconds'],
  )
  sequential = result['recorded_sequential_seconds']
  acc = [r['population'] for r in rows]
  spread = max(
    float(np.std([r['alone_now'] for r in rows if r['schedule'] == s], ddof=1)) for s in seconds
  )
  lines = [
    '# The schedule x seed table as populations',
    '',
    f"`{result['command']}` ({result['hardware']}): each schedule's three seeds as one population",
    '(one process, one compiled step), against the same three points run alone just before it on',
    'the same machine, and against the sequential runs recorded in results.json.',
    '',
    f'- population against alone (now): final test accuracies differ by at most '
    f'{result["max_abs_difference_population_alone"]:.2g}, within the seed-to-seed spread (the',
    f'  largest per-schedule std over seeds, alone: {spread:.2g}). The final params, though,',
    f'  differ by up to {result["max_param_rel_diff"]:.2g} relative L2: 1,287 SGD steps amplify',
    '  the first float32 rounding differences (vmap sums the matmuls in another order) until the',
    '  trajectories part; tests/test_population.py bounds the difference at rtol 1e-5 only over a',
    '  few steps on small problems. Populations reproduce a sequential run statistically here, not',
    '  weight for weight.',
    f'- alone (now) against recorded: largest difference '
    f'{result["max_abs_difference_alone_recorded"]:.2g}: the same commands on this machine no',
    '  longer give the recorded numbers. The commit that recorded them (d43f994), rerun here for',
    "  constant / seed 0, gives 0.8592 as today's code does, not the recorded 0.8560: the machine",
    '  (its CPU and what XLA compiles for it) changed, not the code.',
    '',
    '| schedule | seed | population | alone (now) | recorded | params rel. diff |',
    '|---|---|---|---|---|---|',
    *(
      f'| {r["schedule"]} | {r["seed"]} | {r["population"]:.4f} | {r["alone_now"]:.4f} | '
      f'{r["recorded"]:.4f} | {r["param_rel_diff"]:.2g} |'
      for r in rows
    ),
    '',
    f'Mean final test accuracy over all 15 members: {np.mean(acc):.4f}.',
    '',
    '| schedule | population wall time (s) | 3 runs alone, now (s) | recorded 3 runs (s) |',
    '|---|---|---|---|',
    *(
      f'| {s} | {seconds[s]:.0f} | {alone_seconds[s]:.0f} | {sequential[s]:.0f} |' for s in seconds
    ),
    '',
    f'Load average at the end of the runs: {result["load_average"][0]:.1f} (2-core CPU);',
    'bench/population.py times the modes interleaved, which this table does not.',
  ]
  with open(os.path.join(HERE, 'population.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  if sys.argv[1:] == ['--render']:
    render(json.load(open(os.path.join(HERE, 'population.json'))))
  else:
    main()
