"""The schedule x seed table of tables.md (Fashion-MNIST MLP, 3 epochs, LR 0.0555, seeds 0-2)
again, each schedule as ONE population of its three seeds (a population shares its schedule's
form), against the recorded sequential runs of results.json: population.md, population.json.

Run:  nice -n 5 .venv/bin/python results/lr_science/population.py
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from configs import fashion_schedules  # noqa: E402
from jaxland import tasks  # noqa: E402

SEEDS = (0, 1, 2)
LR = 0.0555


def main():
  recorded = json.load(open(os.path.join(HERE, 'results.json')))['schedules_mlp_range']['rows']
  rows, seconds = [], {}
  for schedule in fashion_schedules.SCHEDULES:
    config = fashion_schedules.get_config(
      f'schedule={schedule},lr={LR},model=mlp,epochs=3,train_subset=0'
    )
    config.unlock()
    config.population.seed = SEEDS
    config.population.names = tuple(f'seed{s}' for s in SEEDS)
    config.lock()
    workdir = os.path.join(ROOT, 'runs', 'lr_science', 'population', schedule)
    t0 = time.time()
    tasks.run(config, workdir)
    seconds[schedule] = time.time() - t0
    for seed in SEEDS:
      with open(os.path.join(workdir, f'seed{seed}', 'summary.json')) as f:
        mine = json.load(f)['final_test_accuracy']
      old = next(
        r['test_accuracy'] for r in recorded if (r['schedule'], r['seed']) == (schedule, seed)
      )
      rows.append({'schedule': schedule, 'seed': seed, 'population': mine, 'sequential': old})
  sequential = {
    s: sum(r['seconds'] for r in recorded if r['schedule'] == s)
    for s in fashion_schedules.SCHEDULES
  }
  result = {
    'command': 'nice -n 5 .venv/bin/python results/lr_science/population.py',
    'rows': rows,
    'max_abs_difference': max(abs(r['population'] - r['sequential']) for r in rows),
    'population_seconds': seconds,
    'recorded_sequential_seconds': sequential,
    'load_average': os.getloadavg(),
  }
  with open(os.path.join(HERE, 'population.json'), 'w') as f:
    json.dump(result, f, indent=1)
  lines = [
    '# The schedule x seed table as populations',
    '',
    f"`{result['command']}`: each schedule's three seeds as one population (one process, one",
    "compiled step); the sequential column is results.json's recorded run of the same point.",
    f'Largest difference in final test accuracy: {result["max_abs_difference"]:.2g}.',
    '',
    '| schedule | seed | population | sequential |',
    '|---|---|---|---|',
    *(
      f'| {r["schedule"]} | {r["seed"]} | {r["population"]:.4f} | {r["sequential"]:.4f} |'
      for r in rows
    ),
    '',
    '| schedule | population wall time (s) | recorded sequential runs (s, summed) |',
    '|---|---|---|',
    *(f'| {s} | {seconds[s]:.0f} | {sequential[s]:.0f} |' for s in seconds),
    '',
    f'Load average at the end: {os.getloadavg()[0]:.1f} (2-core CPU, shared); the recorded runs',
    'ran in an earlier session under its own load, so compare the wall times with that in mind',
    '(bench/population.py times both side by side).',
  ]
  with open(os.path.join(HERE, 'population.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
