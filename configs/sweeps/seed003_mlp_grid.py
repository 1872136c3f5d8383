"""Seed 003's MLP grid: 2/3/4/6 layers x 32/64/128/256 units x lr 0.02/0.05/0.1/0.2 (64 runs).

Plain SGD, batch 32, up to 100 epochs with early stopping (patience 25 on test accuracy).
Run:    python -m jaxland.sweep --config=configs/sweeps/seed003_mlp_grid.py:jpeg75 --workdir=DIR
        python -m jaxland.report DIR
Expect (seed, CIFAR-10): best 0.549; more than 2-3 layers adds little; lr <= 0.05 is best.
Arguments (see seed003.py): jpeg75, fashion, cpu (2/3/4/6 layers x 32/256 units x lr 0.02/0.05/0.2),
smoke.
"""

from configs.sweeps import seed003
from jaxland import sweep

LAYERS, WIDTHS, LRS = (2, 3, 4, 6), (32, 64, 128, 256), (0.02, 0.05, 0.1, 0.2)
CPU_WIDTHS, CPU_LRS = (32, 256), (0.02, 0.05, 0.2)


def get_config(arg=None):
  args = seed003.parse(arg)
  args.cnn = False
  widths, lrs = (CPU_WIDTHS, CPU_LRS) if args.cpu else (WIDTHS, LRS)
  grid = [(layers, width) for layers in LAYERS for width in widths]
  space = sweep.product(
    sweep.zipped(
      sweep.values('model.hidden_sizes', [(w,) * (n - 1) for n, w in grid]),
      sweep.values('tag.layers', [n for n, _ in grid]),
      sweep.values('tag.width', [w for _, w in grid]),
    ),
    sweep.values('optim.learning_rate', lrs),
  )
  return seed003.sweep_config(
    'seed003_grid',
    args,
    seed003.base_config(args),
    space,
    group_by=('tag.layers',),
    heatmaps=(('tag.layers', 'tag.width'), ('tag.layers', 'optim.learning_rate')),
    colour_by='optim.learning_rate',
  )
