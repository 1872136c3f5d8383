"""Sweep axes and points: a sweep config's `space` turned into one run config per point.

A sweep config (configs/sweeps/*.py) is a ConfigDict with `name`, `base` (the run config every
point starts from), `space` (axes: values(key, [...]) combined with product, zipped, or
sample(num, {key: loguniform(lo, hi) | uniform | randint | choice})) and an optional `report`
section (jaxland.sweep.report). A key starting with 'tag.' sets nothing: it labels the point.
"""

import copy
import dataclasses
import hashlib
import itertools
import re

import ml_collections
import numpy as np

from jaxland import config as config_lib

TAG = 'tag.'
DISTRIBUTIONS = ('uniform', 'loguniform', 'randint', 'choice')


# --- Axes (plain, JSON-able dicts, so sweep configs stay data) -----------------------------------


def values(key: str, vals) -> dict:
  """One axis: config key `key` (dotted, e.g. 'optim.learning_rate') takes each of `vals`."""
  return {'kind': 'values', 'key': key, 'values': list(vals)}


def product(*axes) -> dict:
  """Every combination of the axes' points (the first axis varies slowest)."""
  return {'kind': 'product', 'axes': list(axes)}


def zipped(*axes) -> dict:
  """The axes' points taken together, first with first (the axes must have equal lengths)."""
  return {'kind': 'zip', 'axes': list(axes)}


def sample(num: int, dists: dict, seed: int = 0) -> dict:
  """`num` random points, each key drawn from its distribution (uniform(...), choice(...), ...)."""
  return {'kind': 'random', 'num': num, 'seed': seed, 'dists': dict(dists)}


def uniform(low: float, high: float) -> list:
  return ['uniform', low, high]


def loguniform(low: float, high: float) -> list:
  return ['loguniform', low, high]


def randint(low: int, high: int) -> list:
  """An integer in [low, high] (both included)."""
  return ['randint', low, high]


def choice(options) -> list:
  return ['choice', list(options)]


def truncate(space, n: int) -> dict:
  """`space` with each axis cut to its first n values (random: n samples), for smoke variants."""
  space = space.to_dict() if hasattr(space, 'to_dict') else dict(space)
  if space.get('kind') == 'values':
    return {**space, 'values': space['values'][:n]}
  if space.get('kind') == 'random':
    return {**space, 'num': min(space['num'], n)}
  if 'axes' in space:
    return {**space, 'axes': [truncate(axis, n) for axis in space['axes']]}
  return space


def expand(space) -> list[dict]:
  """The points of `space` as {key: value} dicts, in order; ValueError for a bad spec."""
  space = space.to_dict() if hasattr(space, 'to_dict') else space
  if not space:
    return [{}]
  kind = space.get('kind')
  if kind == 'values':
    if not space['values']:
      raise ValueError(f'sweep axis {space["key"]!r} has no values; give at least one')
    return [{space['key']: v} for v in space['values']]
  if kind in ('product', 'zip'):
    if not space['axes']:
      raise ValueError(f'sweep {kind}() needs at least one axis')
    parts = [expand(axis) for axis in space['axes']]
    if kind == 'zip' and len({len(p) for p in parts}) > 1:
      raise ValueError(f'sweep zipped() axes have different lengths {[len(p) for p in parts]}')
    combos = itertools.product(*parts) if kind == 'product' else zip(*parts, strict=True)
    return [_merge(combo) for combo in combos]
  if kind == 'random':
    return _sample(space)
  raise ValueError(f'Unknown sweep axis kind {kind!r}; use values, product, zipped or sample')


def _merge(dicts) -> dict:
  out = {}
  for d in dicts:
    for key in set(out) & set(d):
      raise ValueError(f'sweep key {key!r} appears in two combined axes; sweep it in one')
    out.update(d)
  return out


def _sample(space) -> list[dict]:
  if space['num'] < 1 or not space['dists']:
    raise ValueError(f'sweep sample() needs num >= 1 and a distribution, got {space}')
  rng = np.random.default_rng(space['seed'])
  for key, dist in space['dists'].items():
    if not dist or dist[0] not in DISTRIBUTIONS:
      raise ValueError(f'sweep sample() key {key!r}: {dist!r}; use one of {DISTRIBUTIONS}')
  return [
    {key: _draw(rng, *dist) for key, dist in space['dists'].items()} for _ in range(space['num'])
  ]


def _draw(rng, kind, *args):
  if kind == 'uniform':
    return float(rng.uniform(*args))
  if kind == 'loguniform':
    return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
  if kind == 'randint':
    return int(rng.integers(args[0], args[1] + 1))
  options = args[0]
  return options[int(rng.integers(len(options)))]


# --- Points -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Point:
  """One run of a sweep: its directory name, config overrides and tags."""

  index: int
  name: str
  overrides: dict  # dotted config key -> value
  tags: dict  # 'tag.x' -> value (recorded, not applied)

  def to_json(self) -> dict:
    return {'index': self.index, 'name': self.name, 'overrides': self.overrides, 'tags': self.tags}


def format_value(v) -> str:
  """A value as it appears in point names and tables: 0.05, 256-256, relu."""
  if isinstance(v, float):
    return f'{v:g}'
  if isinstance(v, (tuple, list)):
    return '-'.join(format_value(x) for x in v) or 'none'
  return str(v)


def _names(dicts: list[dict], keys: list[str]) -> list[str]:
  short = {k: k.rsplit('.', 1)[-1] for k in keys}
  if len(set(short.values())) < len(short):
    short = {k: k.removeprefix(TAG) for k in keys}
  names = []
  for d in dicts:
    name = ','.join(f'{short[k]}={format_value(d[k])}' for k in keys if k in d) or 'base'
    name = re.sub(r'[^A-Za-z0-9._=,+-]', '_', name)
    if len(name) > 100:
      name = name[:80] + '~' + hashlib.sha1(name.encode()).hexdigest()[:8]
    names.append(name)
  return names


def make_points(space) -> list[Point]:
  """The sweep's points with stable names made of their swept values (tags only if needed)."""
  dicts = expand(space)
  keys = list(dict.fromkeys(k for d in dicts for k in d))
  names = _names(dicts, [k for k in keys if not k.startswith(TAG)])
  if len(set(names)) < len(names):
    names = _names(dicts, keys)
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    raise ValueError(f'sweep points repeat: {dupes[:3]}; every point must differ in some key')
  return [
    Point(
      i,
      name,
      {k: _jsonable(v) for k, v in d.items() if not k.startswith(TAG)},
      {k: _jsonable(v) for k, v in d.items() if k.startswith(TAG)},
    )
    for i, (name, d) in enumerate(zip(names, dicts, strict=True))
  ]


def _jsonable(v):
  if isinstance(v, np.generic):
    return v.item()
  return list(v) if isinstance(v, tuple) else v


def apply(base, overrides: dict):
  """A copy of ConfigDict `base` with dotted `overrides` set; ValueError for an unknown key."""
  config = copy.deepcopy(base)
  config.unlock()
  for key, value in overrides.items():
    *path, leaf = key.split('.')
    node = config
    for i, part in enumerate(path):
      if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
        raise ValueError(f'sweep key {key!r}: {".".join(path[: i + 1])!r} is not a config section')
      node = node[part]
    if leaf not in node:
      raise ValueError(
        f'sweep key {key!r} is not a config key; {".".join(path) or "config"} has {sorted(node)}'
      )
    if isinstance(node[leaf], tuple) and isinstance(value, list):
      value = tuple(value)
    try:
      node[leaf] = value
    except TypeError as e:
      raise ValueError(f'sweep key {key!r} = {value!r}: {e}') from e
  return config


def point_config(sweep_config, point: Point):
  """The run config of `point`, locked like jaxland.main's."""
  config = apply(sweep_config.base, point.overrides)
  config.lock()
  return config


def resolve(sweep_config) -> list[Point]:
  """The points, each config checked by jaxland.config (ValueError naming the point)."""
  points = make_points(sweep_config.get('space') or {})
  for point in points:
    try:
      config_lib.validate(point_config(sweep_config, point), num_devices=1)
    except ValueError as e:
      raise ValueError(f'sweep point {point.name!r}: {e}') from e
  return points
