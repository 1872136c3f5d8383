"""Why the init compiles at LLVM -O1 on the CPU (jaxland.runtime.run_once): each model's init
compiled at XLA's default -O3 and at -O1, the compile seconds side by side (the order alternates
round by round), and whether the two programs give the same bits.

Run:    JAXLAND_CACHE_DIR='' .venv/bin/python bench/init_compile.py [--rounds=2]
Prints a row per model, and as its last line each model's -O3 / -O1 compile-time ratio.
"""

import argparse
import statistics
import time

import common  # bench/common.py: puts the repository on sys.path
import jax
import jax.numpy as jnp
import numpy as np

from jaxland.models import registry

MODELS = (
  ('mlp', {'hidden_sizes': (256, 128)}, (28, 28, 1)),
  ('convnet', {}, (32, 32, 3)),
  ('resnet20', {}, (32, 32, 3)),
)


def compile_seconds(name, kwargs, shape, level):
  """(seconds to compile the init at `level`, its output leaves) for a freshly traced init."""
  model = registry.get_model(name, num_classes=10, **kwargs)
  x, key = jnp.zeros((1, *shape), jnp.float32), jax.random.PRNGKey(0)
  lowered = jax.jit(lambda k: model.init({'params': k}, x, train=False)).lower(key)
  t0 = time.perf_counter()
  compiled = lowered.compile({'xla_backend_optimization_level': level})
  return time.perf_counter() - t0, jax.tree.leaves(compiled(key))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=2)
  args = parser.parse_args()
  print(f'# {common.machine()}; {common.load()} at start')
  print('| model | -O3 compile s (min / median) | -O1 compile s (min / median) | same bits |')
  print('|---|---|---|---|')
  ratios = []
  for name, kwargs, shape in MODELS:
    times, same = {3: [], 1: []}, True
    for r in range(args.rounds):
      outs = {}
      for level in (3, 1) if r % 2 == 0 else (1, 3):
        seconds, outs[level] = compile_seconds(name, kwargs, shape, level)
        times[level].append(seconds)
      pairs = zip(outs[3], outs[1], strict=True)
      same = same and all(np.array_equal(a, b) for a, b in pairs)
    o3, o1 = (f'{min(times[k]):.2f} / {statistics.median(times[k]):.2f}' for k in (3, 1))
    print(f'| {name} | {o3} | {o1} | {same} |')
    ratios.append(f'{name} {statistics.median(times[3]) / statistics.median(times[1]):.2f}x')
  print(f'# {common.load()} at the end')
  print('-O3 / -O1 compile time: ' + ', '.join(ratios))


if __name__ == '__main__':
  main()
