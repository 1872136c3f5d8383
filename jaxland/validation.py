"""The one shape of a bad setting, ConfigError('config.<key> = <value> is not allowed; <what is>'),
and the checks that config.validate and every research line's validate_section share."""

import math


class BadInput(ValueError):
  """A config that cannot run here, found before anything is written (one line for the user)."""


class ConfigError(BadInput):
  """A config value that cannot be used: the message names key, value and what is allowed."""

  def __init__(self, key: str, value, allowed: str):
    self.key, self.value, self.allowed = key, value, allowed
    super().__init__(f'config.{key} = {value!r} is not allowed; {allowed}')


def get(config, key: str):
  """The value at dotted `key` ('optim.learning_rate')."""
  node = config
  for part in key.split('.'):
    node = node[part]
  return node


def fail(key: str, value, allowed: str):
  raise ConfigError(key, value, allowed)


def choice(config, key: str, choices) -> None:
  value = get(config, key)
  if value not in choices:
    fail(key, value, f'choose from {sorted(choices)}')


def members(config, key: str, choices) -> None:
  """A tuple whose every entry is one of `choices`."""
  value = tuple(get(config, key))
  bad = [x for x in value if x not in choices]
  if bad:
    fail(key, value, f'{bad} unknown; choose from {list(choices)}')


def number(config, key: str, low: float = 0.0, strict: bool = False, high=None) -> None:
  """A finite number >= low (> low when strict), and < high when given."""
  value = get(config, key)
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
  ok = ok and (value > low if strict else value >= low) and (high is None or value < high)
  if not ok:
    bound = f'> {low:g}' if strict else f'>= {low:g}'
    fail(key, value, f'must be a finite number {bound}' + (f' and < {high:g}' if high else ''))


def integer(config, key: str, low: int = 0) -> None:
  value = get(config, key)
  if isinstance(value, bool) or not isinstance(value, int) or value < low:
    fail(key, value, f'must be an int >= {low}')


def epochs(config, key: str, num_epochs: int) -> None:
  """A tuple of epochs in 1..num_epochs."""
  value = tuple(get(config, key))
  if any(isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= num_epochs for e in value):
    fail(key, value, f'epochs must be ints in 1..train.num_epochs ({num_epochs})')


def section(config, name: str, owner: str) -> None:
  """The config has section `name` (added by `owner`, e.g. 'jaxland.lr.defaults()')."""
  if name not in config:
    fail(name, None, f'this config has no {name} section; add it with config.{name} = {owner}')
