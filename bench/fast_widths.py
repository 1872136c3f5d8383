"""What a configs/cifar_fast.py step costs at other widths and conv backwards: the numbers the
`:cpu` variant was sized from (results/fast/README.md).

    .venv/bin/python bench/fast_widths.py [--widths=64-256-256,32-128,128,24-96-96]
        [--backwards=chunked,matmul] [--dtypes=float32,bfloat16] [--batch=1024] [--rounds=3]

Each (widths, backward, compute dtype) is the loop's own jitted train step of the recipe
(augmentation, lookahead, groups) on synthetic CIFAR-shaped data, compiled ahead (timed), then
timed for `rounds` calls, the settings interleaved round by round. Prints compile s, min / median
s per step and the epoch (48 steps of 1024) it implies; the last line holds every s / step.
"""

import argparse
import statistics
import time

import common  # bench/common.py: puts the repository on sys.path

from configs import cifar_fast  # noqa: E402
from jaxland.data import pipeline  # noqa: E402
from jaxland.train import loop  # noqa: E402


def compiled_step(widths: str, backward: str, dtype: str, batch: int):
  """() -> seconds of one train step (blocking), after an ahead-of-time compile (timed)."""
  config = cifar_fast.get_config(f'widths={widths}')
  config.model.conv_backward = backward
  config.model.dtype = dtype
  config.data.name = 'synthetic'
  config.data.synthetic.num_train = 2 * batch
  config.data.batch_size = batch
  run = loop.build_run(config, '/tmp/jaxland_bench_unused', writer=None)
  images, labels = run.device_data['train']
  idx = pipeline.epoch_batches(0, 0, 2 * batch, batch)
  step = loop.AheadOfTime(loop.make_train_step(run), run.state, images, labels, idx)
  box = {'state': run.state}

  def call():
    t0 = time.perf_counter()
    box['state'], m = step(box['state'], images, labels, idx)
    m['loss'].block_until_ready()
    return time.perf_counter() - t0

  call()  # The first call allocates; not timed.
  return step.seconds, call


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--widths', default='64-256-256,32-128-128,32-96-96,24-96-96')
  parser.add_argument('--backwards', default='chunked,matmul')
  parser.add_argument('--dtypes', default='float32')
  parser.add_argument('--batch', type=int, default=1024)
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args()
  keys = [
    (w, b, d)
    for w in args.widths.split(',')
    for b in args.backwards.split(',')
    for d in args.dtypes.split(',')
  ]
  steps, times = {}, {k: [] for k in keys}
  print(f'# {common.machine()}; {common.load()} at start; batch {args.batch}', flush=True)
  for key in keys:
    steps[key] = compiled_step(*key, args.batch)
  for _ in range(args.rounds):
    for key in keys:  # Interleaved: every setting once per round.
      times[key].append(steps[key][1]())
  print('| widths | backward | dtype | compile s | s / step (min, median) | epoch, 48 steps (s) |')
  print('|---|---|---|---|---|---|')
  for key in keys:
    t = times[key]
    print(
      f'| {" | ".join(key)} | {steps[key][0]:.1f} | {min(t):.2f}, {statistics.median(t):.2f} '
      f'| {48 * statistics.median(t):.0f} |'
    )
  print(f'# {common.load()} at the end')
  print(' '.join(f'{"/".join(k)}={statistics.median(times[k]):.2f}s' for k in keys))


if __name__ == '__main__':
  main()
