"""config.lr_range: the range test's defaults and checks."""

import ml_collections

from jaxland import validation as v

SPACINGS = ('log', 'linear')
OVERLAYS = ('', 'batch_size', 'weight_decay', 'momentum')


def defaults() -> ml_collections.ConfigDict:
  """The lr_range section (task lr_range, jaxland/lr/range_test.py)."""
  c = ml_collections.ConfigDict()
  c.param = 'learning_rate'  # The injected hyperparameter swept (or momentum, ...).
  c.start = 1e-5  # First and last value of the sweep ...
  c.end = 10.0
  c.num_steps = 300  # ... over this many iterations (one value each) ...
  c.spacing = 'log'  # ... spaced log | linear.
  c.eval_every = 10  # Held-out loss / accuracy every M iterations (0 = off) ...
  c.eval_size = 1000  # ... on the first N of val (test when no val; 0 = all).
  c.diverge_factor = 4.0  # Stop when smoothed loss > factor * best (0 = only NaN).
  c.smoothing = 0.98  # EMA beta of the smoothed loss (bias-corrected).
  c.overlay = ''  # '' | batch_size | weight_decay | momentum: one test per value ...
  c.overlay_values = ()  # ... of these, overlaid in overlay.png.
  c.momentum_grid = ()  # Short runs at constant optim.learning_rate, these momenta.
  c.grid_steps = 0  # Their length in iterations (0 = num_steps).
  c.min_lr_div = 4.0  # Recommended min_lr = max_lr / this (seed 001: 3..4).
  return c


def validate_section(config, num_devices: int = 1) -> None:
  """ConfigError for the first bad lr_range setting."""
  c = config.lr_range
  v.choice(config, 'lr_range.spacing', SPACINGS)
  v.integer(config, 'lr_range.num_steps', 2)
  if c.spacing == 'log' and not (c.start > 0 and c.end > 0):
    v.fail('lr_range.start', (c.start, c.end), 'log spacing needs start > 0 and end > 0')
  for key in ('eval_every', 'eval_size', 'grid_steps'):
    v.integer(config, f'lr_range.{key}')
  v.number(config, 'lr_range.diverge_factor')
  v.number(config, 'lr_range.smoothing', high=1)
  v.number(config, 'lr_range.min_lr_div', strict=True)
  v.choice(config, 'lr_range.overlay', OVERLAYS)
  if c.overlay and not tuple(c.overlay_values):
    v.fail('lr_range.overlay_values', (), f'overlay={c.overlay!r} needs values to overlay')
  if c.overlay and c.overlay == c.param:
    v.fail('lr_range.overlay', c.overlay, 'is the swept param; overlay another')
  bad = [b for b in c.overlay_values if c.overlay == 'batch_size' and b % num_devices]
  if bad:
    v.fail(
      'lr_range.overlay_values', bad, f'batch sizes must be multiples of the {num_devices} devices'
    )
