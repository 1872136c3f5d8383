"""Reruns every experiment behind results/quadratic/README.md and copies the small outputs here.

Run (from the repository root; ~20 min on 2 busy CPU cores; the HMC part needs blackjax, an
optional dependency: without it that experiment is skipped with a message):
  nice -n 5 .venv/bin/python results/quadratic/run_all.py [--only=mlp,mlp_gelu,cnn] [--smoke]
      [--seed=N] [--experiments=landscape,intervene]
(--smoke: every experiment's `smoke` variant, runs and outputs under /tmp/jaxland_results_smoke;
--seed=N: config.seed = N (initial weights, batch order, probe sampling) into
runs/quadratic/<name>_seed<N>, its CSV/JSON files (no figures) into
results/quadratic/seeds/seed<N>/<name>/; seed 0 is the default and the figures' seed.
Then results/quadratic/over_seeds.py tabulates the findings over the seeds found.)
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


def run(config, flags, workdir, seed=0):
  seed_flags = [f'--config.seed={seed}'] if seed else []
  cmd = [PY, '-m', 'jaxland.main', f'--config={config}', f'--workdir={workdir}', *flags]
  cmd += seed_flags
  print('$ ' + ' '.join(cmd), flush=True)
  t0 = time.time()
  subprocess.run(cmd, cwd=ROOT, check=True)
  return {'command': ' '.join(cmd[1:]), 'seconds': round(time.time() - t0, 1)}


def copy_outputs(workdir, name, here=HERE, ext=COPY_EXT):
  for sub in ('landscape', 'intervene'):
    src = os.path.join(workdir, sub)
    if not os.path.isdir(src):
      continue
    dst = os.path.join(here, name, sub)
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
      if f.endswith(ext) and f not in ('config.json', 'status.json'):
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
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--experiments', default='landscape,intervene')
  args = parser.parse_args()
  here, runs = HERE, os.path.join(ROOT, 'runs', 'quadratic')
  if args.smoke:
    here = os.path.join('/tmp', 'jaxland_results_smoke', 'quadratic')
    runs = os.path.join(here, 'runs')
    os.makedirs(here, exist_ok=True)
  env_path = os.path.join(here, 'timings.json')
  timings = json.load(open(env_path)) if os.path.exists(env_path) else {}
  timings['hardware'] = (
    f'{os.cpu_count()} CPU cores ({cpu_model()}), no GPU, shared with other jobs. Entries without '
    "'nice' ran at nice 5 (the first session); the others give their niceness (19: "
    'beside another agent running timing-sensitive training on the same 2 cores, so their '
    "seconds measure load as much as work). 'seconds' includes training where the workdir had "
    'no trained run to reuse.'
  )
  suffix, out = '', here
  if args.seed:
    suffix, out = f'_seed{args.seed}', os.path.join(here, 'seeds', f'seed{args.seed}')
  kinds = args.experiments.split(',')
  for name in args.only.split(','):
    workdir = os.path.join(runs, name + suffix)
    done = [
      {
        **run(_smoke(config) if args.smoke else config, flags, workdir, args.seed),
        'nice': os.nice(0),
        'date': time.strftime('%Y-%m-%d %H:%M'),
      }
      for config, flags in EXPERIMENTS[name]
      if os.path.basename(config).split('.')[0].split(':')[0] in kinds
    ]
    commands = {d['command'] for d in done}
    kept = [t for t in timings.get(name + suffix, []) if t['command'] not in commands]
    timings[name + suffix] = kept + done
    copy_outputs(workdir, name, out, ('.csv', '.json') if args.seed else COPY_EXT)
    with open(env_path, 'w') as f:
      json.dump(timings, f, indent=2)
  print(json.dumps(timings, indent=2))


if __name__ == '__main__':
  sys.exit(main())
