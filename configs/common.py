"""Helpers shared by config files: `:arg` parsing, the offline CIFAR-10 copy, smoke variants."""

import os

import ml_collections


def parse_arg(arg, **defaults):
  """Parses 'a,b=2' after the config path into defaults' keys (big_vision's parse_arg).

  A bare name sets a boolean default to True; unknown names raise ValueError listing the known ones.
  """
  args = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, eq, value = item.partition('=')
    if key.startswith('resnet') and 'depth' in defaults and not eq:
      key, value, eq = 'depth', key[len('resnet') :], '='
    if key not in defaults:
      raise ValueError(f'Unknown config argument {key!r}; choose from {sorted(defaults)}')
    if not eq:
      args[key] = True
    elif isinstance(defaults[key], bool):
      args[key] = value.lower() in ('1', 'true', 'yes')
    else:
      args[key] = type(defaults[key])(value)
  return args


def cifar10_data(config, jpeg75: bool, batch_size: int, val_size: int = 0) -> None:
  """CIFAR-10 (TFDS, or the offline JPEG copy when `jpeg75`) with pad-4 crop and flip."""
  config.data.name = 'cifar10'
  if jpeg75:
    use_cifar10_jpeg75(config)
  config.data.val_size = val_size
  config.data.batch_size = batch_size
  config.data.augment.crop = True
  config.data.augment.flip = True


def fashion_data_and_model(config, model: str, train_subset: int) -> None:
  """Seed 001's Fashion-MNIST setup (5,000 held out, batch 128; digits when the data is missing)
  and its models: the MLP 784-256-128-10 or a small CNN (2 conv x 16 5x5 filters, dense 120-84)."""
  config.data.name = 'fashion_mnist'
  config.data.fallback = 'digits'
  config.data.val_size = 5000
  config.data.train_subset = train_subset
  config.data.batch_size = 128
  config.data.eval_batch_size = 1000
  if model == 'mlp':
    config.model.hidden_sizes = (256, 128)
  else:
    config.model.name = model
    config.model.hidden_sizes = (120, 84)
    config.model.filters = 16


def use_cifar10_jpeg75(config) -> None:
  """Points the data at the lossy JPEG copy of CIFAR-10 under $JAXLAND_DATA_DIR/cifar10/."""
  root = os.environ.get('JAXLAND_DATA_DIR', '')
  config.data.name = 'image_folder'
  config.data.folder = os.path.join(root, 'cifar10', 'cifar10-jpeg75.tar.xz') if root else ''
  config.data.folder_name = 'cifar10_jpeg75'


def smoke(config, model: str | None = None) -> None:
  """Turns a config into a seconds-long CPU run: few steps, small data, small model."""
  config.data.train_subset = 2048
  config.data.test_subset = 512
  config.data.batch_size = 64
  config.data.eval_batch_size = 256
  if model:
    config.model.name = model
  config.train.num_epochs = 1
  config.train.max_steps = 20
  config.train.log_every_steps = 5
