"""Line searches: loss and accuracy at theta + t v on a grid of t, many t values per device call.

`profile` evaluates a whole grid in one jitted call: the grid is cut into chunks of `t_chunk`
values, each chunk vmapped (t_chunk models evaluated together on every data batch) and the
chunks run by lax.map. `minibatch_profiles` does the same on R random minibatches of size b at
once (the distribution of a profile's minimum and curvature at finite batch size).
`multiscale_profiles` gives dense grids at shrinking scales around t = 0 (the "fractal" check).

Directions: `unit_gaussian` (uniform on the sphere) and `filter_normalized` (Li et al. 2018,
"Visualizing the Loss Landscape of Neural Nets": a Gaussian direction whose every filter -- the
slice of a kernel feeding one output unit or channel -- is rescaled to the norm of the same filter
of the weights; 1-D params such as biases get zero).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxland.landscape.problem import mean_metrics


def _pad_grid(ts, t_chunk: int):
  ts = np.asarray(ts, np.float32)
  t_chunk = max(1, min(int(t_chunk), ts.size))
  n = -(-ts.size // t_chunk) * t_chunk
  padded = np.concatenate([ts, np.full(n - ts.size, ts[-1], np.float32)])
  return jnp.asarray(padded.reshape(-1, t_chunk)), ts.size


def _grid_metrics_fn(theta, v, grid, x, y, *, per_example, batch_size):
  """metrics [n_chunks, t_chunk] of theta + t v for the t in grid [n_chunks, t_chunk]."""

  def at(t):
    return mean_metrics(per_example, theta + t * v, x, y, batch_size)

  return jax.lax.map(jax.vmap(at), grid)


_grid_metrics = jax.jit(_grid_metrics_fn, static_argnames=('per_example', 'batch_size'))


def profile(per_example, theta, v, ts, x, y, *, batch_size=1000, t_chunk=32) -> dict:
  """{'t', 'loss', 'accuracy'} (numpy [T]) along theta + t v over all examples (x, y)."""
  grid, n = _pad_grid(ts, t_chunk)
  out = _grid_metrics(
    jnp.asarray(theta, jnp.float32),
    jnp.asarray(v, jnp.float32),
    grid,
    x,
    y,
    per_example=per_example,
    batch_size=int(batch_size),
  )
  result = {k: np.asarray(val, np.float64).reshape(-1)[:n] for k, val in out.items()}
  result['t'] = np.asarray(ts, np.float64)
  return result


def train_profile(problem, v, ts, c) -> dict:
  """`profile` from problem.flat along v over the problem's train split, batched as the
  config.landscape section `c` says (batch_size, t_chunk)."""
  x, y = problem.splits['train']
  return profile(
    problem.per_example, problem.flat, v, ts, x, y, batch_size=c.batch_size, t_chunk=c.t_chunk
  )


@functools.partial(jax.jit, static_argnames=('per_example',))
def _minibatch_metrics(theta, v, grid, xr, yr, *, per_example):
  def one(batch):
    xb, yb = batch
    return _grid_metrics_fn(theta, v, grid, xb, yb, per_example=per_example, batch_size=xb.shape[0])

  return jax.lax.map(one, (xr, yr))


def sample_minibatches(num_examples: int, batch_size: int, repeats: int, seed: int) -> np.ndarray:
  """int [repeats, batch_size]: each row a minibatch drawn without replacement."""
  if not 0 < batch_size <= num_examples:
    raise ValueError(f'minibatch size {batch_size} must lie in [1, {num_examples}]')
  rng = np.random.default_rng(seed)
  return np.stack([rng.choice(num_examples, batch_size, replace=False) for _ in range(repeats)])


def minibatch_profiles(
  per_example, theta, v, ts, x, y, *, batch_size, repeats, seed=0, t_chunk=32
) -> dict:
  """{'t' [T], 'loss' [R, T], 'accuracy' [R, T]} on R random minibatches of size batch_size."""
  idx = jnp.asarray(sample_minibatches(int(y.shape[0]), batch_size, repeats, seed))
  grid, n = _pad_grid(ts, t_chunk)
  out = _minibatch_metrics(
    jnp.asarray(theta, jnp.float32),
    jnp.asarray(v, jnp.float32),
    grid,
    x[idx],
    y[idx],
    per_example=per_example,
  )
  result = {k: np.asarray(val, np.float64).reshape(repeats, -1)[:, :n] for k, val in out.items()}
  result['t'] = np.asarray(ts, np.float64)
  return result


def point_by_point(per_example, theta, v, ts, x, y, *, batch_size=1000) -> dict:
  """The same as `profile` with one jitted call per t (the slow reference the bench compares)."""
  fn = jax.jit(lambda th: mean_metrics(per_example, th, x, y, batch_size))
  theta, v = jnp.asarray(theta, jnp.float32), jnp.asarray(v, jnp.float32)
  rows = [jax.device_get(fn(theta + float(t) * v)) for t in ts]
  return {
    't': np.asarray(ts, np.float64),
    'loss': np.array([r['loss'] for r in rows], np.float64),
    'accuracy': np.array([r['accuracy'] for r in rows], np.float64),
  }


def multiscale_profiles(
  per_example, theta, v, x, y, *, scales, num_points, batch_size=1000, t_chunk=64
) -> list[dict]:
  """Dense profiles on t in [-s, s] for each scale s (num_points each)."""
  return [
    profile(
      per_example,
      theta,
      v,
      np.linspace(-s, s, num_points),
      x,
      y,
      batch_size=batch_size,
      t_chunk=t_chunk,
    )
    | {'scale': float(s)}
    for s in scales
  ]


def unit_gaussian(dim: int, seed: int) -> np.ndarray:
  """A direction drawn uniformly on the unit sphere of R^dim (float32)."""
  v = np.random.default_rng(seed).standard_normal(dim)
  return (v / np.linalg.norm(v)).astype(np.float32)


def filter_normalized(params, seed: int) -> np.ndarray:
  """Li et al.'s filter-normalised Gaussian direction, raveled like the params (not unit norm).

  Each kernel filter (the slice [..., j] feeding output unit / channel j) gets the norm of the
  same slice of the weights; 1-D leaves (biases, BatchNorm scales) get zero, as in the paper.
  """
  rng = np.random.default_rng(seed)

  def leaf(p):
    p = np.asarray(p, np.float64)
    if p.ndim <= 1:
      return np.zeros_like(p)
    d = rng.standard_normal(p.shape)
    axes = tuple(range(p.ndim - 1))
    d_norm = np.sqrt(np.sum(d**2, axis=axes, keepdims=True))
    p_norm = np.sqrt(np.sum(p**2, axis=axes, keepdims=True))
    return d / np.maximum(d_norm, 1e-12) * p_norm

  tree = jax.tree.map(leaf, jax.device_get(params))
  return np.asarray(ravel_pytree(tree)[0], np.float32)


def symmetric_geometric_grid(radius: float, num_points: int, min_frac: float) -> np.ndarray:
  """0 and +-radius * geomspace(min_frac, 1, (num_points - 1) / 2): every scale from
  min_frac * radius to radius gets the same number of points (num_points odd)."""
  if num_points < 3 or num_points % 2 == 0:
    raise ValueError(f'num_points={num_points}: need an odd number >= 3')
  if not 0 < min_frac < 1:
    raise ValueError(f'min_frac={min_frac} must lie in (0, 1)')
  half = radius * np.geomspace(min_frac, 1.0, (num_points - 1) // 2)
  return np.concatenate([-half[::-1], [0.0], half])


def eigen_radius(curvature: float, rise: float, lo: float, hi: float) -> float:
  """Half-width of a grid along a direction of curvature c: where (c/2) t^2 reaches `rise`,
  clipped to [lo, hi] (|c| is used; a flat direction gets hi)."""
  c = abs(float(curvature))
  if c <= 0:
    return float(hi)
  return float(np.clip(np.sqrt(2.0 * rise / c), lo, hi))
