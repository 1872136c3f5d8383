"""Seed 003's L2 study: coupled weight decay 0 ... 0.2 on its selected MLP (or CNN with `cnn`).

Nine strengths (0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2), lr 0.05, plain SGD, batch 32,
early stopping (patience 25). PyTorch's SGD weight_decay is jaxland's optim.weight_decay.
Run:    python -m jaxland.sweep --config=configs/sweeps/seed003_l2.py:jpeg75 --workdir=DIR
Expect (seed, CIFAR-10): no gain (MLP 0.551 vs 0.548, CNN 0.807 vs 0.808); from 0.005 up the CNN
barely learns. Arguments (see seed003.py): cnn, jpeg75, fashion, cpu (5 strengths), smoke, full.
"""

from configs.sweeps import seed003
from jaxland import sweep

STRENGTHS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
CPU_STRENGTHS = (0.0, 0.001, 0.005, 0.02, 0.1)


def get_config(arg=None):
  args = seed003.parse(arg)
  space = sweep.values('optim.weight_decay', CPU_STRENGTHS if args.cpu else STRENGTHS)
  return seed003.sweep_config(
    'seed003_l2',
    args,
    seed003.base_config(args),
    space,
    colour_by='optim.weight_decay',
    strength='optim.weight_decay',
  )
