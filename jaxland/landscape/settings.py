"""config.landscape: the probes' defaults and checks (the intervene task reads its curvature
settings from here too)."""

import ml_collections

from jaxland import curvature
from jaxland import validation as v

PROBES = (
  'lines',
  'random',
  'minibatch',
  'dense',
  'dynamics',
  'trajectory',
  'grad_noise',
  'per_example',
)


def defaults() -> ml_collections.ConfigDict:
  """The landscape section: line searches, fits, spectral dynamics, per-example gradients of the
  run config.checkpoint ('' = --workdir when it holds checkpoints, else this config is trained
  first into <workdir>/train). Outputs: <workdir>/<out_dir>."""
  c = ml_collections.ConfigDict()
  c.out_dir = ''  # '' = 'landscape'.
  c.probes = PROBES
  c.spectrum = ''  # A spectrum.npz to take the top eigenpairs from ('' = compute).
  c.kind = 'hessian'  # hessian | ggn.
  c.num_top = 16  # Top eigenpairs probed ...
  c.lanczos_steps = 40  # ... out of this many Lanczos steps (all Ritz pairs kept).
  c.num_bulk = 4  # Interior Ritz vectors probed as "bulk" directions ...
  c.num_bottom = 2  # ... and the lowest (most negative) ones.
  c.trace_probes = 20  # Hutchinson probes for tr(H) (the bulk's mean eigenvalue).
  c.curvature_examples = 0  # First N train examples in the loss (0 = all).
  c.batch_size = 1000  # Examples per batch in every full-data evaluation.
  c.line_points = 41  # Grid of each line search: 0 and +-radius * geomspace(
  c.line_min_frac = 0.01  # min_frac, 1, (points - 1) / 2) ...
  c.line_rise = 1.0  # ... half-width where (lambda/2) t^2 reaches this loss rise ...
  c.line_min_radius = 0.05  # ... clipped to [min, max] (units of |v| = 1).
  c.line_max_radius = 5.0
  c.t_chunk = 32  # t values evaluated together (vmapped) per data batch.
  c.inner_window = 0.05  # Fitted curvature: quadratic fit on |t| <= this * radius.
  c.quad_tol = 0.1  # Quadratic holds while |L - Q| <= tol * |lambda| t^2 / 2.
  c.num_random = 6  # Random directions of each kind: gaussian, filter, topk_mix.
  c.minibatch_sizes = (32, 128, 512)  # Line searches on minibatches of these sizes ...
  c.minibatch_repeats = 32  # ... drawn this many times ...
  c.minibatch_directions = 6  # ... along the first top eigenvectors.
  c.dense_points = 801  # Dense line searches: points per scale ...
  c.dense_scales = (1.0, 0.1, 0.01, 0.001)  # ... of the radius ...
  c.dense_examples = 1000  # ... on the first N train examples.
  c.num_spectra = 4  # Trajectory points with their own eigenpairs (incl. final).
  c.tail_fraction = 0.2  # Settling: stationary band from this tail of the path ...
  c.settle_factor = 3.0  # ... mean +- factor * std.
  c.grad_noise_batches = 64  # Minibatch gradients (size data.batch_size) sampled.
  c.per_example_examples = 2000  # Per-example gradients of the first N (0 = all).
  c.seed = 0
  return c


def validate_section(config, num_devices: int = 1) -> None:
  """ConfigError for the first bad landscape setting."""
  del num_devices
  c = config.landscape
  v.members(config, 'landscape.probes', PROBES)
  v.choice(config, 'landscape.kind', curvature.KINDS)
  v.integer(config, 'landscape.lanczos_steps', 1)
  if not 0 < c.num_top <= c.lanczos_steps:
    v.fail('landscape.num_top', c.num_top, f'must lie in [1, lanczos_steps={c.lanczos_steps}]')
  if c.line_points < 5 or c.line_points % 2 == 0:
    v.fail('landscape.line_points', c.line_points, 'need an odd number >= 5')
  if not 0 < c.inner_window <= 1:
    v.fail('landscape.inner_window', c.inner_window, 'must lie in (0, 1]')
  if 'random' in c.probes and 'lines' not in c.probes:
    v.fail('landscape.probes', tuple(c.probes), "'random' needs 'lines' (its top-k mixtures)")
