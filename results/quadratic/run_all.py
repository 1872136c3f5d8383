"""Reruns every experiment behind results/quadratic/README.md and copies the small outputs here.

Run (from the repository root; ~20 min on 2 busy CPU cores; the HMC part needs blackjax, an
optional dependency: without it that experiment is skipped with a message):
  nice -n 5 .venv/bin/python results/quadratic/run_all.py [--only=mlp,mlp_gelu,cnn] [--smoke]
(--smoke: every experiment's `smoke` variant, runs and outputs under /tmp/jaxland_results_smoke)
Each experiment is one jaxland command (printed before it runs); finished training runs under
runs/quadratic/<name>/train are reused. Figures, CSVs and summary.json files are copied to
results/quadratic/<name>/{landscape,intervene}/ (eigenvector and profile npz files stay in runs/).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, 'results', 'quadratic')
PY = os.path.join(ROOT, '.venv', 'bin', 'python')

# name -> [(config, extra flags)]
EXPERIMENTS = {
  'mlp': [('configs/landscape.py', []), ('configs/intervene.py', [])],
  'mlp_gelu': [
    ('configs/landscape.py:act=gelu', ["--config.landscape.probes=('lines','dense')"]),
  ],
  'cnn': [
    ('configs/landscape.py:model=cnn', []),
    (
      'configs/intervene.py:model=cnn',
      ["--config.intervene.experiments=('snap','noise','precond','batch1')"],
    ),
  ],
}
COPY_EXT = ('.png', '.csv', '.json')


def run(config, flags, workdir):
  cmd = [PY, '-m', 'jaxland.main', f'--config={config}', f'--workdir={workdir}', *flags]
  print('$ ' + ' '.join(cmd), flush=True)
  t0 = time.time()
  subprocess.run(cmd, cwd=ROOT, check=True)
  return {'command': ' '.join(cmd[1:]), 'seconds': round(time.time() - t0, 1)}


def copy_outputs(workdir, name, here=HERE):
  for sub in ('landscape', 'intervene'):
    src = os.path.join(workdir, sub)
    if not os.path.isdir(src):
      continue
    dst = os.path.join(here, name, sub)
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
      if f.endswith(COPY_EXT) and f not in ('config.json', 'status.json'):
        shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
  summary = os.path.join(workdir, 'train', 'summary.json')
  if os.path.exists(summary):
    os.makedirs(os.path.join(here, name), exist_ok=True)
    shutil.copy2(summary, os.path.join(here, name, 'train_summary.json'))


def _smoke(config: str) -> str:
  """configs/x.py[:args] -> its smoke variant."""
  return config + (',smoke' if ':' in config else ':smoke')


def cpu_model():
  try:
    out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
    return next(line.split(':', 1)[1].strip() for line in out.splitlines() if 'Model name' in line)
  except (OSError, StopIteration):
    return platform.processor()


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--only', default=','.join(EXPERIMENTS))
  parser.add_argument('--smoke', action='store_true')
  args = parser.parse_args()
  here, runs = HERE, os.path.join(ROOT, 'runs', 'quadratic')
  if args.smoke:
    here = os.path.join('/tmp', 'jaxland_results_smoke', 'quadratic')
    runs = os.path.join(here, 'runs')
    os.makedirs(here, exist_ok=True)
  env_path = os.path.join(here, 'timings.json')
  timings = json.load(open(env_path)) if os.path.exists(env_path) else {}
  timings['hardware'] = f'{os.cpu_count()} CPU cores ({cpu_model()}), no GPU; shared, run at nice 5'
  for name in args.only.split(','):
    workdir = os.path.join(runs, name)
    timings[name] = [
      run(_smoke(config) if args.smoke else config, flags, workdir)
      for config, flags in EXPERIMENTS[name]
    ]
    copy_outputs(workdir, name, here)
    with open(env_path, 'w') as f:
      json.dump(timings, f, indent=2)
  print(json.dumps(timings, indent=2))


if __name__ == '__main__':
  sys.exit(main())
