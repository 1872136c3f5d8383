"""Seed 003's dropout study: rates 0 ... 0.5 on its selected MLP (or CNN: dense and 2-D dropout).

The seed's grid (its text says eight rates and lists 0.2 twice; its config has 0.02):
0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5. The CNN uses the one rate for Dropout and Dropout2d, as
the seed. lr 0.05, plain SGD, batch 32, early stopping (patience 25).
Run:    python -m jaxland.sweep --config=configs/sweeps/seed003_dropout.py:jpeg75 --workdir=DIR
Expect (seed, CIFAR-10): dropout helps: MLP 0.567 (rate 0.2) vs 0.548, CNN 0.831 (0.3) vs 0.808.
Arguments (see seed003.py): cnn, jpeg75, fashion, cpu (0, 0.1, 0.2, 0.3, 0.5), smoke, full.
"""

from configs.sweeps import seed003
from jaxland import sweep

RATES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
CPU_RATES = (0.0, 0.1, 0.2, 0.3, 0.5)


def get_config(arg=None):
  args = seed003.parse(arg)
  rates = CPU_RATES if args.cpu else RATES
  space = sweep.values('model.dropout', rates)
  if args.cnn:
    space = sweep.zipped(space, sweep.values('model.dropout2d', rates))
  return seed003.sweep_config(
    'seed003_dropout',
    args,
    seed003.base_config(args),
    space,
    colour_by='model.dropout',
    strength='model.dropout',
  )
