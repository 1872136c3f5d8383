"""Landscape benchmark: per-example gradients by vmap vs a Python loop, and line-search points per
second evaluated together (vmapped chunks of t) vs one jitted call per point.

Run:  .venv/bin/python bench/landscape.py            (about 3 minutes on 2 CPU cores)
      .venv/bin/python bench/landscape.py --quick
Models: the MLP 784-64-10 of configs/landscape.py and its small ConvNet (2 conv layers of 8
filters, hidden 32) on Fashion-MNIST-shaped synthetic data. All ratios are measured in this run.
"""

import argparse
import time

import common  # bench/common.py: puts the repository on sys.path
import jax
import jax.numpy as jnp
import numpy as np

from jaxland.landscape import lines, per_example
from jaxland.landscape.problem import make_problem
from jaxland.models import get_model

MODELS = {
  'mlp 784-64-10': dict(name='mlp', hidden_sizes=(64,), num_classes=10),
  'convnet 2x8-32': dict(
    name='convnet', num_conv_layers=2, filters=8, hidden_sizes=(32,), num_classes=10
  ),
}


def _problem(kwargs, n):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((n, 28, 28, 1)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 10, n), jnp.int32)
  model = get_model(**kwargs)
  params = model.init(jax.random.key(0), x[:1], train=False)['params']
  return make_problem(model, params, {}, {'train': (x, y)})


def _seconds(fn, repeats=3):
  fn()  # compile
  best = np.inf
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t0)
  return best


def per_example_bench(problem, n):
  x, y = problem.splits['train']
  x, y = x[:n], y[:n]
  vmapped = _seconds(lambda: per_example.per_example_grads(problem.per_example, problem.flat, x, y))
  loop = _seconds(lambda: per_example.loop_grads(problem.per_example, problem.flat, x, y), 1)
  return loop, vmapped


def line_bench(problem, points, t_chunk, batch_size):
  x, y = problem.splits['train']
  v = lines.unit_gaussian(problem.dim, 0)
  ts = np.linspace(-1, 1, points)

  def batched():
    return lines.profile(
      problem.per_example, problem.flat, v, ts, x, y, batch_size=batch_size, t_chunk=t_chunk
    )

  def one_at_a_time():
    return lines.point_by_point(
      problem.per_example, problem.flat, v, ts, x, y, batch_size=batch_size
    )

  return _seconds(one_at_a_time, 1), _seconds(batched)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--quick', action='store_true')
  args = parser.parse_args()
  n_grad = 100 if args.quick else 500
  n_data = 1000 if args.quick else 4000
  points = 32 if args.quick else 128
  print(f'[bench/landscape] {common.machine()}')
  for name, kwargs in MODELS.items():
    problem = _problem(kwargs, n_data)
    loop, vmapped = per_example_bench(problem, n_grad)
    print(
      f'{name} ({problem.dim} params): per-example gradients of {n_grad} examples: '
      f'loop {loop:.3f}s, vmap {vmapped:.3f}s -> vmap is {loop / vmapped:.1f}x faster'
    )
    for t_chunk in (1, 8, 32):
      single, batched = line_bench(problem, points, t_chunk, 1000)
      print(
        f'{name}: line search of {points} points on {n_data} examples: one jitted call per point '
        f'{points / single:.1f} points/s, one call with {t_chunk} vmapped per chunk '
        f'{points / batched:.1f} points/s '
        f'-> {single / batched:.1f}x'
      )


if __name__ == '__main__':
  main()
