"""Reruns every result in results/lr_science (about 20 minutes on a busy 2-core CPU).

    JAXLAND_DATA_DIR=../shared/data nice -n 5 .venv/bin/python results/lr_science/run_all.py \
        [--phases=range,grid,schedules,cifar_range,report] [--runs=runs/lr_science]
    ... --smoke     every phase at seconds scale (`smoke` configs, 2 LRs, 2 seeds), runs and
                    outputs under /tmp/jaxland_results_smoke/lr_science (results/ is untouched)

Phases (each writes under results/lr_science/<phase>/; run dirs with checkpoints go to --runs):
  range      range tests on Fashion-MNIST (task lr_range, configs/fashion_lr_range.py): MLP and
             small CNN, log and linear, with and without momentum 0.9 + weight decay 5e-4;
             overlays by batch size, weight decay, momentum; a momentum sweep and a momentum grid.
  grid       full short runs (3 epochs, configs/fashion_schedules.py) of every schedule over a
             grid of peak LRs, one seed: the best LR each schedule really wants.
  schedules  the five schedules at the same budget, 3 seeds each, at (a) the LRs the range test
             recommends and (b) each schedule's grid-best LR: test accuracy mean +- std.
  cnn        (optional, not in the default run) the small CNN: one-cycle over a grid of max LRs
             (1 seed, 1 epoch on 20,000 images).
  cifar_range  cifar10_jpeg75 (the offline JPEG copy): range test of the small convnet on a
             10,000-image train subset.
  cifar      (optional, not in the default run: about 70 s per run here, 18 minutes) the five
             schedules x 3 seeds with that convnet at the range test's LR, 2 epochs.
  report     (always run last) tables.md and figures from results.json: report.py.
Everything runs in this one process through the same entry functions as `python -m jaxland.main`
(jaxland.tasks.run), so the commands in the
README reproduce any single point.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [ROOT, HERE]

import numpy as np  # noqa: E402

from configs import fashion_lr_range, fashion_schedules  # noqa: E402
from jaxland import tasks  # noqa: E402
from jaxland.rundir import workdir as workdir_lib  # noqa: E402

SCHEDULES = fashion_schedules.SCHEDULES
SEEDS = (0, 1, 2)
GRID = (0.01, 0.0215, 0.0464, 0.1, 0.215, 0.464)
KEEP = ('.png', '.csv', '.json')
CIFAR_TEST = 'cifar10_jpeg75_cnn_log_m0.9_wd5e-4'
SMOKE_ARG = ''  # ',smoke' with --smoke: appended to every config argument.


def hardware() -> str:
  model = ''
  try:
    out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
    model = next(line.split(':', 1)[1].strip() for line in out.splitlines() if 'Model name' in line)
  except (OSError, StopIteration):
    pass
  return f'{os.cpu_count()}-core CPU ({model or platform.processor()}), {platform.platform()}'


def copy_outputs(workdir: str, dest: str) -> None:
  """The figures, CSV and JSON of a run dir (no checkpoints, no event files)."""
  os.makedirs(dest, exist_ok=True)
  for name in os.listdir(workdir):
    if name.endswith(KEEP) and name not in ('config.json', 'status.json'):
      shutil.copy(os.path.join(workdir, name), dest)


def flag_value(v) -> str:
  """A config override as the shell needs it (tuples quoted, no spaces)."""
  return f"'({','.join(map(str, v))},)'" if isinstance(v, tuple) else str(v)


def range_test(runs, out, name, arg, **overrides):
  """One `lr_range` task from configs/fashion_lr_range.py:<arg>; returns its summary."""
  config = fashion_lr_range.get_config(arg + SMOKE_ARG)
  for key, value in overrides.items():
    section, leaf = key.rsplit('.', 1)
    config[section][leaf] = value
  config.overwrite = True
  t = time.time()
  summary = tasks.run(config, os.path.join(runs, 'range', name))
  copy_outputs(os.path.join(runs, 'range', name), os.path.join(out, 'range', name))
  command = f'python -m jaxland.main --config=configs/fashion_lr_range.py:{arg}' + ''.join(
    f' --config.{k}={flag_value(v)}' for k, v in overrides.items()
  )
  print(f'[lr_science] range {name}: {time.time() - t:.0f}s', flush=True)
  return {'command': command, 'seconds': time.time() - t, **summary}


def phase_range(runs, out):
  tests = {
    'mlp_log': ('spacing=log', {}),
    'mlp_linear': ('spacing=linear', {}),
    'mlp_log_m0.9_wd5e-4': ('momentum=0.9,wd=0.0005', {}),
    'mlp_linear_m0.9_wd5e-4': ('spacing=linear,momentum=0.9,wd=0.0005', {}),
    'cnn_log': ('model=convnet', {}),
    'cnn_linear': ('model=convnet,spacing=linear', {}),
    'cnn_log_m0.9_wd5e-4': ('model=convnet,momentum=0.9,wd=0.0005', {}),
    'mlp_overlay_batch_size': ('overlay=batch_size', {}),
    'mlp_overlay_weight_decay': ('overlay=weight_decay,momentum=0.9', {}),
    'mlp_overlay_momentum': ('overlay=momentum', {}),
    'mlp_momentum_sweep_and_grid': (
      'spacing=linear',
      {
        'lr_range.param': 'momentum',
        'lr_range.start': 0.5,
        'lr_range.end': 0.995,
        'optim.learning_rate': 0.05,
        'lr_range.momentum_grid': (0.0, 0.5, 0.9, 0.95, 0.99),
        'lr_range.grid_steps': 300,
      },
    ),
  }
  results = {name: range_test(runs, out, name, arg, **kw) for name, (arg, kw) in tests.items()}
  return results


def finished(config, workdir):
  """The summary of a finished run of this exact config in workdir (so reruns skip it), or None."""
  try:
    same = workdir_lib.saved_config(workdir) == workdir_lib.config_dict(config)
    status = workdir_lib.read_status(workdir)['status']
    if same and status in ('done', 'diverged'):
      return json.load(open(os.path.join(workdir, 'summary.json')))
  except (OSError, ValueError):
    pass
  return None


def train(config, workdir):
  t = time.time()
  summary = finished(config, workdir)
  if summary is None:
    config.overwrite = True
    summary = tasks.run(config, workdir)
  return {
    'status': summary['status'],
    'test_accuracy': summary.get('final_test_accuracy', float('nan')),
    'val_accuracy': summary.get('final_val_accuracy', float('nan')),
    'seconds': time.time() - t,
  }


def schedule_config(schedule, lr, seed, model='mlp', epochs=3, train_subset=0, jpeg75=False):
  arg = f'schedule={schedule},lr={lr},model={model},epochs={epochs},train_subset={train_subset}'
  arg += (',jpeg75' if jpeg75 else '') + SMOKE_ARG
  config = fashion_schedules.get_config(arg)
  config.seed = seed
  return (
    config,
    f'python -m jaxland.main --config=configs/fashion_schedules.py:{arg} --config.seed={seed}',
  )


def phase_grid(runs, out, grid=GRID, schedules=SCHEDULES, model='mlp', epochs=3, subset=0):
  rows = []
  for schedule in schedules:
    for lr in grid:
      config, command = schedule_config(schedule, lr, 0, model, epochs, subset)
      r = train(config, os.path.join(runs, f'grid_{model}', f'{schedule}_lr{lr:g}'))
      rows.append({'schedule': schedule, 'lr': lr, 'command': command, **r})
      print(f'[lr_science] grid {model} {schedule} lr={lr:g}: {r}', flush=True)
  best = {}
  for schedule in schedules:
    mine = [r for r in rows if r['schedule'] == schedule and r['status'] == 'done']
    if mine:
      # Pick on validation accuracy (held out of train), report test accuracy.
      best[schedule] = max(mine, key=lambda r: r['val_accuracy'])['lr']
  return {'rows': rows, 'best_lr_by_val': best}


def phase_schedules(
  runs, out, lrs: dict, label: str, model='mlp', epochs=3, subset=0, done=(), jpeg75=False
):
  """Each schedule at its LR over SEEDS; rows of `done` (same schedule, lr, seed) are reused."""
  rows = []
  for schedule, lr in lrs.items():
    for seed in SEEDS:
      old = [r for r in done if (r['schedule'], r['lr'], r.get('seed', 0)) == (schedule, lr, seed)]
      if old:
        rows.append({**old[0], 'seed': seed})
        continue
      config, command = schedule_config(schedule, lr, seed, model, epochs, subset, jpeg75)
      r = train(config, os.path.join(runs, f'schedules_{model}_{label}', f'{schedule}_seed{seed}'))
      rows.append({'schedule': schedule, 'lr': lr, 'seed': seed, 'command': command, **r})
      print(f'[lr_science] schedules {label} {schedule} seed={seed}: {r}', flush=True)
  return {'rows': rows, 'table': aggregate(rows)}


def aggregate(rows):
  table = {}
  for schedule in dict.fromkeys(r['schedule'] for r in rows):
    acc = np.array([r['test_accuracy'] for r in rows if r['schedule'] == schedule], float)
    lr = next(r['lr'] for r in rows if r['schedule'] == schedule)
    table[schedule] = {
      'lr': lr,
      'mean': float(np.mean(acc)),
      'std': float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
      'n': len(acc),
    }
  return table


def recommended_lrs(range_summary: dict, test: str) -> dict:
  """Peak LR per schedule from a range test: max_lr for all (Smith: one number, min = max / 4)."""
  rec = range_summary[test]['tests']['learning_rate_log']['recommended']
  return {s: float(f'{rec["max_lr"]:.3g}') for s in SCHEDULES}


def smoke() -> str:
  """Seconds-scale settings for --smoke; the folder that takes runs and outputs."""
  global SEEDS, GRID, SMOKE_ARG
  SEEDS, GRID, SMOKE_ARG = (0, 1), (0.01, 0.1), ',smoke'
  return os.path.join('/tmp', 'jaxland_results_smoke', 'lr_science')


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--phases', default='range,grid,schedules,cifar_range,report')
  parser.add_argument('--runs', default=os.path.join(ROOT, 'runs', 'lr_science'))
  parser.add_argument('--smoke', action='store_true')
  args = parser.parse_args()
  out = HERE
  if args.smoke:
    out = smoke()
    args.runs = os.path.join(out, 'runs')
    os.makedirs(out, exist_ok=True)
  path = os.path.join(out, 'results.json')
  results = json.load(open(path)) if os.path.exists(path) else {}
  results['hardware'] = hardware()
  t0 = time.time()
  for phase in args.phases.split(','):
    t = time.time()
    if phase == 'range':
      results['range'] = phase_range(args.runs, out)
    elif phase == 'grid':
      results['grid_mlp'] = phase_grid(args.runs, out, grid=GRID)
    elif phase == 'schedules':
      lrs = recommended_lrs(results['range'], 'mlp_log_m0.9_wd5e-4')
      results['schedules_mlp_range'] = phase_schedules(args.runs, out, lrs, 'range_test')
      best = results['grid_mlp']['best_lr_by_val']
      grid_rows = results['grid_mlp']['rows']
      results['schedules_mlp_grid'] = phase_schedules(
        args.runs, out, best, 'grid_best', done=grid_rows
      )
    elif phase == 'cnn':
      results['grid_cnn'] = phase_grid(
        args.runs, out, GRID[1:], ('onecycle',), model='convnet', epochs=1, subset=20000
      )
    elif phase == 'cifar_range':
      arg = 'jpeg75,model=convnet,momentum=0.9,wd=0.0005,num_steps=300'
      results['cifar_range'] = {CIFAR_TEST: range_test(args.runs, out, CIFAR_TEST, arg)}
    elif phase == 'cifar':
      lrs = recommended_lrs(results['cifar_range'], CIFAR_TEST)
      results['schedules_cifar_range'] = phase_schedules(
        args.runs, out, lrs, 'cifar10_jpeg75', model='convnet', epochs=2, jpeg75=True
      )
    elif phase != 'report':
      raise ValueError(f'unknown phase {phase!r}')
    results.setdefault('seconds', {})[phase] = time.time() - t
    with open(path, 'w') as f:
      json.dump(results, f, indent=1, default=float)
  print(f'[lr_science] all phases: {time.time() - t0:.0f}s', flush=True)
  import report  # results/lr_science/report.py: tables.md and figures from results.json.

  report.main(out)


if __name__ == '__main__':
  main()
