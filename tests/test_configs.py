"""Every experiment config loads, validates, and has a docstring giving its command."""

import importlib
import inspect
import pathlib

import pytest

from jaxland import tasks

CONFIG_DIR = pathlib.Path(__file__).parent.parent / 'configs'
NOT_EXPERIMENTS = {'__init__', 'common'}
NAMES = sorted(p.stem for p in CONFIG_DIR.glob('*.py') if p.stem not in NOT_EXPERIMENTS)


def load(name):
  return importlib.import_module(f'configs.{name}')


@pytest.mark.parametrize('name', NAMES)
def test_config_validates_and_documents_its_command(name):
  module = load(name)
  assert 'python -m jaxland.main' in (module.__doc__ or ''), f'{name}: docstring lacks its command'
  config = module.get_config()
  tasks.validate(config, num_devices=1)


@pytest.mark.parametrize('name', [n for n in NAMES if n != 'default'])  # default: the base.
def test_smoke_variant_validates(name):
  module = load(name)
  assert 'arg' in inspect.signature(module.get_config).parameters, f'{name}: get_config(arg)'
  assert 'smoke' in module.__doc__, f'{name}: docstring lacks its :smoke variant'
  config = module.get_config('smoke')
  tasks.validate(config, num_devices=1)
  if config.task == 'train':
    assert config.train.max_steps or config.train.num_epochs <= 3, 'smoke must be short'
