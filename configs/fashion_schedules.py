"""LR schedules on Fashion-MNIST at one iteration budget, minutes on CPU (seed 001's comparison).

Run:    python -m jaxland.main --config=configs/fashion_schedules.py:schedule=onecycle
        schedule = constant | step | piecewise | cyclic | onecycle; model = mlp | convnet;
        lr = the peak LR (0: the schedule's grid-best LR below, results/lr_science; the
        range test configs/fashion_lr_range.py:momentum=0.9,wd=0.0005 recommends 0.0555 for
        all, which did as well); epochs = the budget; `:smoke`;
        `jpeg75`: the same on CIFAR-10's JPEG copy (10,000 train images; cifar10_jpeg75).
All use SGD momentum 0.9 and coupled weight decay 5e-4, batch 128, 5,000 examples held out:
  constant   lr throughout.
  step       lr x 0.1 after each third of the budget (StepLR).
  piecewise  seed 001's 1000, 100, 100, 300 iterations (scaled to the budget), lr / 10 after each.
  cyclic     triangular CLR between lr / 4 and lr (Smith: min = max / 3..4), two cycles.
  onecycle   OneCycleLR to max lr from lr / 4, cosine, momentum 0.95 -> 0.85 -> 0.95.
Expect (MLP, 3 epochs, 3 seeds, results/lr_science): test accuracy 0.863 constant, 0.870 step,
0.871-0.874 piecewise, 0.873 cyclic, 0.879 one-cycle; about 10 s per run on 2 CPU cores.
"""

from configs import common, default

SCHEDULES = ('constant', 'step', 'piecewise', 'cyclic', 'onecycle')
# Grid-best peak LRs of the MLP (results/lr_science/tables.md, picked on validation accuracy).
DEFAULT_LR = {'constant': 0.01, 'step': 0.0464, 'piecewise': 0.0215, 'cyclic': 0.1, 'onecycle': 0.1}


def apply_schedule(config, schedule: str, lr: float) -> None:
  """Sets config.optim for `schedule` with peak `lr` over the run."""
  if schedule not in SCHEDULES:
    raise ValueError(f'schedule={schedule!r} is invalid; allowed: {SCHEDULES}')
  sc = config.optim.schedule
  config.optim.learning_rate = lr
  sc.name = schedule
  epochs = config.train.num_epochs
  if schedule == 'step':
    with sc.ignore_type():  # The default is an int; a third of the budget need not be.
      sc.decay_every_epochs = epochs / 3
    sc.gamma = 0.1
  elif schedule == 'piecewise':  # Seed 001: 1000, 100, 100, 300 of 1500 iterations.
    sc.boundaries_epochs = tuple(epochs * f / 1500 for f in (1000, 1100, 1200))
    sc.scales = (0.1, 0.1, 0.1)
  elif schedule == 'cyclic':
    sc.base_lr = lr / 4
    sc.cycles = 2
  elif schedule == 'onecycle':
    sc.div_factor = 4.0
    sc.final_div_factor = 100.0
    sc.pct_start = 0.3
    sc.cycle_momentum = True
    sc.max_momentum, sc.base_momentum = 0.95, 0.85


def get_config(arg=None):
  args = common.parse_arg(
    arg,
    smoke=False,
    jpeg75=False,
    schedule='onecycle',
    model='mlp',
    lr=0.0,
    epochs=3,
    train_subset=0,
  )
  config = default.get_config()
  common.fashion_data_and_model(config, args.model, args.train_subset)
  config.optim.momentum = 0.9
  config.optim.weight_decay = 5e-4
  config.train.num_epochs = args.epochs
  config.train.log_every_steps = 100
  config.train.checkpoint_every_epochs = args.epochs
  if args.jpeg75:
    jpeg75(config)
  if args.smoke:
    common.smoke(config)
  apply_schedule(config, args.schedule, args.lr or DEFAULT_LR[args.schedule])
  return config


def jpeg75(config) -> None:
  """The same small CPU experiment on CIFAR-10's offline JPEG copy (reported as cifar10_jpeg75):
  10,000 training images (2,000 held out before), 2,000 test images."""
  common.use_cifar10_jpeg75(config)
  config.data.fallback = ''
  config.data.val_size = 2000
  config.data.train_subset = 10000
  config.data.test_subset = 2000
