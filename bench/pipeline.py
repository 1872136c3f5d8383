"""Train-step time fed by jaxland's on-device pipeline / fed by a batch already on the device.

The pipeline gathers the batch from the device-resident split, pads-crops, flips and normalizes it
inside the jitted step; the baseline step receives a ready normalized batch. Target: <= 1.03.

    .venv/bin/python bench/pipeline.py [--model resnet20] [--batch 128] [--steps 10]
"""

import argparse
import functools

import common  # noqa: F401  (sets up the path)
import jax

from configs import default
from jaxland.data import pipeline
from jaxland.train import loop, steps


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--model', default='resnet20')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args()
  config = default.get_config()
  config.data.name = 'synthetic'
  config.data.batch_size = args.batch
  config.data.augment.crop = config.data.augment.flip = True
  config.model = type(config.model)({'name': args.model})
  run = loop.build_run(config, '/tmp/unused', writer=None)
  images, labels = run.device_data['train']
  idx = pipeline.epoch_batches(0, 0, len(run.dataset.train[1]), args.batch)
  fed = loop.make_train_step(run)
  x, y = jax.jit(
    functools.partial(
      pipeline.train_batch,
      augment_cfg=config.data.augment.to_dict(),
      mean=run.dataset.mean,
      std=run.dataset.std,
    )
  )(images, labels, idx[0], jax.random.PRNGKey(0))
  ready = jax.jit(
    functools.partial(steps.update_on_batch, model=run.model, tx=run.tx), donate_argnums=(0,)
  )
  key = jax.random.PRNGKey(1)
  states = {'pipeline': run.state, 'on_device': jax.tree.map(lambda a: a.copy(), run.state)}

  def with_pipeline():
    states['pipeline'], m = fed(states['pipeline'], images, labels, idx)
    return m['loss']

  def on_device():
    states['on_device'], m = ready(states['on_device'], x, y, key)
    return m['loss']

  t = common.interleaved({'pipeline': with_pipeline, 'on_device': on_device}, n=args.steps)
  print(f'# {common.machine()}')
  print(f'# {args.model}, batch {args.batch}, 32x32x3 synthetic, crop+flip+normalize in the step')
  for name, sec in t.items():
    print(f'{name:>10}: {args.batch / sec:9.1f} images/s')
  print(
    f'ratio pipeline/on_device step time: {t["pipeline"] / t["on_device"]:.3f} (target <= 1.03)'
  )


if __name__ == '__main__':
  main()
