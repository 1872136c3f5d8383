"""Seed 003's headline, CNN against MLP, with seeds: its best MLP and a small CNN, 3 seeds each.

The grids (seed003_mlp_grid / seed003_cnn_grid) run one seed per point on a small budget, where
the two models land within noise of each other; this sweep gives each model more data and
epochs and three seeds, so the gap (or its absence) is measured with a standard deviation.
MLP: 3 layers x 256 (the grid's best), lr 0.02 and 0.05. CNN (`cnn`): 2 conv layers (padding 0,
as the seed) of 16 and 32 filters, dense 128-64, lr 0.05. Plain SGD, batch 32, as the seed.
Run:    python -m jaxland.sweep --config=configs/sweeps/seed003_mlp_vs_cnn.py:jpeg75,cpu \
          --workdir=runs/sweeps/cifar10_jpeg75_mlp_seeds
        python -m jaxland.sweep --config=configs/sweeps/seed003_mlp_vs_cnn.py:jpeg75,cpu,cnn \
          --workdir=runs/sweeps/cifar10_jpeg75_cnn_seeds
Expect (seed, CIFAR-10, 100 epochs): CNN 0.808 against MLP 0.549.
Arguments (see seed003.py): cnn, jpeg75, fashion, smoke, full; cpu (without full) here means 20,000
training images, the whole test split and 15 epochs (about 20 minutes for both sweeps on 2 CPU
cores).
"""

from configs.sweeps import seed003
from jaxland import sweep

SEEDS = (0, 1, 2)
CPU_TRAIN, CPU_EPOCHS = 20000, 15


def get_config(arg=None):
  args = seed003.parse(arg)
  if args.cnn:
    model = sweep.product(
      sweep.values('model.num_conv_layers', (2,)),
      sweep.values('model.padding', (0 if not args.smoke else 2,)),
      sweep.values('model.filters', (16, 32)),
      sweep.values('optim.learning_rate', (0.05,)),
    )
  else:
    model = sweep.product(
      sweep.values('model.hidden_sizes', ((256, 256),)),
      sweep.values('optim.learning_rate', (0.02, 0.05)),
    )
  base = seed003.base_config(args)
  if args.cpu and not args.smoke and not args.full:
    base.data.train_subset = CPU_TRAIN
    base.data.test_subset = 0
    base.train.num_epochs = CPU_EPOCHS
    base.train.log_every_steps = 200
  space = sweep.product(model, sweep.values('seed', SEEDS))
  return seed003.sweep_config(
    'seed003_mlp_vs_cnn', args, base, space, colour_by='optim.learning_rate'
  )
