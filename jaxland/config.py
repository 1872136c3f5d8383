"""config.validate: the one check of a run's config, before any data loads, any file is written
or anything compiles. The core sections first, then each research line's section that the config
carries (its own validate_section). Every message: 'config.<key> = <value> is not allowed; ...'.
"""

import re

import jax

from jaxland import data, distance, landscape, lr, models, spectrum
from jaxland import validation as v
from jaxland.data import pipeline
from jaxland.landscape import intervene
from jaxland.optim import build, schedules
from jaxland.train import population

BEST_METRIC = re.compile(r'^(val|test)/(accuracy|loss)$')

# Research-line sections: name -> the line (its defaults() and validate_section()).
SECTIONS = {
  'repulsion': distance,
  'lr_range': lr,
  'spectrum': spectrum,
  'landscape': landscape,
  'intervene': intervene,
}


def validate(config, num_devices: int | None = None, needs=()) -> None:
  """Raises ConfigError (a ValueError) for the first bad setting; `needs`: sections the task
  reads, which must be present."""
  num_devices = jax.device_count() if num_devices is None else num_devices
  validate_data(config, num_devices)
  validate_model(config)
  validate_train(config)
  validate_optim(config)
  population.validate_section(config, num_devices)
  for i, overrides in enumerate(population.members(config)):
    try:
      validate(population.member_config(config, overrides), num_devices)
    except ValueError as e:
      v.fail('population', overrides, f'member {i} is not a valid run: {e}')
  for name in needs:
    v.section(
      config, name, f'jaxland.{SECTIONS[name].__name__.removeprefix("jaxland.")}.defaults()'
    )
  for name, line in SECTIONS.items():
    if name in config:
      line.validate_section(config, num_devices)


def section_defaults() -> dict:
  """{section: its defaults as JSON data} for every research-line section."""
  return {name: line.defaults().to_dict() for name, line in SECTIONS.items()}


def validate_data(config, num_devices: int) -> None:
  v.choice(config, 'data.name', data.DATASETS)
  if config.data.fallback:
    v.choice(config, 'data.fallback', data.DATASETS)
  if config.data.name == 'image_folder' and not config.data.folder:
    hint = 'image_folder needs a split/class/image tree or archive'
    if config.data.folder_name == 'cifar10_jpeg75':
      hint += ': set JAXLAND_DATA_DIR to the folder holding cifar10/cifar10-jpeg75.tar.xz'
    v.fail('data.folder', config.data.folder, hint)
  for key in ('data.batch_size', 'data.eval_batch_size'):
    v.integer(config, key, 1)
    if v.get(config, key) % num_devices:
      v.fail(key, v.get(config, key), f'must be divisible by the device count ({num_devices})')
  for key in ('data.val_size', 'data.train_subset', 'data.test_subset', 'data.augment.pad'):
    v.integer(config, key)
  v.choice(config, 'data.augment.pad_mode', pipeline.PAD_MODES)
  v.choice(config, 'data.augment.flip_mode', pipeline.FLIP_MODES)
  v.integer(config, 'eda.num_samples', 1)
  v.choice(config, 'eda.split', ('train', 'val', 'test'))


def validate_model(config) -> None:
  try:
    models.get_model(**config.model)
  except (ValueError, TypeError) as e:
    v.fail('model', config.model.to_dict(), str(e))


def validate_optim(config) -> None:
  o = config.optim
  v.choice(config, 'optim.name', build.OPTIMIZERS)
  v.number(config, 'optim.learning_rate', strict=True)
  for key in ('weight_decay', 'decoupled_weight_decay', 'grad_clip_norm', 'eps'):
    v.number(config, f'optim.{key}')
  for key in ('momentum', 'b1', 'b2'):
    v.number(config, f'optim.{key}', high=1)
  if o.name != 'sgd' and o.nesterov:
    v.fail('optim.nesterov', True, f'Nesterov momentum is for optim.name=sgd (not {o.name!r})')
  if o.name == 'adamw' and o.weight_decay > 0 and o.decoupled_weight_decay == 0:
    v.fail(
      'optim.weight_decay',
      o.weight_decay,
      "PyTorch AdamW's weight_decay is optim.decoupled_weight_decay here; "
      'use optim.name=adam for coupled L2',
    )
  for key, kind in (('lr_scales', 'scale'), ('freeze', 'epochs')):
    rules = o[key]
    ok = all(
      len(r) == 2 and isinstance(r[0], str) and _is_number(r[1]) and r[1] >= 0 for r in rules
    )
    if not ok:
      v.fail(f'optim.{key}', rules, f'give ((regex, {kind} >= 0), ...) pairs')
  v.integer(config, 'optim.lookahead.every_steps')
  for key in ('start_epochs', 'decay_pow'):
    v.number(config, f'optim.lookahead.{key}')
  v.number(config, 'optim.lookahead.decay_base', high=1)
  if o.muon.pattern:
    validate_muon(config)
  v.choice(config, 'optim.schedule.name', schedules.SCHEDULES)
  made = schedules.make_schedules(
    o, steps_per_epoch=1000, total_steps=1000 * config.train.num_epochs
  )
  if o.name == 'sgd' and o.nesterov and o.momentum == 0 and made['momentum'] is None:
    v.fail('optim.nesterov', True, 'needs optim.momentum > 0 (as in PyTorch)')


def _is_number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate_muon(config) -> None:
  """optim.muon when its pattern is set: the pieces that would act on only the non-Muon leaves
  are refused rather than silently halved."""
  m = config.optim.muon
  v.number(config, 'optim.muon.learning_rate', strict=True)
  v.number(config, 'optim.muon.momentum', high=1)
  v.integer(config, 'optim.muon.ns_steps', low=1)
  v.choice(config, 'optim.muon.ns_dtype', ('bfloat16', 'float32'))
  if config.optim.grad_clip_norm > 0:
    v.fail('optim.grad_clip_norm', config.optim.grad_clip_norm, 'set 0 with optim.muon')
  if build.uses_repulsion(config):
    v.fail('optim.muon.pattern', m.pattern, "'' with repulsion (it acts on the whole chain)")


def validate_train(config) -> None:
  for key in ('num_epochs', 'eval_every_epochs', 'checkpoint_every_epochs', 'keep_checkpoints'):
    v.integer(config, f'train.{key}', 1)
  for key in ('log_every_steps', 'early_stopping_patience', 'trajectory_every_steps', 'max_steps'):
    v.integer(config, f'train.{key}')
  v.number(config, 'train.diverge_factor')
  v.number(config, 'train.label_smoothing', high=1)
  v.choice(config, 'train.tta', (0, 1, 2))
  v.number(config, 'train.target_accuracy')
  if not BEST_METRIC.match(config.train.best_metric):
    v.fail(
      'train.best_metric',
      config.train.best_metric,
      'use val/accuracy, val/loss, test/accuracy or test/loss',
    )
