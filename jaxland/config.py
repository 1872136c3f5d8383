"""Validation of a run's ConfigDict before anything compiles: clear errors naming key and choices.

Every check raises ValueError(f'{key} = {value!r}: {what is allowed}').
"""

import re

import jax

from jaxland import data, models, tasks
from jaxland.optim import build, schedules
from jaxland.optim.repulsion import MODES as REPULSION_MODES

BEST_METRIC = re.compile(r'^(val|test)/(accuracy|loss)$')


def _fail(key, value, allowed):
  raise ValueError(f'config.{key} = {value!r} is not allowed; {allowed}')


def _choice(config, key, choices):
  value = _get(config, key)
  if value not in choices:
    _fail(key, value, f'choose from {sorted(choices)}')


def _positive(config, key, strict=True):
  value = _get(config, key)
  ok = isinstance(value, (int, float)) and (value > 0 if strict else value >= 0)
  if not ok:
    _fail(key, value, 'must be a number ' + ('> 0' if strict else '>= 0'))


def _get(config, key):
  node = config
  for part in key.split('.'):
    node = node[part]
  return node


def validate(config, num_devices: int | None = None) -> None:
  """Raises ValueError for the first bad setting of `config`; returns None when it is usable."""
  num_devices = jax.device_count() if num_devices is None else num_devices
  _choice(config, 'task', tasks.TASKS)
  validate_data(config, num_devices)
  validate_model(config)
  validate_train(config)
  validate_optim(config)
  validate_repulsion(config)


def validate_data(config, num_devices: int) -> None:
  _choice(config, 'data.name', data.DATASETS)
  if config.data.fallback:
    _choice(config, 'data.fallback', data.DATASETS)
  if config.data.name == 'image_folder' and not config.data.folder:
    _fail(
      'data.folder', config.data.folder, 'image_folder needs a split/class/image tree or archive'
    )
  for key in ('data.batch_size', 'data.eval_batch_size'):
    _positive(config, key)
    if _get(config, key) % num_devices:
      _fail(key, _get(config, key), f'must be divisible by the device count ({num_devices})')
  for key in ('data.val_size', 'data.train_subset', 'data.test_subset', 'data.augment.pad'):
    _positive(config, key, strict=False)


def validate_model(config) -> None:
  try:
    models.get_model(**config.model)
  except (ValueError, TypeError) as e:
    raise ValueError(f'config.model: {e}') from e


def validate_optim(config) -> None:
  _choice(config, 'optim.name', build.OPTIMIZERS)
  _positive(config, 'optim.learning_rate')
  for key in ('optim.weight_decay', 'optim.decoupled_weight_decay', 'optim.grad_clip_norm'):
    _positive(config, key, strict=False)
  if not 0 <= config.optim.momentum < 1:
    _fail('optim.momentum', config.optim.momentum, 'must be in [0, 1)')
  _choice(config, 'optim.schedule.name', schedules.SCHEDULES)
  try:
    schedules.make_schedules(
      config.optim, steps_per_epoch=10, total_steps=10 * config.train.num_epochs
    )
  except ValueError as e:
    raise ValueError(f'config.optim.schedule: {e}') from e


def validate_repulsion(config) -> None:
  _choice(config, 'repulsion.mode', REPULSION_MODES)
  _choice(config, 'repulsion.mask', build.MASKS)
  _positive(config, 'repulsion.strength', strict=False)
  _positive(config, 'repulsion.width')
  _positive(config, 'repulsion.capacity')
  for key in ('repulsion.anchor_every', 'repulsion.snapshot_every'):
    value = _get(config, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      _fail(key, value, 'must be an int >= 0 (0 = off)')
  for key in ('repulsion.anchor_epochs', 'repulsion.snapshot_epochs'):
    epochs = tuple(_get(config, key))
    if any(not isinstance(e, int) or not 1 <= e <= config.train.num_epochs for e in epochs):
      _fail(key, epochs, f'epochs must be ints in 1..train.num_epochs ({config.train.num_epochs})')
  r = config.repulsion
  if r.start_from_anchor and not r.anchor_from:
    _fail('repulsion.start_from_anchor', True, 'needs repulsion.anchor_from (a run dir[:step])')


def validate_train(config) -> None:
  for key in (
    'train.num_epochs',
    'train.log_every_steps',
    'train.eval_every_epochs',
    'train.checkpoint_every_epochs',
    'train.keep_checkpoints',
  ):
    _positive(config, key)
  for key in ('train.early_stopping_patience', 'train.trajectory_every_steps', 'train.max_steps'):
    _positive(config, key, strict=False)
  if not BEST_METRIC.match(config.train.best_metric):
    _fail(
      'train.best_metric',
      config.train.best_metric,
      'use val/accuracy, val/loss, test/accuracy or test/loss',
    )
