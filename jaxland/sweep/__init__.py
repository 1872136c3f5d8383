"""Seed 003's sweeps: one base config, axes over any of its keys, one run directory per point.

The axes and points are jaxland.sweep.space (what sweep configs import as `jaxland.sweep`);
running them is jaxland.sweep.run (`python -m jaxland.sweep`), the tables and figures
jaxland.sweep.report (`python -m jaxland.report`). WORKSPACE.md has the commands.
"""

from jaxland.sweep.space import (
  TAG,
  Point,
  apply,
  choice,
  expand,
  loguniform,
  make_points,
  point_config,
  product,
  randint,
  resolve,
  sample,
  truncate,
  uniform,
  values,
  zipped,
)

__all__ = [
  'TAG',
  'Point',
  'apply',
  'choice',
  'expand',
  'loguniform',
  'make_points',
  'point_config',
  'product',
  'randint',
  'resolve',
  'sample',
  'truncate',
  'uniform',
  'values',
  'zipped',
]
