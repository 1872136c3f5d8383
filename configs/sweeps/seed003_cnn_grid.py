"""Seed 003's CNN grid: 2/3/5 conv layers x 32/64/128/256 filters x lr 0.02/0.05/0.1/0.2 (48 runs).

Dense head 128-64, 5x5 kernels, 2x2 max pool; plain SGD, batch 32, up to 100 epochs with early
stopping (patience 25 on test accuracy). A GPU sweep at full size.
Run:    python -m jaxland.sweep --config=configs/sweeps/seed003_cnn_grid.py:jpeg75 --workdir=DIR
        python -m jaxland.report DIR
Expect (seed, CIFAR-10): best 0.808 (5 x 256, lr 0.05); more filters and more layers help;
lr 0.1 and 0.2 diverge.
Arguments (see seed003.py): jpeg75, fashion, cpu (2/3/5 layers x 8/16 filters, lr 0.05 only,
padding 0/2/2), smoke.
"""

from configs.sweeps import seed003
from jaxland import sweep

CONV, FILTERS, LRS = (2, 3, 5), (32, 64, 128, 256), (0.02, 0.05, 0.1, 0.2)
CPU_FILTERS, CPU_LRS = (8, 16), (0.05,)


def get_config(arg=None):
  args = seed003.parse(arg)
  args.cnn = True
  filters, lrs = (CPU_FILTERS, CPU_LRS) if args.cpu else (FILTERS, LRS)
  filters = CPU_FILTERS if args.smoke else filters
  conv = sweep.values('model.num_conv_layers', CONV)
  if args.cpu or args.smoke:  # Padding 0 for two layers, 2 instead of 3 (see seed003.py).
    pads = [0 if n == 2 and not args.smoke else 2 for n in CONV]  # Smoke: fits 8x8 digits too.
    conv = sweep.zipped(conv, sweep.values('model.padding', pads))
  space = sweep.product(
    conv,
    sweep.values('model.filters', filters),
    sweep.values('optim.learning_rate', lrs),
  )
  return seed003.sweep_config(
    'seed003_grid',
    args,
    seed003.base_config(args),
    space,
    group_by=('model.num_conv_layers',),
    heatmaps=(
      ('model.num_conv_layers', 'model.filters'),
      ('model.num_conv_layers', 'optim.learning_rate'),
    ),
    colour_by='optim.learning_rate',
  )
