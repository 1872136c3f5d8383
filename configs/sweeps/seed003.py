"""What seed 003's sweeps share: the base run, the `:arg` switches and the smoke / cpu variants.

Arguments of every seed003_* sweep:
  cnn      sweep the CNN (configs/cifar_cnn.py: 5 conv x 256) instead of the MLP (4 layers x 256)
  jpeg75   the offline CIFAR-10 JPEG copy ($JAXLAND_DATA_DIR), reported as cifar10_jpeg75
  fashion  Fashion-MNIST instead of CIFAR-10
  cpu      the reduced version results/sweeps/ ran on a 2-core CPU: 5,000 training and 2,000 test
           images, 8 epochs (patience 25 never triggers), fewer grid values; the CNN has 3 conv
           layers of 16 filters (5 stay at chance for 8 epochs of plain SGD without BatchNorm)
           and pads its 5x5 convs by 2, not 3 (XLA's CPU convolutions run ~10x slower with
           padding 3; maps stay 28, 14, 7 instead of 30, 17, 10)
  smoke    seconds: two values per axis, 20 steps each, digits if the data is missing (CNN: 8 or
           16 filters, padding 2)
  full     issue 16's size: all 50,000 training images less a validation split of FULL_VAL (the
           last ones), the whole test split, the best epoch and early stopping chosen on the
           validation split (not the test set, as the seed did), and seeds 0, 1, 2 at every point
           (run with --vectorize: each point's seeds train as one population). With cpu as well:
           the cpu models, grids and CPU_FULL_EPOCHS epochs on that data (patience CPU_PATIENCE)
"""

import ml_collections

from configs import cifar_cnn, cifar_mlp, common
from jaxland import sweep

CPU_TRAIN, CPU_TEST, CPU_EPOCHS, CPU_CONV = 5000, 2000, 8, 3
FULL_VAL, FULL_SEEDS, CPU_FULL_EPOCHS, CPU_PATIENCE = 5000, (0, 1, 2), 15, 5
SMOKE_VAL = 256  # full with smoke: a validation split the smoke's data can hold.


def parse(arg, **extra):
  return common.parse_arg(
    arg, cnn=False, jpeg75=False, fashion=False, cpu=False, smoke=False, full=False, **extra
  )


def base_config(args, **model_args):
  """The run every point starts from: seed 003's selected MLP or CNN on the chosen data."""
  data = ','.join(k for k in ('jpeg75', 'fashion') if args[k])
  extra = ','.join(f'{k}={v}' for k, v in model_args.items())
  module = cifar_cnn if args.cnn else cifar_mlp
  config = module.get_config(','.join(filter(None, (data, extra))) or None)
  if args.cpu:
    config.data.train_subset = CPU_TRAIN
    config.data.test_subset = CPU_TEST
    config.train.num_epochs = CPU_EPOCHS
    config.train.log_every_steps = 50
    if args.cnn:
      config.model.num_conv_layers = CPU_CONV
      config.model.filters = 16
      config.model.padding = 2
  if args.full:
    full_size(config, args.cpu)
  if args.smoke:
    cifar_mlp.seed003_smoke(config)
    if args.cnn:
      config.model.filters = 8
      config.model.padding = 2
    if args.full:
      config.data.val_size = SMOKE_VAL
  return config


def full_size(config, cpu: bool) -> None:
  """All training images less a validation split that picks the best epoch and stops early."""
  config.data.train_subset = 0
  config.data.test_subset = 0
  config.data.val_size = FULL_VAL
  config.train.best_metric = 'val/accuracy'
  if cpu:
    config.train.num_epochs = CPU_FULL_EPOCHS
    config.train.early_stopping_patience = CPU_PATIENCE
    config.train.log_every_steps = 500


def sweep_config(name: str, args, base, space, **report) -> ml_collections.ConfigDict:
  """The sweep ConfigDict jaxland.sweep reads; the name records the model, data and variant."""
  parts = [name, 'cnn' if args.cnn else 'mlp']
  parts += [k for k in ('jpeg75', 'fashion', 'full', 'cpu', 'smoke') if args[k]]
  config = ml_collections.ConfigDict()
  config.name = '_'.join(parts)
  config.base = base
  if args.full and 'seed' not in {k for point in sweep.expand(space) for k in point}:
    space = sweep.product(space, sweep.values('seed', FULL_SEEDS))
  config.space = sweep.truncate(space, 2) if args.smoke else space
  config.report = ml_collections.ConfigDict(
    {'group_by': (), 'heatmaps': (), 'colour_by': '', 'strength': '', **report}
  )
  return config
