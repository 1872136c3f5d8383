"""Does the chunked conv backward's data movement cost the step? An A/B of the loop's own train
step with jaxland.models.layers' CPU convolution changed one piece at a time:

  chunked     today's: the weight gradient over 16 chunks of 8 examples, its input stored in the
              chunked layout by a conditional (layers.py's docstring says why)
  one_chunk   the same with one chunk of the whole batch (no per-chunk slices)
  no_store    the chunks read straight from the forward's activations (no conditional copy)
  xla         XLA's own convolution gradient (no custom backward)

Run:    .venv/bin/python bench/conv_variants.py [--models=resnet20,airbench_cpu] [--rounds=7]
        [--variants=chunked,one_chunk,no_store,xla]
Each variant's step is built and compiled first, then all are timed round by round (interleaved).
Prints min / median s per step and, as its last line, each variant's median / chunked's.
"""

import argparse
import contextlib
import statistics
import time

import common  # bench/common.py: puts the repository on sys.path
import jax
import train_step

from jaxland.models import layers

VARIANTS = ('chunked', 'one_chunk', 'no_store', 'xla')


@contextlib.contextmanager
def variant(name: str, batch: int):
  """layers' CPU convolution as `name` while a step is traced (restored afterwards)."""
  saved = layers.conv, layers._stored_input, layers.WEIGHT_GRAD_CHUNK
  if name == 'one_chunk':
    layers.WEIGHT_GRAD_CHUNK = batch
  elif name == 'no_store':
    layers._stored_input = lambda x, kernel: layers.chunked_input(x, layers.WEIGHT_GRAD_CHUNK)
  elif name == 'xla':
    layers.conv = lambda x, kernel, strides, padding: layers._conv(x, kernel, strides, padding)
  try:
    yield
  finally:
    layers.conv, layers._stored_input, layers.WEIGHT_GRAD_CHUNK = saved


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='resnet20,airbench_cpu')
  parser.add_argument('--variants', default=','.join(VARIANTS))
  parser.add_argument('--rounds', type=int, default=7)
  args = parser.parse_args()
  names = args.variants.split(',')
  print(f'# {common.machine()}; {common.load()} at start')
  ratios = []
  for model in args.models.split(','):
    batch = train_step.MODELS[model][1]
    calls = {}
    for name in names:
      with variant(name, batch):
        _, _, call, _ = train_step.jax_step(model)
        jax.block_until_ready(call())  # Traces (under the variant) and compiles.
      calls[name] = call
    times = {name: [] for name in names}
    for r in range(args.rounds):
      for name in names[r % len(names) :] + names[: r % len(names)]:
        t = time.perf_counter()
        jax.block_until_ready(calls[name]())
        times[name].append(time.perf_counter() - t)
    print(f'## {model}, batch {batch}: s per train step over {args.rounds} interleaved rounds')
    print('| variant | min s | median s | median / chunked |\n|---|---|---|---|')
    base = statistics.median(times[names[0]])
    for name in names:
      med = statistics.median(times[name])
      print(f'| {name} | {min(times[name]):.3f} | {med:.3f} | {med / base:.2f} |')
      ratios.append(f'{model}/{name}={med / base:.2f}')
  print(f'# {common.load()} at the end')
  print(' '.join(ratios))


if __name__ == '__main__':
  main()
