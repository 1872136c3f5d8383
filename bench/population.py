"""Whole-sweep wall time: a grid run point by point, in --parallel=2 processes, or --vectorize'd
(one population: one process, one compiled step), interleaved over rounds in fresh workdirs.

Run:    .venv/bin/python bench/population.py [--grid=mlp|mlp_jpeg75|resnet20] [--rounds=2]
        [--modes=sequential,parallel,vectorized] [--smoke]
        (resnet20 and mlp_jpeg75 need JAXLAND_DATA_DIR for cifar10_jpeg75; --smoke: 20 steps)
Prints seconds per mode (min / median over rounds), the load average, and as its last line the
ratios sequential / vectorized and parallel / vectorized.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {'sequential': [], 'parallel': ['--parallel=2'], 'vectorized': ['--vectorize']}


GRID_ARGS = {'mlp': '', 'mlp_jpeg75': 'jpeg75', 'resnet20': 'resnet20'}


def sweep_seconds(grid: str, flags: list, cache: str, smoke: bool = False) -> float:
  workdir = tempfile.mkdtemp(prefix='jaxland_bench_population_')
  arg = ','.join(filter(None, (GRID_ARGS[grid], 'smoke' if smoke else '')))
  arg = f':{arg}' if arg else ''
  cmd = [
    sys.executable,
    '-m',
    'jaxland.sweep',
    f'--config=configs/sweeps/population_bench.py{arg}',
    f'--workdir={workdir}',
    *flags,
  ]
  env = dict(os.environ, JAXLAND_CACHE_DIR=cache)
  t0 = time.perf_counter()
  done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - t0
  shutil.rmtree(workdir, ignore_errors=True)
  if done.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{done.stderr[-2000:]}')
  return seconds


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--grid', default='mlp', choices=tuple(GRID_ARGS))
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--modes', default=','.join(MODES))
  parser.add_argument('--smoke', action='store_true', help='20 steps per point (a dry run)')
  args = parser.parse_args()
  modes = {m: MODES[m] for m in args.modes.split(',')}
  times = {mode: [] for mode in modes}
  for r in range(args.rounds):
    for mode, flags in modes.items():  # Interleaved: every mode once per round.
      times[mode].append(sweep_seconds(args.grid, flags, cache='', smoke=args.smoke))
      print(f'round {r + 1} {mode}: {times[mode][-1]:.1f} s (load {os.getloadavg()})', flush=True)
  for mode, t in times.items():
    print(f'{mode}: min {min(t):.1f} s, median {statistics.median(t):.1f} s')
  med = {mode: statistics.median(t) for mode, t in times.items()}
  ratios = [
    f'{mode} / vectorized {med[mode] / med["vectorized"]:.2f}x'
    for mode in ('sequential', 'parallel')
    if mode in med and 'vectorized' in med
  ]
  print(
    f'{args.grid} grid, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}: ' + ', '.join(ratios)
  )


if __name__ == '__main__':
  main()
