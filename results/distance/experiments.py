"""The runs behind results/distance/: every experiment as configs/mnist_distance.py arguments.

Run:  nice -n 5 .venv/bin/python results/distance/experiments.py [--only strength] [--seeds 0,1]
      [--smoke]  (the same 36-epoch protocol on 512 images with a small MLP, one seed, into
                  /tmp/jaxland_results_smoke/distance; results/ is untouched)
Each run is the command
  python -m jaxland.main --config=configs/mnist_distance.py:fashion,cpu,epochs=36,<args> \
    --config.seed=<seed> --workdir=runs/distance/<experiment>/<name>_s<seed>
executed in this one process (to share imports and a persistent compilation cache); runs whose
workdir already says 'done' are skipped, so an interrupted sweep continues where it stopped.
Fashion-MNIST MLP 784-512-512-10 (seed 000's mnist1 net), first 5,000 training / 2,000 test
images, SGD momentum 0.9, lr 1e-2, batch 128, coupled L2 1e-3, 36 epochs (the thesis' 600 scaled:
one anchor after epoch 6 = 100/600; periods of 9 epochs = 150/600 for anchors and restarts).
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

BASE = 'fashion,cpu,epochs=36'
RUNS_DIR = os.path.join(ROOT, 'runs', 'distance')
SEEDS = (0, 1, 2)
SMOKE = {}  # Config overrides of --smoke (smoke()).
SIGMA2 = {'0.1': 0.1**0.5, '1': 1.0, '10': 10**0.5, '100': 10.0}  # width^2 -> width (sigma)

# experiment -> [(name, mnist_distance args)]; runs repeated in several experiments are shared.
EXPERIMENTS = {
  'strength': [
    ('none', 'anchor=6,baseline'),
    ('s1', 'anchor=6,strength=1'),
    ('s10', 'anchor=6,strength=10'),
    ('s100', 'anchor=6,strength=100'),
  ],
  'width': [  # width^2 = 100 is strength/s10.
    (f'w2_{k}', f'anchor=6,strength=10,width={w!r}') for k, w in SIGMA2.items() if k != '100'
  ],
  'multi': [
    ('every_l2', 'anchors=every,period=9,strength=10'),
    ('merged_l2', 'anchors=merged,period=9,strength=10'),
    ('every_nol2', 'anchors=every,period=9,strength=10,wd=0'),
    ('every_l2x10', 'anchors=every,period=9,strength=10,wd=0.01'),
    ('none_l2', 'anchors=every,period=9,baseline'),
    ('none_nol2', 'anchors=every,period=9,baseline,wd=0'),
  ],
  'schedules': [
    ('step_rep', 'schedule=step,period=9,anchor=6,strength=10'),
    ('step_none', 'schedule=step,period=9,anchor=6,baseline'),
    ('cosine_rep', 'schedule=cosine,period=9,anchor=6,strength=10'),
    ('cosine_none', 'schedule=cosine,period=9,anchor=6,baseline'),
    ('cosine01_rep', 'schedule=cosine,period=9,anchor=6,strength=10,lr=0.01'),
    ('cosine01_none', 'schedule=cosine,period=9,anchor=6,baseline,lr=0.01'),
  ],
  'ensemble': [
    ('every_s1', 'anchors=every,period=9,strength=1'),
    ('every_s100', 'anchors=every,period=9,strength=100'),
  ],
}


def config_args(args: str) -> str:
  return f'{BASE},{args}'


def smoke() -> str:
  """Switches this module to --smoke scale; returns the folder for its runs and outputs."""
  global RUNS_DIR, SEEDS
  root = os.path.join('/tmp', 'jaxland_results_smoke', 'distance')
  RUNS_DIR, SEEDS = os.path.join(root, 'runs'), (0,)
  SMOKE.update({'train_subset': 512, 'test_subset': 256, 'hidden_sizes': (32,)})
  return root


def workdir(experiment: str, name: str, seed: int) -> str:
  return os.path.join(RUNS_DIR, experiment, f'{name}_s{seed}')


def command(experiment: str, name: str, args: str, seed: int) -> str:
  """The shell command equivalent to one run."""
  return (
    f'python -m jaxland.main --config=configs/mnist_distance.py:{config_args(args)} '
    f'--config.seed={seed} --workdir=runs/distance/{experiment}/{name}_s{seed}'
  )


def get_config(args: str, seed: int):
  from configs import mnist_distance

  config = mnist_distance.get_config(config_args(args))
  config.seed = seed
  if SMOKE:
    config.data.train_subset, config.data.test_subset = SMOKE['train_subset'], SMOKE['test_subset']
    config.model.hidden_sizes = SMOKE['hidden_sizes']
  return config


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--only', default='', help='comma-separated experiments (default: all)')
  parser.add_argument('--seeds', default='')
  parser.add_argument('--smoke', action='store_true')
  flags = parser.parse_args()
  if flags.smoke:
    smoke()
  import jax

  jax.config.update('jax_compilation_cache_dir', os.path.join(RUNS_DIR, '.jax_cache'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  from jaxland import tasks
  from jaxland.rundir import workdir as workdir_lib

  only = [e for e in flags.only.split(',') if e] or list(EXPERIMENTS)
  seeds = [int(s) for s in flags.seeds.split(',')] if flags.seeds else list(SEEDS)
  start = time.time()
  for experiment in only:
    for name, args in EXPERIMENTS[experiment]:
      for seed in seeds:
        wd = workdir(experiment, name, seed)
        if workdir_lib.read_status(wd)['status'] == 'done':
          continue
        t0 = time.time()
        config = get_config(args, seed)
        config.overwrite = True
        summary = tasks.run(config, wd)
        print(
          f'[distance] {experiment}/{name} seed {seed}: {summary["status"]}, test accuracy '
          f'{summary.get("final_test_accuracy", float("nan")):.4f}, {time.time() - t0:.1f} s '
          f'(total {time.time() - start:.0f} s)',
          flush=True,
        )


if __name__ == '__main__':
  main()
