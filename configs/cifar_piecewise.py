"""Seed 001's piecewise-constant LR: ResNet-56 on CIFAR-10, 1000, 100, 100, 300 iterations, lr / 10
after each block.

Run (online):  python -m jaxland.main --config=configs/cifar_piecewise.py
Offline JPEG copy (report as cifar10_jpeg75): --config=configs/cifar_piecewise.py:jpeg75
Settings: lr 0.1 for 1,000 iterations, 0.01 for 100, 0.001 for 100, 1e-4 for 300 (1,500 in all:
optim.schedule.boundaries_steps = (1000, 1100, 1200), scales 0.1 each); SGD momentum 0.95 and
weight decay 1e-9 (seed 001's "constant LR" settings), batch 256, BatchNorm decay 0.9.
Arguments: lr=, scale= (multiplies every block: scale=10 gives 10,000, 1,000, 1,000, 3,000),
momentum=, wd=, jpeg75, small (resnet8, 10,000 images), `:smoke`.
Expect: seed 001 saw no divergence but no improvement after iteration 1,100 (the blocks at
lr / 100 and below are too short to matter); roughly 80-85% test accuracy at 1,500 iterations.
Not run here (GPU-sized).
"""

from configs import cifar_onecycle, common, default

BLOCKS = (1000, 100, 100, 300)  # Seed 001's iterations per block.


def get_config(arg=None):
  args = common.parse_arg(
    arg,
    smoke=False,
    jpeg75=False,
    small=False,
    depth=56,
    lr=0.1,
    scale=1.0,
    momentum=0.95,
    wd=1e-9,
    batch=256,
  )
  config = default.get_config()
  common.cifar10_data(config, args.jpeg75, batch_size=args.batch, val_size=5000)
  config.model = cifar_onecycle.resnet(args.depth, 0.9)
  config.optim.learning_rate = args.lr
  config.optim.momentum = args.momentum
  config.optim.weight_decay = args.wd
  if args.small:
    cifar_onecycle.small(config)
  blocks = [max(1, int(round(b * args.scale))) for b in BLOCKS]
  if args.smoke:
    common.smoke(config, model='resnet8')
    blocks = [10, 2, 2, 6]
  sc = config.optim.schedule
  sc.name = 'piecewise'
  sc.boundaries_steps = tuple(sum(blocks[: i + 1]) for i in range(3))
  sc.scales = (0.1, 0.1, 0.1)
  config.train.max_steps = sum(blocks)
  config.train.num_epochs = sum(blocks)  # Enough epochs for any dataset: max_steps ends the run.
  config.train.log_every_steps = min(50, config.train.log_every_steps)
  config.train.checkpoint_every_epochs = config.train.num_epochs
  return config
