"""Images/s of jaxland's MLP and ResNet-20 train steps on CPU, under XLA CPU flags and dtypes.

Each variant runs in its own process (XLA flags are read at start-up); variants are interleaved
over rounds and every figure is printed as a ratio to the plain float32 baseline of the same round.

    .venv/bin/python bench/train_step.py [--rounds 2] [--steps 10]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

VARIANTS = {  # name -> (extra XLA_FLAGS, compute dtype)
  'baseline': ('', 'float32'),
  'bfloat16': ('', 'bfloat16'),
  'fast_math': ('--xla_cpu_enable_fast_math=true', 'float32'),
  'onednn': ('--xla_cpu_use_onednn=true', 'float32'),
  'no_thunks': ('--xla_cpu_use_thunk_runtime=false', 'float32'),
}
MODELS = {'mlp': ('fashion-shaped 28x28x1', 128), 'resnet20': ('CIFAR-shaped 32x32x3', 128)}


def child(model: str, dtype: str, steps: int) -> float:
  """Runs inside the subprocess: images/s of `steps` jitted train steps."""
  import common
  import ml_collections

  from configs import default
  from jaxland.data import pipeline
  from jaxland.train import loop

  config = default.get_config()
  config.data.name = 'synthetic'
  if model == 'mlp':
    config.data.synthetic.image_shape = (28, 28, 1)
    config.model.hidden_sizes = (512, 512)
    config.model.dtype = dtype
  else:
    config.model = ml_collections.ConfigDict({'name': model, 'dtype': dtype})
  config.data.batch_size = MODELS[model][1]
  run = loop.build_run(config, '/tmp/unused', writer=None)
  step = loop.make_train_step(run)
  images, labels = run.device_data['train']
  idx = pipeline.epoch_batches(0, 0, len(run.dataset.train[1]), config.data.batch_size)
  box = {'state': run.state}

  def one():
    box['state'], m = step(box['state'], images, labels, idx)
    return m['loss']

  n = steps * (20 if model == 'mlp' else 1)
  return config.data.batch_size / common.time_calls(one, n)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--child', nargs=2, metavar=('MODEL', 'DTYPE'))
  args = parser.parse_args()
  if args.child:
    print(json.dumps({'images_per_s': child(*args.child, args.steps)}))
    return
  import common

  print(f'# {common.machine()}')
  rates = {(m, v): [] for m in MODELS for v in VARIANTS}
  for _ in range(args.rounds):
    for model in MODELS:
      for name, (flags, dtype) in VARIANTS.items():
        env = dict(os.environ, XLA_FLAGS=f'{os.environ.get("XLA_FLAGS", "")} {flags}'.strip())
        out = subprocess.run(
          [sys.executable, __file__, '--child', model, dtype, '--steps', str(args.steps)],
          env=env,
          capture_output=True,
          text=True,
          check=False,
        )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith('{')]
        rates[model, name].append(json.loads(lines[-1])['images_per_s'] if lines else float('nan'))
        if not lines:
          print(f'# {model}/{name} failed: {out.stderr.strip().splitlines()[-1:]}')
  for model, (shape, batch) in MODELS.items():
    base = statistics.median(rates[model, 'baseline'])
    print(f'\n{model} ({shape}, batch {batch}): baseline {base:.0f} images/s')
    for name in VARIANTS:
      r = statistics.median(rates[model, name])
      print(f'  {name:>10}: {r:9.0f} images/s   ratio to baseline {r / base:5.2f}')


if __name__ == '__main__':
  main()
