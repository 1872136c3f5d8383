"""Seed 003's Adam study: its selected MLP (or CNN) trained with Adam at 10 learning rates.

The seed's text lists 11 rates, 0 and 0.0001 ... 0.1; its config repeated 0.01 and 0.02 instead of
0.1, and lr 0 trains nothing (jaxland requires lr > 0). Here: 0.0001, 0.0002, 0.0005, 0.001,
0.002, 0.005, 0.01, 0.02, 0.05, 0.1. Batch 32, early stopping (patience 25), no weight decay.
Run:    python -m jaxland.sweep --config=configs/sweeps/seed003_adam.py:jpeg75 --workdir=DIR
Expect (seed, CIFAR-10): best MLP lr 0.001 (0.54), CNN lr 0.0002 (0.831): 20-50x below SGD's.
Arguments (see seed003.py): cnn, jpeg75, fashion, cpu (0.0002, 0.001, 0.005, 0.02, 0.1), smoke,
full.
"""

from configs.sweeps import seed003
from jaxland import sweep

LRS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
CPU_LRS = (0.0002, 0.001, 0.005, 0.02, 0.1)


def get_config(arg=None):
  args = seed003.parse(arg)
  base = seed003.base_config(args)
  base.optim.name = 'adam'
  space = sweep.values('optim.learning_rate', CPU_LRS if args.cpu else LRS)
  return seed003.sweep_config(
    'seed003_adam',
    args,
    base,
    space,
    colour_by='optim.learning_rate',
    strength='optim.learning_rate',
  )
