"""Cyclical learning rates (Smith 2017): ResNet-56 on CIFAR-10, triangular between min and max.

Run (online):  python -m jaxland.main --config=configs/cifar_clr.py
Offline JPEG copy (report as cifar10_jpeg75): --config=configs/cifar_clr.py:jpeg75
Settings: max_lr 1.0 (seed 001: "a maximum learning rate of 1 is needed when doing cyclical
learning"; read yours off configs/lr_range.py), min_lr = max_lr / 4 (Smith: 3-4x below the max),
half cycle (step_size_up) = 8 epochs of iterations (Smith: 2-10 epochs), 3 full cycles = 48
epochs, ending at min_lr; SGD momentum 0.9 (`cycle_momentum` cycles 0.95 <-> 0.85 instead),
coupled weight decay 1e-4, batch 256, BatchNorm decay model.bn_momentum (0.9).
Arguments: max_lr=, div= (min_lr = max_lr / div), half_epochs=, cycles=, mode=triangular|
triangular2|exp_range, cycle_momentum, jpeg75, small (resnet8, 10,000 images), `:smoke`.
Expect: about 91-92% test accuracy on CIFAR-10 (the CLR paper reports ~the fixed schedule's
accuracy in fewer iterations). Not run here (GPU-sized).
"""

from configs import cifar_onecycle, common, default


def get_config(arg=None):
  args = common.parse_arg(
    arg,
    smoke=False,
    jpeg75=False,
    small=False,
    depth=56,
    max_lr=1.0,
    div=4.0,
    half_epochs=8.0,
    cycles=3,
    mode='triangular',
    cycle_momentum=False,
    batch=256,
  )
  config = default.get_config()
  common.cifar10_data(config, args.jpeg75, batch_size=args.batch, val_size=5000)
  config.model = cifar_onecycle.resnet(args.depth, 0.9)
  config.optim.learning_rate = args.max_lr
  config.optim.momentum = 0.9
  config.optim.weight_decay = 1e-4
  config.train.num_epochs = int(round(2 * args.half_epochs * args.cycles))
  config.train.log_every_steps = 50
  config.train.checkpoint_every_epochs = 8
  if args.small:
    cifar_onecycle.small(config)
    config.train.num_epochs = int(round(2 * args.half_epochs * args.cycles))
  if args.smoke:
    common.smoke(config, model='resnet8')
  sc = config.optim.schedule
  sc.name = 'cyclic'
  sc.mode = args.mode
  sc.base_lr = args.max_lr / args.div
  sc.step_size_up_epochs = args.half_epochs
  sc.cycle_momentum = args.cycle_momentum
  sc.max_momentum, sc.base_momentum = 0.95, 0.85
  return config
