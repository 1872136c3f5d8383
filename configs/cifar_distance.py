"""The thesis' distance (repulsion) setup (seed 002, sec. 2.2.4 and 3): CIFAR-10, ResNet-32 or
MobileNetV2, SGD momentum 0.9, lr 1e-2, batch 128, coupled L2 1e-3, 600 epochs, an anchor after
epoch 100 with strength 1 and width^2 = 100 (width 10).

Run:    python -m jaxland.main --config=configs/cifar_distance.py            (ResNet-32, online)
        python -m jaxland.main --config=configs/cifar_distance.py:net=mobilenetv2
        python -m jaxland.main --config=configs/cifar_distance.py:jpeg75     (offline JPEG copy)
        python -m jaxland.main --config=configs/cifar_distance.py:baseline   (virtual anchor)
Then:   python -m jaxland.main --config=configs/cifar_distance.py[:same args] \
          --config.task=ensemble --workdir=<the run dir>          (snapshot ensemble tables)
Expect (thesis, on a GPU): about 89% (ResNet-32) / 90% (MobileNetV2) validation accuracy after
600 epochs with or without repulsion; anchor/0/distance grows fast after epoch 100 and then
flattens like the kernel, while the baseline's (virtual anchor) grows almost linearly and less.
The thesis paid +21-31% epoch time per anchor; here see bench/repulsion.py.

Arguments (comma separated, `name=value`):
  net=resnet32|resnet20|...|mobilenetv2   the network (default resnet32)
  jpeg75        CIFAR-10's lossy JPEG copy from $JAXLAND_DATA_DIR (report it as cifar10_jpeg75)
  baseline      repulsion off: the same anchors are kept "virtually" to log the baseline's drift
  anchors=one|every|merged  one anchor after epoch `anchor` (default) | one every `period`
                epochs (thesis 3.3.1: 150 -> 3 anchors in 600 epochs) | the same, merged (3.3.2)
  schedule=constant|step|cosine  constant lr (default) | x0.1 every period/3 epochs, restarted
                every `period` (thesis 3.4.1: 50 / 150) | cosine warm restarts, T_0 = period,
                lr_max 1e-3, eta_min 0 (thesis 3.4.1); with restarts, snapshots are saved at
                every restart boundary (Huang et al.'s snapshot ensembles)
  epochs=600, anchor=100, period=150, strength=1.0, width=10.0, wd=0.001 (coupled L2; 0 = none),
  lr=0 (the peak learning rate; 0 = 1e-2, or 1e-3 with schedule=cosine)
  smoke         seconds on CPU: resnet8 on CIFAR-shaped synthetic data (or the JPEG copy with
                jpeg75), 3 short epochs, anchor after epoch 1
"""

import ml_collections

from configs import common, default
from jaxland import distance

DEFAULTS = dict(
  smoke=False,
  jpeg75=False,
  net='resnet32',
  baseline=False,
  anchors='one',
  schedule='constant',
  epochs=600,
  anchor=100,
  period=150,
  strength=1.0,
  width=10.0,
  wd=1e-3,
  lr=0.0,
)
ANCHORS = ('one', 'every', 'merged')
SCHEDULES = ('constant', 'step', 'cosine')


def apply_distance_args(config, args) -> None:
  """The thesis' optimizer and repulsion settings, and the variant `args` picks (see docstring)."""
  if args.anchors not in ANCHORS:
    raise ValueError(f'anchors={args.anchors!r}; choose from {ANCHORS}')
  if args.schedule not in SCHEDULES:
    raise ValueError(f'schedule={args.schedule!r}; choose from {SCHEDULES}')
  config.optim.name = 'sgd'
  config.optim.learning_rate = 1e-2
  config.optim.momentum = 0.9
  config.optim.weight_decay = args.wd
  config.train.num_epochs = args.epochs
  config.repulsion = distance.defaults()
  r = config.repulsion
  r.enabled = not args.baseline
  r.strength = args.strength
  r.width = args.width
  if args.anchors == 'one':
    r.anchor_epochs = (args.anchor,)
  else:
    r.anchor_every = args.period
    r.mode = 'merged' if args.anchors == 'merged' else 'sum'
  sc = config.optim.schedule
  if args.schedule == 'step':
    sc.name = 'step'
    sc.decay_every_epochs = max(args.period // 3, 1)
    sc.gamma = 0.1
    sc.restart_every_epochs = args.period
  elif args.schedule == 'cosine':
    sc.name = 'cosine_restarts'
    sc.t0_epochs = args.period
    sc.t_mult = 1
    sc.eta_min = 0.0
    config.optim.learning_rate = 1e-3
  if args.lr:
    config.optim.learning_rate = args.lr
  if args.schedule != 'constant':
    r.snapshot_every = args.period  # Snapshots at the restart boundaries.


def get_config(arg=None):
  args = common.parse_arg(arg, **DEFAULTS)
  config = default.get_config()
  common.cifar10_data(config, args.jpeg75, batch_size=128)
  config.model = ml_collections.ConfigDict(
    {'name': args.net, 'bn_momentum': 0.9, 'dtype': 'float32'}
  )
  config.train.log_every_steps = 100
  if args.smoke:
    args.epochs, args.anchor, args.period = 3, 1, 1
  apply_distance_args(config, args)
  if args.smoke:
    common.smoke(config, model='resnet8')
    if not args.jpeg75:
      config.data.name = 'synthetic'
      config.data.synthetic.num_train = 256
      config.data.synthetic.num_test = 128
    config.data.train_subset = 256
    config.data.test_subset = 128
    config.data.eval_batch_size = 128
    config.train.num_epochs = 3
    config.train.max_steps = 0
  return config
