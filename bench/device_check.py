"""The prepared GPU check (issue 13, part 4): runs the benches one after another, writes one file.

Called by bench/device_check.sh (which installs the carried wheels first). Each section is one
bench command in its own process with its own time cap, under one overall deadline; a section
that fails or runs out of time is written down with the end of its output, and the rest go on.

    python bench/device_check.py --out=results/gpu/device_check.md [--dry] [--budget_s=450]

--dry: the same sections at tiny sizes on the CPU, in seconds (tests/test_device_check.py).
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time

import common  # bench/common.py: puts the repository on sys.path

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)


def sections(dry: bool) -> list[dict]:
  """Every section: title, command (argv, run from the repository root), cap in seconds."""
  py = sys.executable
  models = 'mlp' if dry else 'resnet20,resnet32,resnet56,mlp'
  device = 'cpu' if dry else 'cuda'
  step_args = ['--batch=8', '--steps=1', '--rounds=1'] if dry else ['--rounds=5']
  out = []
  for dtype in ('float32', 'bfloat16'):
    out.append(
      {
        'title': f'Train step img/s, {dtype}: jaxland vs PyTorch on the same device',
        'cmd': [py, 'bench/train_step.py', '--parts=torch', f'--models={models}']
        + [f'--dtype={dtype}', f'--device={device}', *step_args],
        'cap': 120 if dry else 150,
      }
    )
  curv = ['--quick', '--models=mlp'] if dry else []
  out.append(
    {
      'title': 'HVP and GGN cost / gradient cost',
      'cmd': [py, 'bench/curvature.py', '--parts=a', *curv],
      'cap': 120 if dry else 90,
    }
  )
  rep = (
    ['--models=mlp', '--parts=update', '--rounds=1', '--steps=2', '--variants=K=1']
    if dry
    else ['--models=mlp,resnet20', '--parts=step,update', '--rounds=7', '--steps=30']
  )
  out.append(
    {
      'title': 'Repulsion: cost per anchor against the floor',
      'cmd': [py, 'bench/repulsion.py', *rep],
      'cap': 120,
    }
  )
  epoch = (
    ['--config=configs/cifar_resnet.py:smoke', '--config.train.max_steps=2']
    + ['--config.data.name=synthetic', '--config.data.test_subset=64']
    if dry
    else ['--config=configs/cifar_resnet.py:jpeg75', '--config.train.num_epochs=1']
  )
  out.append(
    {
      'title': 'One real run: ResNet-20, one epoch of cifar10_jpeg75 (image folder, no TensorFlow)'
      if not dry
      else 'One real run (dry: resnet8 smoke, 2 steps)',
      'cmd': [py, '-m', 'jaxland.main', *epoch, '--workdir=/tmp/jaxland_device_check_run']
      + ['--config.overwrite=True'],
      'cap': 60 if not dry else 120,
      'summary': '/tmp/jaxland_device_check_run/summary.json',
    }
  )
  for dtype in ('float32', 'bfloat16'):
    fast = (
      ['--config=configs/cifar_fast.py:smoke', '--config.data.name=synthetic']
      + ['--config.train.max_steps=8']
      if dry
      else ['--config=configs/cifar_fast.py:jpeg75']
    )
    out.append(
      {
        'title': f'Fast CIFAR-10 (airbench recipe, configs/cifar_fast.py:jpeg75), {dtype}: time '
        'to 91% on cifar10_jpeg75, with and without compile (summary.json)',
        'cmd': [py, '-m', 'jaxland.main', *fast, f'--config.model.dtype={dtype}']
        + [f'--workdir=/tmp/jaxland_device_check_fast_{dtype}', '--config.overwrite=True']
        + ['--config.train.keep_checkpoints=1'],
        'cap': 150 if not dry else 120,
        'summary': f'/tmp/jaxland_device_check_fast_{dtype}/summary.json',
        # Dry: tests/test_fast.py trains the float32 smoke in-process, and tests/test_models.py
        # checks the bfloat16 path's dtypes; compiling the bfloat16 smoke here cost 37 s.
        'dry_skip': dry,
      }
    )
  pop = ['--smoke', '--grid=mlp', '--modes=vectorized'] if dry else ['--grid=mlp_jpeg75']
  pop += [] if dry else ['--modes=sequential,vectorized']
  out.append(
    {
      'title': 'Population speed-up: the 8-point MLP grid, sequential points against one '
      'population (--vectorize)',
      'cmd': [py, 'bench/population.py', *pop, '--rounds=1'],
      'cap': 200 if not dry else 240,
    }
  )
  order = [
    'Train step img/s, float32',
    'Fast CIFAR-10 (airbench recipe, configs/cifar_fast.py:jpeg75), float32',
    'Population',
  ]
  return sorted(
    out,
    key=lambda s: next((i for i, t in enumerate(order) if s['title'].startswith(t)), len(order)),
  )


def run_section(section: dict, deadline: float) -> tuple[str, float, str]:
  """(status, seconds, output) of one section, within its cap and the overall deadline."""
  cap = min(section['cap'], deadline - time.monotonic())
  if section.get('dry_skip'):
    return 'skipped in --dry (tests/test_fast.py and test_models.py cover it)', 0.0, ''
  if cap < 10:
    return 'skipped: out of time', 0.0, ''
  t0 = time.monotonic()
  try:
    done = subprocess.run(
      section['cmd'], cwd=REPO, capture_output=True, text=True, timeout=cap, check=False
    )
    output = done.stdout + (f'\n[stderr]\n{_tail(done.stderr, 40)}' if done.returncode else '')
    status = 'ok' if done.returncode == 0 else f'failed (exit {done.returncode})'
  except subprocess.TimeoutExpired as e:
    output = (e.stdout or b'').decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
    status = f'timed out after {cap:.0f} s'
  return status, time.monotonic() - t0, output


def _tail(text: str, lines: int) -> str:
  return '\n'.join(text.strip().splitlines()[-lines:])


def _clean(output: str) -> str:
  """Bench output without jaxland's data lines; markdown tables stay tables."""
  keep = [ln for ln in output.splitlines() if not ln.startswith('[jaxland] data')]
  return '\n'.join(keep).strip()


def _summary_lines(path: str) -> list[str]:
  """The run's accuracy and clock from its summary.json (what the time-to-accuracy table needs)."""
  try:
    with open(path) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return ['(no summary.json)', '']
  keys = ('status', 'final_test_accuracy', 'seconds', 'compile_seconds', 'train_seconds')
  keys += ('target_accuracy', 'seconds_to_target', 'seconds_to_target_without_compile')
  return [
    '| ' + ' | '.join(keys) + ' |',
    '|' + '---|' * len(keys),
    '| ' + ' | '.join(_fmt(summary.get(k)) for k in keys) + ' |',
    '',
  ]


def _fmt(v) -> str:
  return f'{v:.4g}' if isinstance(v, float) else str(v)


def machine_lines() -> list[str]:
  lines = [f'- jax: {common.machine()}']
  try:
    smi = subprocess.run(
      ['nvidia-smi', '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
      capture_output=True,
      text=True,
      timeout=20,
      check=False,
    )
    if smi.returncode == 0:
      lines.append(f'- nvidia-smi: {smi.stdout.strip()}')
  except (OSError, subprocess.TimeoutExpired):
    lines.append('- nvidia-smi: not found')
  torch_py = os.environ.get(common.TORCH_ENV, '')
  lines.append(f'- PyTorch side: {torch_py or "ABSENT (set " + common.TORCH_ENV + ")"}')
  lines.append(f'- {common.load()}')
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='results/gpu/device_check.md')
  parser.add_argument('--dry', action='store_true', help='tiny sizes on the CPU, in seconds')
  parser.add_argument('--budget_s', type=float, default=450.0, help='overall deadline')
  args = parser.parse_args()
  start = time.monotonic()
  deadline = start + args.budget_s
  stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
  doc = [
    f'# GPU check{" (DRY RUN: CPU, tiny sizes; not a measurement)" if args.dry else ""}',
    '',
    f'Written by `bash bench/device_check.sh{" --dry" if args.dry else ""}` on {stamp}. Every '
    'figure is measured in this one run; each section gives its command and its status, in '
    'priority order under one deadline.',
    '',
    *machine_lines(),
    '',
  ]
  for section in sections(args.dry):
    status, seconds, output = run_section(section, deadline)
    print(f'[device_check] {section["title"]}: {status} ({seconds:.0f} s)', flush=True)
    doc += [f'## {section["title"]}', '']
    doc += [f'`{shlex.join(section["cmd"][1:])}`: {status}, {seconds:.0f} s', '']
    doc += [_clean(output) or '(no output)', '']
    if section.get('summary') and status == 'ok':
      doc += _summary_lines(section['summary'])
  doc.append(f'Total: {time.monotonic() - start:.0f} s.')
  path = os.path.join(REPO, args.out) if not os.path.isabs(args.out) else args.out
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write('\n'.join(doc) + '\n')
  print(f'[device_check] wrote {path} in {time.monotonic() - start:.0f} s', flush=True)


if __name__ == '__main__':
  main()
