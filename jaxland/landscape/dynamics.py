"""Spectral dynamics: eigenvector overlaps between checkpoints, the trajectory in the eigenbasis,
when each direction settles, and the minibatch-gradient noise along each direction.

Overlaps: for orthonormal rows V_a [k_a, P], V_b [k_b, P], O = |V_a V_b^T| (|cos| of every pair);
`max_overlap` is the maximum of each row (does eigenvector i of a have a partner in b?), and
`subspace_overlap` = ||V_a V_b^T||_F^2 / k_a is the mean squared cosine of V_a's vectors with
the span of V_b (1: same subspace; k_b / P for random subspaces).

Settling: the projection p_j(t) = (theta_t - theta*) . u_j of the trajectory on a final
eigenvector u_j fluctuates, once in equilibrium, in a band around its tail mean; `settle_steps`
returns the first saved step after which p_j never leaves mean_tail +- factor * std_tail.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxland.landscape.lines import sample_minibatches


def overlap(va, vb) -> np.ndarray:
  """|V_a V_b^T| [k_a, k_b] for row-vector bases."""
  return np.abs(np.asarray(va, np.float64) @ np.asarray(vb, np.float64).T)


def max_overlap(o) -> np.ndarray:
  """Maximum |cos| of each row of an overlap matrix: [k_a]."""
  return np.max(np.asarray(o), axis=1)


def subspace_overlap(va, vb) -> float:
  """||V_a V_b^T||_F^2 / k_a: 1 when span(V_a) lies in span(V_b)."""
  o = overlap(va, vb)
  return float(np.sum(o**2) / o.shape[0])


def project_trajectory(thetas, theta_star, vectors) -> np.ndarray:
  """[T, k]: (theta_t - theta*) . u_j for each saved point (rows of thetas [T, P])."""
  diff = np.asarray(thetas, np.float64) - np.asarray(theta_star, np.float64)[None]
  return diff @ np.asarray(vectors, np.float64).T


def settle_steps(steps, proj, tail_fraction: float = 0.2, factor: float = 3.0) -> dict:
  """When each direction enters its stationary band (see module doc).

  steps [T], proj [T, k]. Returns {'settle_step' [k], 'tail_mean' [k], 'tail_std' [k],
  'distance_init' [k] (|p_j| at the first saved step)}.
  """
  steps, proj = np.asarray(steps), np.asarray(proj, np.float64)
  if not 0 < tail_fraction < 1:
    raise ValueError(f'tail_fraction={tail_fraction} must lie in (0, 1)')
  n_tail = max(2, int(round(tail_fraction * len(steps))))
  tail = proj[-n_tail:]
  mean, std = tail.mean(0), tail.std(0)
  outside = np.abs(proj - mean) > factor * std + 1e-12
  settle = []
  for j in range(proj.shape[1]):
    bad = np.flatnonzero(outside[:, j])
    settle.append(int(steps[0]) if bad.size == 0 else int(steps[min(bad[-1] + 1, len(steps) - 1)]))
  return {
    'settle_step': np.array(settle),
    'tail_mean': mean,
    'tail_std': std,
    'distance_init': np.abs(proj[0]),
  }


@functools.partial(jax.jit, static_argnames=('per_example',))
def _batch_grad_projections(theta, vectors, xr, yr, *, per_example):
  def one(batch):
    x, y = batch
    g = jax.grad(lambda f: jnp.mean(per_example(f, x, y)[0]))(theta)
    return vectors @ g, jnp.vdot(g, g)

  return jax.lax.map(one, (xr, yr))


def minibatch_gradient_projections(
  per_example, theta, x, y, vectors, *, batch_size, num_batches, seed=0
) -> dict:
  """Projections u_j . g_B of num_batches minibatch gradients (size batch_size, drawn without
  replacement) on the rows of `vectors`: {'proj' [M, k], 'sq_norm' [M]}; their variance over
  batches is the gradient noise along each direction."""
  idx = jnp.asarray(sample_minibatches(int(y.shape[0]), batch_size, num_batches, seed))
  proj, sq = _batch_grad_projections(
    jnp.asarray(theta, jnp.float32),
    jnp.asarray(vectors, jnp.float32),
    x[idx],
    y[idx],
    per_example=per_example,
  )
  return {'proj': np.asarray(proj, np.float64), 'sq_norm': np.asarray(sq, np.float64)}


def stationary_variance(lr: float, momentum: float, curvature, noise_var):
  """Stationary variance of heavy-ball SGD on (c/2) x^2 with gradient noise variance s2 per step:
  lr s2 (1 + mu) / (c (1 - mu) (2 (1 + mu) - lr c)) (infinite where lr c >= 2 (1 + mu)).

  For small lr c this is lr s2 / (2 c (1 - mu)), the rate of the Bayesian reading: with s2 = C / b
  and the per-example gradient covariance C ~ c, it is lr / (2 b (1 - mu)) for every direction.
  """
  c = np.asarray(curvature, np.float64)
  s2 = np.asarray(noise_var, np.float64)
  denom = c * (1 - momentum) * (2 * (1 + momentum) - lr * c)
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(denom > 0, lr * s2 * (1 + momentum) / denom, np.inf)
