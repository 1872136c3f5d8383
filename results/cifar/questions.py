"""The seeds' questions at full CIFAR-10 size (issue 16), as runs of the fast network: each question
is a few runs of configs/cifar_fast.py (all 50k cifar10_jpeg75 training images), each run a
population over seeds 0, 1, 2 (one process, one compiled step; the members are ordinary run dirs).

Run:    JAXLAND_DATA_DIR=../shared/data .venv/bin/python results/cifar/questions.py --list
          [--variant=jpeg75|jpeg75,cpu] [--only=q1,q4]     the commands, and their cost
        ... questions.py --run [--variant=...] [--only=...]   run them into runs/cifar/<q>/<run>
The published recipe (`jpeg75`, 10 epochs) is meant for a GPU; `jpeg75,cpu` (8 epochs of the
narrower net, about 27 min a run on the 2-core CPU: results/fast) is the CPU's. Protocols are
the thesis' scaled to the run's length as results/distance scales them: anchors, restarts and
snapshots at the same fractions of training. q7 takes q6's max LR (--lr_max). q9 is seed 003's
own sweeps (its MLP and CNN, not the fast network) at full size: configs/sweeps/seed003_*.py's
`full` switch (a validation split picks the epoch and stops early), 3 seeds a point, each sweep
`--vectorize`d. q10 trains one fast-network run per seed saving its params every epoch, then the
spectrum task at init, epoch 1, the middle and the end, and the landscape task's line searches
at the end, in that run's folder. q5 adds the ensemble task on each member of its runs once they
are trained (agreement, error correlation). tests/test_scripts.py validates every config here, so no
command rots while it waits for hardware.

A run is a dict of config overrides; keys starting with '@' say how it runs instead: '@config'
(another config file and argument than the fast network's), '@module' ('jaxland.sweep'), '@seeds'
(False: one process, not a population over SEEDS), '@workdir' (a folder other than its own) and
'@same_as' ((question, run): another question's run of the same config, read from its folder and
not run or counted again; tests/test_scripts.py checks that the configs are the same).
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
SEED003_SWEEPS = ('mlp_vs_cnn', 'dropout', 'l2', 'batchnorm', 'adam')
STEPS_PER_EPOCH = 50000 // 1024  # The fast network's batches of 1024 (the partial one dropped).
SPECTRUM_EXAMPLES = 2048  # q10's data subset: 2 of the recipe's batches (BatchNorm in train mode).


def questions(variant: str, lr_max: float = 0.0) -> dict:
  """{question id: (question, {run name: overrides})}; every run is a population over SEEDS.
  q7 (one-cycle at the range test's max LR) needs that LR: it is left out without lr_max."""
  from configs import cifar_fast

  base = cifar_fast.get_config(variant)
  epochs, lr = base.train.num_epochs, base.optim.learning_rate
  third, quarter = max(1, epochs // 3), max(1, epochs // 4)
  # q1 and q4 read the test accuracy after each anchor and in each restart cycle: a test
  # evaluation every epoch (the `cpu` variant's own runs evaluate every 5 epochs). q2, q3 and q5
  # read distances (the anchor probe logs them every epoch, whatever the evaluations) and the
  # final accuracy (q5: its ensemble task, after training): one evaluation, at the end, which
  # saves a TTA pass over the test set per member and epoch (about a third of a population's
  # time) and leaves the trajectory unchanged (tests/test_ensemble.py).
  each_epoch = {'train.eval_every_epochs': 1}
  at_end = {'train.eval_every_epochs': epochs}
  # No question reads the ensemble logged each epoch (a second TTA pass over the test set per
  # member, about a fifth of a population's time): q5's ensemble task measures it once, after
  # training. q1's strength 0 and 10 ran with it (logging only: the same trajectory).
  no_ensemble_log = {'repulsion.log_ensemble': False}
  anchored = each_epoch | {'repulsion.enabled': True, 'repulsion.anchor_epochs': (third,)}
  anchored |= {'repulsion.snapshot_epochs': (third,)} | no_ensemble_log
  restarts = {'optim.schedule.name': 'cosine_restarts', 'optim.schedule.t0_epochs': third}
  every = {'repulsion.enabled': True, 'repulsion.anchor_every': quarter}
  every |= {'repulsion.snapshot_every': quarter} | no_ensemble_log
  step = {'optim.schedule.name': 'step', 'optim.schedule.decay_every_epochs': third}
  # q3 and q4's runs without repulsion keep the same anchors at strength 0 (virtual: no force,
  # the same trajectory), so that their distance to each anchor is logged beside the repulsed.
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
        f'{mode}_{"l2" if l2 else "nol2"}': at_end
        | every
        | {'repulsion.strength': 10.0, 'repulsion.mode': mode}
        | ({} if l2 else {'optim.weight_decay': 0.0})
        for mode in ('sum', 'merged')
        for l2 in (True, False)
      },
    ),
    'q3': (
      'Step decay and cosine restarts, with and without repulsion: does distance follow the LR?',
      {
        f'{name}_{"rep" if rep else "norep"}': at_end
        | sched
        | every
        | {'repulsion.strength': 10.0 if rep else 0.0}
        for name, sched in (
          ('step', step),
          ('restarts', restarts),
        )
        for rep in (False, True)
      },
    ),
    'q4': (
      "The thesis' wrong learning rate: restarts at 0.1x / 10x the LR, with and without repulsion",
      {
        f'lr{scale:g}x_{"rep" if rep else "norep"}': each_epoch
        | restarts
        | {'optim.learning_rate': lr * scale}
        | every
        | {'repulsion.strength': 10.0 if rep else 0.0}
        for scale in (0.1, 10.0)
        for rep in (False, True)
      },
    ),
    'q5': (
      'Snapshot ensembles against warm-restart snapshot ensembles, by strength',
      {
        **{f'snapshots_s{s:g}': at_end | every | {'repulsion.strength': s} for s in (0.0, 1.0)},
        'snapshots_s10': at_end
        | every
        | {'repulsion.strength': 10.0, '@same_as': ('q2', 'sum_l2')},
        'restart_snapshots': at_end
        | restarts
        | {'repulsion.enabled': True, 'repulsion.strength': 0.0}
        | {'repulsion.snapshot_every': third}
        | no_ensemble_log,
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
  out['q5'][1].update(ensembles(variant, out['q5'][1]))
  out['q9'] = (
    "Seed 003's MLP against its CNN; dropout, L2, BatchNorm, Adam: early stopping on validation",
    seed003_sweeps(variant),
  )
  out['q10'] = (
    'The Hessian spectrum of the fast network at 4 checkpoints',
    spectra(variant, epochs),
  )
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


def ensembles(variant: str, runs: dict) -> dict:
  """q5's agreement and error correlation: task `ensemble` on each member of each of its runs,
  after training (its snapshots and final model against the test set, in <member>/ensemble/)."""
  out = {}
  for name, run in runs.items():
    member_of = workdir_of(variant, 'q5', name, run)
    for seed in SEEDS:
      out[f'ensemble_{name}_seed{seed}'] = {
        **{k: v for k, v in run.items() if not k.startswith('@')},
        'task': 'ensemble',
        'seed': seed,
        '@seeds': False,
        '@workdir': os.path.join(member_of, f'seed={seed}'),
      }
  return out


def seed003_sweeps(variant: str) -> dict:
  """q9: every seed003 sweep on the MLP and on the CNN, `full` size (3 seeds a point)."""
  arg = 'jpeg75,full' + (',cpu' if 'cpu' in variant.split(',') else '')
  runs = {}
  for name in SEED003_SWEEPS:
    for model in ('mlp', 'cnn'):
      for suffix in ('', ',nobn') if name == 'batchnorm' else ('',):  # nobn: the comparison.
        config = f'configs/sweeps/seed003_{name}.py:{arg}{",cnn" if model == "cnn" else ""}'
        run_name = f'{name}_{model}' + ('_nobn' if suffix else '')
        runs[run_name] = {'@module': 'jaxland.sweep', '@config': config + suffix}
  return runs


def spectra(variant: str, epochs: int) -> dict:
  """q10: per seed, a run saving its params each epoch, then the spectrum at 4 of them and the
  line searches (top eigendirections and random ones) at the last, written into that run."""
  steps = (0, STEPS_PER_EPOCH, epochs // 2 * STEPS_PER_EPOCH, epochs * STEPS_PER_EPOCH)
  runs = {}
  for seed in SEEDS:
    train = run_dir(variant, 'q10', f'train_seed{seed}')
    runs[f'train_seed{seed}'] = {
      '@seeds': False,
      'seed': seed,
      'train.trajectory_every_steps': STEPS_PER_EPOCH,
    }
    runs[f'spectrum_seed{seed}'] = {
      '@config': f'configs/spectrum.py:n={SPECTRUM_EXAMPLES}',
      '@workdir': train,
      'checkpoint': train,
      'spectrum.steps': steps,
      'spectrum.bn_mode': 'train',
    }
    runs[f'landscape_seed{seed}'] = {
      '@config': 'configs/landscape.py',
      '@workdir': train,
      'checkpoint': f'{train}:{steps[-1]}',
      'landscape.probes': ('lines', 'random'),
      'landscape.curvature_examples': SPECTRUM_EXAMPLES,
      'landscape.t_chunk': 1,  # On the CPU a vmapped conv over t is a slow grouped conv.
    }
  return runs


def is_training(run: dict) -> bool:
  """A run of the fast network (not a range test, a sweep or an analysis task)."""
  return run.get('task', 'train') == 'train' and '@config' not in run


def population_overrides(run: dict) -> dict:
  """A training run trains its seeds as one population; a range test runs per seed 0."""
  if not is_training(run) or run.get('@seeds') is False:
    return {}
  return {'population.seed': SEEDS}


def overrides_of(run: dict) -> dict:
  return {k: v for k, v in run.items() if not k.startswith('@')} | population_overrides(run)


def run_dir(variant: str, qid: str, name: str) -> str:
  return os.path.join('runs', 'cifar', variant.replace(',', '_'), qid, name)


def config_arg(variant: str, run: dict) -> str:
  """configs/cifar_fast.py's argument: the variant and the research sections the run sets."""
  from jaxland import config as config_lib

  lines = sorted({k.split('.')[0] for k in run} & set(config_lib.SECTIONS))
  return variant + (f',lines={"-".join(lines)}' if lines else '')


def config_file(variant: str, run: dict) -> str:
  return run.get('@config') or f'configs/cifar_fast.py:{config_arg(variant, overrides_of(run))}'


def workdir_of(variant: str, qid: str, name: str, run: dict) -> str:
  """Where the run writes: its '@workdir', the folder of the run it is '@same_as', or its own."""
  return run.get('@workdir') or run_dir(variant, *run.get('@same_as', (qid, name)))


def command(variant: str, qid: str, name: str, run: dict) -> list[str]:
  flags = [f'--config.{k}={_flag(v)}' for k, v in overrides_of(run).items()]
  workdir = workdir_of(variant, qid, name, run)
  module = run.get('@module', 'jaxland.main')
  tail = ['--vectorize'] if module == 'jaxland.sweep' else []
  config = f'--config={config_file(variant, run)}'
  return ['-m', module, config, *flags, f'--workdir={workdir}', *tail]


def _flag(value) -> str:
  return repr(value) if isinstance(value, tuple) else str(value)


def config_of(variant: str, run: dict):
  """The run's config as jaxland.main builds it from command()'s flags (for validation); for a
  sweep, the configs of all its points."""
  import importlib.util

  from jaxland import sweep
  from tests.helpers import set_keys

  path, _, arg = config_file(variant, run).partition(':')
  spec = importlib.util.spec_from_file_location('question_config', os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = set_keys(module.get_config(arg or None), overrides_of(run))
  if run.get('@module') == 'jaxland.sweep':
    return [sweep.point_config(config, point) for point in sweep.resolve(config)]
  return config


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
    wanted = args.only.split(',')
    for q in wanted:
      if q not in chosen:
        why = "q7 needs --lr_max (q6's max LR)" if q == 'q7' else f'choose from {sorted(chosen)}'
        parser.error(f'--only={args.only}: {q!r} is not a question here; {why}')
    chosen = {q: chosen[q] for q in wanted}
  per_run = run_seconds(args.variant)
  training = ranges = others = 0
  for qid, (question, runs) in chosen.items():
    print(f'# {qid}: {question}')
    for name, run in runs.items():
      if '@same_as' in run:
        print(f'# {name}: the same run as {"/".join(run["@same_as"])} (not run again)')
        continue
      if run.get('task') == 'lr_range':
        ranges += 1
      elif is_training(run):
        training += len(population_overrides(run).get('population.seed', (0,)))
      else:
        others += 1
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
  print(
    f'# {training} training member-runs of the fast network ({cost}), {ranges} range tests, '
    f'{others} sweeps (q9: seed 003 models) and analysis tasks (q5: ensembles, q10)'
  )


if __name__ == '__main__':
  main()
