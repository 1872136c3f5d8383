"""Super-convergence (Smith & Topin 2018): ResNet-56 on CIFAR-10, one cycle to a large max LR.

Run (online):  python -m jaxland.main --config=configs/cifar_onecycle.py
Offline JPEG copy (report as cifar10_jpeg75): --config=configs/cifar_onecycle.py:jpeg75
Settings (the paper's where it gives them): OneCycleLR from 0.1 up to max_lr 3.0 (div_factor 30)
over 45% of the run, back down over 45%, then annihilated to 3e-4 (three_phase); momentum cycles
0.95 -> 0.85 -> 0.95; coupled weight decay 1e-4; batch 512; 100 epochs = 9,700 iterations (the
paper: 10k iterations at batch 1,000). BatchNorm's moving-average decay is a setting,
model.bn_momentum (flax decay: 0.95 is Caffe's moving_average_fraction 0.95 used by the paper
and seed 001, PyTorch momentum 0.05; it makes the curves less jittery than 0.9).
Arguments: max_lr=, bn=, epochs=, batch=, depth=, jpeg75, small (resnet8 on a 10,000-image train
subset, 10 epochs: a CPU-hours experiment), `:smoke` (seconds).
Expect: the paper reports 92.4% test accuracy at 10k iterations (vs 91.2% for a piecewise
schedule at 64k); seed 001 saw 84% after 1,150 iterations. Not run here (GPU-sized).
"""

import ml_collections

from configs import common, default


def get_config(arg=None):
  args = common.parse_arg(
    arg,
    smoke=False,
    jpeg75=False,
    small=False,
    depth=56,
    max_lr=3.0,
    bn=0.95,
    epochs=100,
    batch=512,
  )
  config = default.get_config()
  common.cifar10_data(config, args.jpeg75, batch_size=args.batch, val_size=5000)
  config.model = resnet(args.depth, args.bn)
  config.optim.learning_rate = args.max_lr
  config.optim.momentum = 0.9  # Replaced by the cycled momentum.
  config.optim.weight_decay = 1e-4
  sc = config.optim.schedule
  sc.name = 'onecycle'
  sc.div_factor = args.max_lr / 0.1  # Starts (and returns) at 0.1.
  sc.final_div_factor = 0.1 / 3e-4  # Phase 3 ends at (max_lr / div_factor) / this = 3e-4.
  sc.pct_start = 0.45
  sc.three_phase = True
  sc.anneal = 'linear'
  sc.cycle_momentum = True
  sc.max_momentum, sc.base_momentum = 0.95, 0.85
  config.train.num_epochs = args.epochs
  config.train.log_every_steps = 50
  config.train.checkpoint_every_epochs = 10
  if args.small:
    small(config)
  if args.smoke:
    common.smoke(config, model='resnet8')
  return config


def resnet(depth: int, bn_momentum: float = 0.9) -> ml_collections.ConfigDict:
  """config.model for resnet<depth> (ResNets take no MLP keys); bn_momentum is flax's decay."""
  return ml_collections.ConfigDict(
    {'name': f'resnet{depth}', 'bn_momentum': bn_momentum, 'dtype': 'float32'}
  )


def small(config) -> None:
  """A CPU-sized variant: resnet8 on the first 10,000 training images, batch 128, 10 epochs."""
  config.model.name = 'resnet8'
  config.data.train_subset = 10000
  config.data.test_subset = 0
  config.data.batch_size = 128
  config.train.num_epochs = 10
  config.train.checkpoint_every_epochs = 10
