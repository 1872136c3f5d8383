"""The airbench recipe (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU",
arXiv 2404.00498) through jaxland's one loop: model `airbench`, Nesterov SGD, a triangle LR, label
smoothing 0.2, lookahead, a frozen whitening conv whose bias trains for 3 epochs, BatchNorm biases
at 64x the LR, batch 1024, alternating flip + 2-pixel reflect translate, and mirror + translate
test-time augmentation.

Run (online, TFDS downloads CIFAR-10):
    python -m jaxland.main --config=configs/cifar_fast.py
Run offline on the lossy JPEG copy (report it as cifar10_jpeg75):
    python -m jaxland.main --config=configs/cifar_fast.py:jpeg75   (reads $JAXLAND_DATA_DIR)
Expect: airbench reports 94.01% (mean of 1000 runs) on CIFAR-10 in 3.83 s on an A100; about 2-3
points less on cifar10_jpeg75. Arguments:
    cpu     the 2-core CPU variant: widths CPU_WIDTHS, CPU_EPOCHS epochs, evaluated every 5 epochs
            (results/fast/README.md says what it trades and what that costs)
    smoke   airbench_tiny on 2,048 images for 4 epochs of 8 steps (CI)
    seed=N, epochs=N (0: the variant's), widths=a-b-c
    muon    airbench94_muon's recipe (Muon on the conv filters, batch 2000, 8 epochs, a line
            down from the peak, no lookahead; `muon_recipe`); with cpu: the cpu widths
    whiten=random  the whitening ablation: the first conv starts from PyTorch's default init and
            trains like the other convs (its bias still only for the first 3 epochs)
    lines=a-b  research-line sections added with their defaults (repulsion, lr_range, spectrum,
            landscape, intervene), so that --config.repulsion.strength=... etc. can be set

airbench's hyperparameters are decoupled (per 1024 examples, summed loss); jaxland's loss is a
batch mean, so lr = 11.5 (B / 1024) / (1 + 1 / (1 - momentum)) and the coupled L2 coefficient is
0.0153 / 11.5 (algebra in `recipe`). One difference, on purpose: 10 whole epochs (480 steps at
batch 1024) where airbench trains 9.9 (476 steps), since num_epochs counts whole epochs here.
"""

import ml_collections

from configs import common, default
from jaxland import config as config_lib
from jaxland.models import registry

CPU_WIDTHS = (24, 96, 96)  # 175 s per epoch at batch 1024 (2-core AVX2 EPYC, chunked backward).
CPU_EPOCHS = 8


def recipe(config, batch_size: int = 1024) -> None:
  """airbench94's optimizer, schedule, loss and evaluation, in jaxland's units."""
  lr, momentum, wd, bias_scaler = 11.5, 0.85, 0.0153, 64.0  # airbench's decoupled values.
  config.optim.name = 'sgd'
  config.optim.nesterov = True
  config.optim.momentum = momentum
  config.optim.learning_rate = lr * (batch_size / 1024) / (1 + 1 / (1 - momentum))
  config.optim.weight_decay = wd / lr
  config.optim.lr_scales = (('_norm[0-9]/bias', bias_scaler),)
  config.optim.freeze = (('^whiten/kernel', 0.0), ('^whiten/bias', 3.0))
  config.optim.lookahead.every_steps = 5
  config.optim.lookahead.start_epochs = 3.0
  config.optim.lookahead.decay_base = 0.95
  config.optim.lookahead.decay_pow = 3.0
  config.optim.schedule.name = 'triangle'
  config.optim.schedule.start_factor = 0.2
  config.optim.schedule.pct_start = 0.23
  config.optim.schedule.end_factor = 0.07
  config.train.label_smoothing = 0.2
  config.train.tta = 2


def muon_recipe(config, last_width: int, batch_size: int = 2000) -> None:
  """airbench94_muon's optimizer and schedule in jaxland's units, on top of `recipe` (whose
  Nesterov momentum 0.85, freeze rules, label smoothing and TTA it keeps): Muon (lr 0.24,
  momentum 0.6, Nesterov, 3 bfloat16 Newton-Schulz steps) on the conv filters; SGD on the head
  (lr 0.67) and the biases (lr 0.053) with decoupled-equivalent decay 2e-6 x batch per step; all
  of it a straight line from the peak to 0; no lookahead. airbench's values are per
  summed loss over its batch of 2000; for a batch-mean loss of batch B the SGD lr is lr x B and
  the coupled L2 2e-6 B / (lr B) (Muon's step ignores the gradient's scale). One difference: the
  whitening bias follows the common line and stops after 3 epochs, where airbench decays it to 0
  over those 3 epochs."""
  bias_lr, head_lr, wd = 0.053, 0.67, 2e-6 * batch_size
  config.optim.learning_rate = head_lr * batch_size
  config.optim.weight_decay = wd / (head_lr * batch_size)
  config.optim.lr_scales = (
    ('_norm[0-9]/bias', bias_lr / head_lr),
    ('^whiten/bias', bias_lr / head_lr),
  )
  config.optim.muon.pattern = '_conv[0-9]/kernel$'
  config.optim.muon.learning_rate = 0.24
  config.optim.muon.momentum = 0.6
  config.optim.muon.nesterov = True
  config.optim.muon.ns_steps = 3
  config.optim.muon.ns_dtype = 'bfloat16'
  config.optim.lookahead.every_steps = 0
  config.optim.schedule.name = 'triangle'
  config.optim.schedule.start_factor = 1.0
  config.optim.schedule.pct_start = 0.0
  config.optim.schedule.end_factor = 0.0
  config.model.head_scale = 1 / last_width  # airbench94_muon's head: logits / its inputs' width.
  config.model.head_unit_std = True


def unwhiten(config) -> None:
  """The whitening ablation: a first conv from PyTorch's default init, trained (with weight decay)
  from step 0 like every other conv; its bias keeps the recipe's 3-epoch rule."""
  config.model.whiten_from_data = False
  config.model.train_whiten = True
  config.optim.freeze = tuple(r for r in config.optim.freeze if r[0] != '^whiten/kernel')


def get_config(arg=None):
  args = common.parse_arg(
    arg, smoke=False, jpeg75=False, cpu=False, seed=0, epochs=0, widths='', lines='',
    whiten='data', muon=False,
  )  # fmt: skip
  if args.whiten not in ('data', 'random'):
    raise ValueError(f"whiten={args.whiten!r}: give 'data' (airbench's) or 'random'")
  config = default.get_config()
  for name in filter(None, args.lines.split('-')):
    if name not in config_lib.SECTIONS:
      raise ValueError(
        f'lines={args.lines!r}: {name!r} is not one of {sorted(config_lib.SECTIONS)}'
      )
    config[name] = config_lib.SECTIONS[name].defaults()
  config.seed = args.seed
  batch_size = 2000 if args.muon else 1024
  common.cifar10_data(config, args.jpeg75, batch_size=batch_size)
  config.data.eval_batch_size = 2000
  config.data.augment.crop = True
  config.data.augment.pad = 2
  config.data.augment.pad_mode = 'reflect'
  config.data.augment.flip = True
  config.data.augment.flip_mode = 'alternating'
  widths = CPU_WIDTHS if args.cpu else (64, 256, 256)
  if args.widths:
    widths = tuple(int(w) for w in args.widths.split('-'))
  config.model = ml_collections.ConfigDict(
    {'name': 'airbench', 'widths': widths, 'bn_momentum': 0.6, 'dtype': 'float32'}
  )
  recipe(config)
  if args.muon:
    muon_recipe(config, widths[-1], batch_size)
  if args.whiten == 'random':
    unwhiten(config)
  config.train.num_epochs = args.epochs or (CPU_EPOCHS if args.cpu or args.muon else 10)
  config.train.log_every_steps = 16
  config.train.eval_every_epochs = 5 if args.cpu else 1
  config.train.keep_checkpoints = 1
  config.train.best_metric = 'test/accuracy'
  config.train.target_accuracy = 0.91 if args.jpeg75 else 0.94
  if args.smoke:  # 4 epochs of 8 steps: the bias freeze and lookahead (epoch 3 on) both act.
    common.smoke(config)
    config.model = ml_collections.ConfigDict(
      {'name': 'airbench_tiny', 'bn_momentum': 0.6, 'conv_backward': 'matmul', 'dtype': 'float32'}
    )  # The matmul backward compiles in a fifth of the chunked one's time at this size.
    config.data.batch_size = 256
    config.data.eval_batch_size = 256
    recipe(config, batch_size=256)
    if args.muon:
      muon_recipe(config, registry.MODELS['airbench_tiny'].keywords['widths'][-1], 256)
    if args.whiten == 'random':
      unwhiten(config)
    config.train.num_epochs = 4
    config.train.max_steps = 32  # All of it (the smoke's 2,048 images make 8 steps an epoch).
    config.train.log_every_steps = 4
    config.train.eval_every_epochs = 1
  return config
