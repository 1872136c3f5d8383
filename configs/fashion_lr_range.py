"""LR range test on Fashion-MNIST in well under a minute on CPU (the CPU twin of lr_range.py).

Run:    python -m jaxland.main --config=configs/fashion_lr_range.py --workdir=runs/fashion_lr_range
        (`:model=convnet` for the small CNN, `:spacing=linear`, `:momentum=0.9,wd=5e-4`,
        `:overlay=batch_size` / `weight_decay` / `momentum` for overlaid tests, `:smoke`;
        `:jpeg75` runs the same on CIFAR-10's JPEG copy, 10,000 train images: cifar10_jpeg75).
Expect: the MLP (256-128, batch 128, plain SGD) starts learning near lr 1e-3, held-out accuracy
peaks near 0.3 (shape 'hill') and the loss diverges near 1.1 (about 300 of the 400 iterations);
with momentum=0.9,wd=0.0005 the curve moves left (peak 0.056, divergence 0.84). Writes
learning_rate_log.{png,csv,json} (suggestions, shape, recommended one-cycle max_lr / min_lr) in
the workdir; results/lr_science/README.md has the measured numbers.
"""

from configs import common, default
from jaxland import lr

OVERLAY_VALUES = {
  'batch_size': (64, 128, 256),
  'weight_decay': (0.0, 5e-4, 5e-3),
  'momentum': (0.0, 0.9, 0.95),
}


def get_config(arg=None):
  args = common.parse_arg(
    arg,
    smoke=False,
    jpeg75=False,
    model='mlp',
    spacing='log',
    momentum=0.0,
    wd=0.0,
    overlay='',
    train_subset=20000,
    num_steps=400,
  )
  config = default.get_config()
  config.task = 'lr_range'
  config.lr_range = lr.defaults()
  common.fashion_data_and_model(config, args.model, args.train_subset)
  config.optim.momentum = args.momentum
  config.optim.weight_decay = args.wd
  c = config.lr_range
  c.spacing = args.spacing
  c.start, c.end = (1e-4, 10.0) if args.spacing == 'log' else (1e-3, 10.0)
  c.num_steps = args.num_steps
  c.eval_every = 10
  c.eval_size = 1000
  if args.overlay:
    c.overlay = args.overlay
    c.overlay_values = OVERLAY_VALUES[args.overlay]
  if args.jpeg75:
    jpeg75(config)
  if args.smoke:
    config.data.train_subset = 2048
    c.num_steps, c.eval_every, c.eval_size = 40, 10, 256
  return config


def jpeg75(config) -> None:
  """The same small CPU experiment on CIFAR-10's offline JPEG copy (reported as cifar10_jpeg75):
  10,000 training images (2,000 held out before), 2,000 test images."""
  common.use_cifar10_jpeg75(config)
  config.data.fallback = ''
  config.data.val_size = 2000
  config.data.train_subset = 10000
  config.data.test_subset = 2000
