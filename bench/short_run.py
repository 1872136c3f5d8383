"""A whole short run, start-up included (issue 13, part 2): the wall time of
`python -m jaxland.main --config=configs/fashion_mlp.py --config.train.num_epochs=1` on a warm
compilation cache and on a cold one, against bench/torch_fashion_mlp.py (the same run as a plain
PyTorch script) under both libgomp wait policies, and `import jaxland.main` against `import torch`.

Run:    .venv/bin/python bench/short_run.py [--rounds=3] [--epochs=1] [--torch_python=PATH]
        (the PyTorch side: $JAXLAND_TORCH_PYTHON or --torch_python; Fashion-MNIST prepared in the
        TFDS data dir, as `make demo` leaves it)
Every command runs as a fresh process, interleaved round by round (the order rotates). Prints
min / median seconds of each with the load average, and as its last line the ratios PyTorch /
jaxland (above 1: jaxland's run is the faster).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import common  # bench/common.py: puts the repository on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_SCRIPT = os.path.join(ROOT, 'bench', 'torch_fashion_mlp.py')


def seconds(cmd: list, env: dict) -> float:
  """Wall seconds of one fresh process; a failure stops the bench with its stderr."""
  t0 = time.perf_counter()
  done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - t0
  if done.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{done.stderr[-2000:]}')
  return wall


def commands(epochs: int, torch_python: str, warm_cache: str) -> dict:
  """{name: () -> seconds}: each call a fresh process in a fresh workdir (a cold run also gets a
  fresh, empty compilation cache)."""
  run = [sys.executable, '-m', 'jaxland.main', '--config=configs/fashion_mlp.py']
  run += [f'--config.train.num_epochs={epochs}']

  def jaxland(cache):
    def call():
      workdir = tempfile.mkdtemp(prefix='jaxland_short_run_')
      cache_dir = cache or tempfile.mkdtemp(prefix='jaxland_short_run_cache_')
      try:
        env = dict(os.environ, JAXLAND_CACHE_DIR=cache_dir)
        return seconds([*run, f'--workdir={workdir}'], env)
      finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not cache:
          shutil.rmtree(cache_dir, ignore_errors=True)

    return call

  def torch(policy):
    def call():
      out = tempfile.mkdtemp(prefix='torch_short_run_')
      env = dict(os.environ, **({'OMP_WAIT_POLICY': policy} if policy else {}))
      try:
        return seconds([torch_python, TORCH_SCRIPT, f'--epochs={epochs}', f'--out={out}'], env)
      finally:
        shutil.rmtree(out, ignore_errors=True)

    return call

  variants = {'jaxland warm cache': jaxland(warm_cache), 'jaxland cold cache': jaxland('')}
  imports = lambda python, module: lambda: seconds([python, '-c', f'import {module}'], os.environ)
  variants['import jaxland.main'] = imports(sys.executable, 'jaxland.main')
  if torch_python:
    variants['torch PASSIVE'] = torch('PASSIVE')
    variants['torch default'] = torch('')
    variants['import torch'] = imports(torch_python, 'torch')
  return variants


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--epochs', type=int, default=1)
  parser.add_argument('--torch_python', default='')
  args = parser.parse_args()
  torch_python = common.torch_python(args.torch_python)
  warm_cache = tempfile.mkdtemp(prefix='jaxland_short_run_warm_')
  try:
    variants = commands(args.epochs, torch_python, warm_cache)
    variants['jaxland warm cache']()  # Fills the warm cache (and prepares the data if needed).
    print(f'# {common.machine()}; {common.load()} at start')
    times = common.rounds_of(variants, args.rounds)
  finally:
    shutil.rmtree(warm_cache, ignore_errors=True)
  print(f'| {args.epochs}-epoch fashion_mlp run, fresh processes | min s | median s |')
  print('|---|---|---|')
  for name, t in times.items():
    print(f'| {name} | {min(t):.2f} | {statistics.median(t):.2f} |')
  print(f'# {common.load()} at the end')
  if not torch_python:
    print('no PyTorch side: no ratios')
    return
  med = {name: statistics.median(t) for name, t in times.items()}
  torch_best = min(med['torch PASSIVE'], med['torch default'])
  print(
    f'torch (faster policy) / jaxland: warm cache {torch_best / med["jaxland warm cache"]:.2f}x, '
    f'cold cache {torch_best / med["jaxland cold cache"]:.2f}x; '
    f'import torch / import jaxland.main {med["import torch"] / med["import jaxland.main"]:.2f}x'
  )


if __name__ == '__main__':
  main()
