"""The seeds' questions at full CIFAR-10 size (issue 16), as runs of the fast network: each question
is a few runs of configs/cifar_fast.py (all 50k cifar10_jpeg75 training images), each run a
population over seeds 0, 1, 2 (one process, one compiled step; the members are ordinary run dirs).

Run:    JAXLAND_DATA_DIR=../shared/data .venv/bin/python results/cifar/questions.py --list
          [--variant=jpeg75|jpeg75,cpu] [--only=q1,q4]     the commands, and their cost
        ... questions.py --run [--variant=...] [--only=...]   run them into runs/cifar/<q>/<run>
The published recipe (`jpeg75`, 10 epochs) is meant for a GPU; `jpeg75,cpu` (8 epochs of the
narrower net, about 27 min a run on the 2-core CPU: results/fast) is the CPU's. Protocols are
the thesis' scaled to the run's length as results/distance scales them: anchors, restarts and
snapshots at the same fractions of training. q7 takes q6's max LR (--lr_max); q9 (the seed-003
sweeps at 50k images) and q10 (the spectrum at 4 checkpoints) are not prepared here yet.
tests/test_scripts.py validates every config here, so no command rots while it waits for
hardware.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

SEEDS = (0, 1, 2)
VARIANTS = ('jpeg75', 'jpeg75,cpu')


def questions(variant: str, lr_max: float = 0.0) -> dict:
  """{question id: (question, {run name: overrides})}; every run is a population over SEEDS.
  q7 (one-cycle at the range test's max LR) needs that LR: it is left out without lr_max."""
  from configs import cifar_fast

  base = cifar_fast.get_config(variant)
  epochs, lr = base.train.num_epochs, base.optim.learning_rate
  third, quarter = max(1, epochs // 3), max(1, epochs // 4)
  anchored = {'repulsion.enabled': True, 'repulsion.anchor_epochs': (third,)}
  anchored |= {'repulsion.snapshot_epochs': (third,)}
  restarts = {'optim.schedule.name': 'cosine_restarts', 'optim.schedule.t0_epochs': third}
  every = {'repulsion.enabled': True, 'repulsion.anchor_every': quarter}
  every |= {'repulsion.snapshot_every': quarter}
  out = {
    'q1': (
      'Distance to the anchor with and without repulsion; strength and width',
      {
        **{f'strength{s:g}': anchored | {'repulsion.strength': s} for s in (0.0, 1.0, 10.0, 100.0)},
        **{
          f'width{w:g}': anchored | {'repulsion.strength': 10.0, 'repulsion.width': w}
          for w in (1.0, 100.0)
        },
      },
    ),
    'q2': (
      'Several anchors against merged anchors, with and without L2',
      {
        f'{mode}_{"l2" if l2 else "nol2"}': every
        | {'repulsion.strength': 10.0, 'repulsion.mode': mode}
        | ({} if l2 else {'optim.weight_decay': 0.0})
        for mode in ('sum', 'merged')
        for l2 in (True, False)
      },
    ),
    'q3': (
      'Step decay and cosine restarts, with and without repulsion: does distance follow the LR?',
      {
        f'{name}_{"rep" if rep else "norep"}': sched
        | (every | {'repulsion.strength': 10.0} if rep else {})
        for name, sched in (
          ('step', {'optim.schedule.name': 'step', 'optim.schedule.decay_every_epochs': third}),
          ('restarts', restarts),
        )
        for rep in (False, True)
      },
    ),
    'q4': (
      "The thesis' wrong learning rate: restarts at 0.1x / 10x the LR, with and without repulsion",
      {
        f'lr{scale:g}x_{"rep" if rep else "norep"}': restarts
        | {'optim.learning_rate': lr * scale}
        | (every | {'repulsion.strength': 10.0} if rep else {})
        for scale in (0.1, 10.0)
        for rep in (False, True)
      },
    ),
    'q5': (
      'Snapshot ensembles against warm-restart snapshot ensembles, by strength',
      {
        **{f'snapshots_s{s:g}': every | {'repulsion.strength': s} for s in (0.0, 1.0, 10.0)},
        'restart_snapshots': restarts
        | {'repulsion.enabled': True, 'repulsion.strength': 0.0}
        | {'repulsion.snapshot_every': third},
      },
    ),
    'q6': (
      'Linear against log LR range tests: hill, plateau, or collapse and recovery?',
      {
        f'range_{spacing}': {'task': 'lr_range', 'lr_range.spacing': spacing}
        | {'lr_range.start': 1e-3, 'lr_range.end': 30.0, 'lr_range.num_steps': 200}
        | {'lr_range.eval_every': 10, 'lr_range.eval_size': 2000}
        for spacing in ('linear', 'log')
      },
    ),
    'q8': (
      'The momentum range test against a grid of momenta',
      {
        'range_momentum': {'task': 'lr_range', 'lr_range.param': 'momentum'}
        | {'lr_range.start': 0.5, 'lr_range.end': 0.99, 'lr_range.spacing': 'linear'}
        | {'lr_range.num_steps': 200, 'lr_range.eval_every': 10, 'lr_range.eval_size': 2000}
        | {'lr_range.momentum_grid': (0.5, 0.8, 0.85, 0.9, 0.95), 'lr_range.grid_steps': 200},
      },
    ),
  }
  if lr_max:
    out['q7'] = (
      "Super-convergence: one-cycle at the range test's max LR against piecewise and constant",
      {
        'onecycle': {'optim.schedule.name': 'onecycle', 'optim.learning_rate': lr_max},
        'piecewise': {'optim.schedule.name': 'piecewise', 'optim.learning_rate': lr_max / 4}
        | {'optim.schedule.boundaries_epochs': (epochs / 2, 3 * epochs / 4)}
        | {'optim.schedule.scales': (0.1, 0.1)},
        'constant': {'optim.schedule.name': 'constant', 'optim.learning_rate': lr_max / 4},
      },
    )
  return out


def population_overrides(run: dict) -> dict:
  """A training run trains its seeds as one population; a range test runs per seed 0."""
  if run.get('task') == 'lr_range':
    return {}
  return {'population.seed': SEEDS}


def config_arg(variant: str, run: dict) -> str:
  """configs/cifar_fast.py's argument: the variant and the research sections the run sets."""
  from jaxland import config as config_lib

  lines = sorted({k.split('.')[0] for k in run} & set(config_lib.SECTIONS))
  return variant + (f',lines={"-".join(lines)}' if lines else '')


def command(variant: str, qid: str, name: str, run: dict) -> list[str]:
  overrides = run | population_overrides(run)
  flags = [f'--config.{k}={_flag(v)}' for k, v in overrides.items()]
  workdir = os.path.join('runs', 'cifar', variant.replace(',', '_'), qid, name)
  config = f'--config=configs/cifar_fast.py:{config_arg(variant, run)}'
  return ['-m', 'jaxland.main', config, *flags, f'--workdir={workdir}']


def _flag(value) -> str:
  return repr(value) if isinstance(value, tuple) else str(value)


def config_of(variant: str, run: dict):
  """The run's config as jaxland.main builds it from command()'s flags (for validation)."""
  from configs import cifar_fast
  from tests.helpers import set_keys

  config = cifar_fast.get_config(config_arg(variant, run))
  return set_keys(config, run | population_overrides(run))


def run_seconds(variant: str) -> float | None:
  """Mean loop-clock seconds of one run of `variant` (results/fast/results.json), if measured."""
  try:
    rows = json.load(open(os.path.join(ROOT, 'results', 'fast', 'results.json')))['rows']
  except OSError:
    return None
  secs = [r['summary']['seconds'] for r in rows if r['variant'] == variant]
  return sum(secs) / len(secs) if secs else None


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--variant', default='jpeg75', choices=VARIANTS)
  parser.add_argument('--lr_max', type=float, default=0.0, help="q7: q6's max LR (0: no q7)")
  parser.add_argument('--only', default='', help='question ids, comma-separated')
  parser.add_argument('--list', action='store_true')
  parser.add_argument('--run', action='store_true')
  args = parser.parse_args()
  chosen = questions(args.variant, args.lr_max)
  if args.only:
    chosen = {q: chosen[q] for q in args.only.split(',')}
  per_run = run_seconds(args.variant)
  training = ranges = 0
  for qid, (question, runs) in chosen.items():
    print(f'# {qid}: {question}')
    for name, run in runs.items():
      if run.get('task') == 'lr_range':
        ranges += 1
      else:
        training += len(SEEDS)
      cmd = command(args.variant, qid, name, run)
      print('python ' + shlex.join(cmd))
      if args.run:
        subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True)
  cost = (
    f'about {training * per_run / 3600:.1f} h one after another at the measured {args.variant} '
    'run time, results/fast/results.json'
    if per_run
    else f'no {args.variant} run timed yet'
  )
  print(f'# {training} training member-runs ({cost}) and {ranges} range tests')


if __name__ == '__main__':
  main()
