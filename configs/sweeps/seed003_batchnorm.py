"""Seed 003's BatchNorm study: its selected MLP (or CNN) with BatchNorm after every layer x 4 LRs.

lr 0.02, 0.05, 0.1, 0.2; plain SGD, batch 32, early stopping (patience 25). Compare with the same
LRs without BatchNorm (the grids' 4 x 256 MLP and 5 x 256 CNN rows).
Run:    python -m jaxland.sweep --config=configs/sweeps/seed003_batchnorm.py:jpeg75 --workdir=DIR
Expect (seed, CIFAR-10): MLP 0.56 vs 0.549, CNN 0.831 vs 0.808; the CNN trains stably at lr 0.2,
which diverged without BatchNorm. Arguments (see seed003.py): cnn, jpeg75, fashion, cpu, smoke,
full;
`nobn` runs the same LRs without BatchNorm (the comparison row).
"""

from configs.sweeps import seed003
from jaxland import sweep

LRS = (0.02, 0.05, 0.1, 0.2)


def get_config(arg=None):
  args = seed003.parse(arg, nobn=False)
  base = seed003.base_config(args)
  base.model.batch_norm = not args.nobn
  space = sweep.values('optim.learning_rate', LRS)
  config = seed003.sweep_config(
    'seed003_batchnorm',
    args,
    base,
    space,
    colour_by='optim.learning_rate',
    strength='optim.learning_rate',
  )
  if args.nobn:
    config.name += '_nobn'
  return config
