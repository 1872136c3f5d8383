"""Per-example gradients (vmap of grad) and their decomposition on an eigenbasis.

For examples i and unit directions u_j: c_ij = g_i . u_j (g_i the gradient of example i's loss)
and cos_ij = c_ij / |g_i|. Is a direction's curvature driven by many examples or a few?
`participation_ratio` PR_j = (sum_i c_ij^2)^2 / (N sum_i c_ij^4) is 1 when every example pulls
equally hard along u_j and 1/N when one example does all of it; `top_share` is the fraction of
sum_i c_ij^2 held by the top `fraction` of examples. `second_moment` (1/N) sum_i c_ij^2 is the
uncentred gradient covariance (empirical Fisher) along u_j, which near a minimum of a
cross-entropy loss tracks the Gauss-Newton curvature u_j^T G u_j.

`project` never materialises the [N, P] gradient matrix: each chunk of examples is
differentiated, projected and dropped inside one jitted lax.map.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _single_loss(per_example):
  def loss(flat, xi, yi):
    return per_example(flat, xi[None], yi[None])[0][0]

  return loss


@functools.partial(jax.jit, static_argnames=('per_example',))
def _grads(flat, x, y, *, per_example):
  return jax.vmap(jax.grad(_single_loss(per_example)), in_axes=(None, 0, 0))(flat, x, y)


def per_example_grads(per_example, flat, x, y) -> np.ndarray:
  """[N, P] gradients of each example's loss (one vmapped grad; small N * P only)."""
  return np.asarray(_grads(jnp.asarray(flat, jnp.float32), x, y, per_example=per_example))


def loop_grads(per_example, flat, x, y) -> np.ndarray:
  """The same, one jitted single-example grad per example (the reference the bench compares)."""
  grad = jax.jit(jax.grad(_single_loss(per_example)))
  flat = jnp.asarray(flat, jnp.float32)
  return np.stack([np.asarray(grad(flat, x[i], y[i])) for i in range(int(y.shape[0]))])


@functools.partial(jax.jit, static_argnames=('per_example',))
def _project_chunks(flat, vectors, xc, yc, *, per_example):
  def one(chunk):
    g = jax.vmap(jax.grad(_single_loss(per_example)), in_axes=(None, 0, 0))(flat, *chunk)
    return g @ vectors.T, jnp.sum(g * g, axis=1)

  return jax.lax.map(one, (xc, yc))


def project(per_example, flat, x, y, vectors, chunk: int = 250) -> dict:
  """{'proj' [N, k] = g_i . u_j, 'norm' [N] = |g_i|} for all examples, `chunk` at a time."""
  n = int(y.shape[0])
  chunk = max(1, min(int(chunk), n))
  nc = -(-n // chunk)
  pad = nc * chunk - n
  xp = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]).reshape((nc, chunk) + x.shape[1:])
  yp = jnp.concatenate([y, jnp.repeat(y[:1], pad, axis=0)]).reshape(nc, chunk)
  proj, sq = _project_chunks(
    jnp.asarray(flat, jnp.float32),
    jnp.asarray(vectors, jnp.float32),
    xp,
    yp,
    per_example=per_example,
  )
  proj = np.asarray(proj, np.float64).reshape(nc * chunk, -1)[:n]
  return {'proj': proj, 'norm': np.sqrt(np.asarray(sq, np.float64).reshape(-1)[:n])}


def cosines(proj, norms) -> np.ndarray:
  """cos_ij = c_ij / |g_i| (0 for a zero gradient)."""
  norms = np.asarray(norms, np.float64)[:, None]
  return np.where(norms > 0, np.asarray(proj, np.float64) / np.maximum(norms, 1e-30), 0.0)


def participation_ratio(proj) -> np.ndarray:
  """PR_j = (sum_i c_ij^2)^2 / (N sum_i c_ij^4), in [1/N, 1], per column."""
  c2 = np.asarray(proj, np.float64) ** 2
  n = c2.shape[0]
  return np.sum(c2, 0) ** 2 / np.maximum(n * np.sum(c2**2, 0), 1e-300)


def top_share(proj, fraction: float = 0.01) -> np.ndarray:
  """Fraction of sum_i c_ij^2 held by the top `fraction` of examples, per column."""
  c2 = np.sort(np.asarray(proj, np.float64) ** 2, axis=0)[::-1]
  m = max(1, int(round(fraction * c2.shape[0])))
  return np.sum(c2[:m], 0) / np.maximum(np.sum(c2, 0), 1e-300)


def second_moment(proj) -> np.ndarray:
  """(1/N) sum_i c_ij^2 per column: the empirical Fisher along each direction."""
  return np.mean(np.asarray(proj, np.float64) ** 2, axis=0)
