"""LR range test of ResNet-56 on CIFAR-10 as seed 001 ran it: batch 256, momentum 0, weight decay 0.

Run (online; TFDS downloads CIFAR-10):
    python -m jaxland.main --config=configs/lr_range.py --workdir=runs/lr_range_resnet56
Offline on the lossy JPEG copy (report it as cifar10_jpeg75; reads $JAXLAND_DATA_DIR):
    python -m jaxland.main --config=configs/lr_range.py:jpeg75
Arguments: spacing=log|linear (seed 001 began with linear and found that the region where
learning starts takes < 1/10 of the plot: use log), start=, end= (seed 001: up to 20),
num_steps= (4000 = about 20 epochs), batch= (seed 001 also ran 1024), depth= (56),
param=momentum|weight_decay (sweep another hyperparameter), overlay=batch_size|weight_decay|momentum
(one test per value, overlaid), `:smoke` (20-second CPU run of resnet8 on 2,048 images).
Expect (seed 001, PyTorch, GPU): accuracy rises from about lr 0.01 and then stays high up to
lr of several units without diverging even at lr 20 (shape 'plateau', the super-convergence
sign); with batch 1024 and end 15-30 it can collapse to ~10% and rise again ('collapse_rise').
Outputs: learning_rate_log.{png,csv,json} (suggestions, shape, recommended one-cycle max_lr and
min_lr = max_lr / 4) and TensorBoard scalars lr_range/* in the workdir.
"""

from configs import cifar_onecycle, common, default
from jaxland import lr

OVERLAY_VALUES = {
  'batch_size': (128, 256, 512, 1024),
  'weight_decay': (0.0, 1e-4, 5e-4, 1e-3),
  'momentum': (0.0, 0.85, 0.9, 0.95),
}


def get_config(arg=None):
  args = common.parse_arg(
    arg,
    smoke=False,
    jpeg75=False,
    depth=56,
    batch=256,
    spacing='log',
    start=1e-4,
    end=20.0,
    num_steps=4000,
    param='learning_rate',
    overlay='',
  )
  config = default.get_config()
  config.task = 'lr_range'
  config.lr_range = lr.defaults()
  common.cifar10_data(config, args.jpeg75, batch_size=args.batch, val_size=5000)
  config.model = cifar_onecycle.resnet(args.depth, 0.9)
  config.optim.learning_rate = 0.1  # Used only when another hyperparameter is swept.
  config.optim.momentum = 0.0
  config.optim.weight_decay = 0.0
  c = config.lr_range
  c.param, c.spacing, c.start, c.end, c.num_steps = (
    args.param,
    args.spacing,
    args.start,
    args.end,
    args.num_steps,
  )
  c.eval_every = 50
  c.eval_size = 2000
  c.diverge_factor = 4.0
  if args.overlay:
    c.overlay, c.overlay_values = args.overlay, OVERLAY_VALUES[args.overlay]
  if args.smoke:
    common.smoke(config, model='resnet8')
    config.data.batch_size = 64
    c.num_steps, c.eval_every, c.eval_size = 30, 10, 256
  return config
