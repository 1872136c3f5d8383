"""Spectral density by stochastic Lanczos quadrature (SLQ), with Gaussian broadening.

For a unit probe v, m Lanczos steps give a Gauss quadrature rule: nodes theta_i (eigenvalues of
T) and weights w_i = (first component of T's i-th eigenvector)^2, which sum to 1, with
sum_i w_i f(theta_i) ~ v^T f(A) v, exact for polynomials of degree < 2m. Averaging the rules of
random probes estimates the eigenvalue distribution (1/n) sum_j delta(x - lambda_j); broadening
each node by a normalised Gaussian of width sigma turns it into a density that integrates to 1.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxland.curvature.lanczos import (
  as_matvec,
  default_breakdown_rtol,
  default_dtype,
  lanczos_tridiag,
  start_vector,
  tridiag_eigh,
)


class SLQResult(NamedTuple):
  """Quadrature rules of each probe: nodes [P, m], weights [P, m] (float64, rows sum to 1)."""

  nodes: np.ndarray
  weights: np.ndarray


def quadrature(alpha, beta):
  """Gauss quadrature nodes and weights of one Lanczos tridiagonal (alpha, beta as in lanczos)."""
  nodes, s = tridiag_eigh(alpha, beta)
  return nodes, s[0] ** 2


def slq(
  matvec, dim, num_probes, num_steps, *, seed=0, dtype=None, breakdown_rtol=None, host_loop=None
):
  """Stochastic Lanczos quadrature: num_probes Gaussian probes, num_steps matvecs each.

  Probes are standard normal (uniform directions after normalisation), so each rule's moments
  are unbiased for the normalised moments (1/n) tr(A^k). One compiled Lanczos loop serves all
  probes. num_steps is clipped to dim; host_loop as in lanczos_tridiag.
  """
  if num_probes < 1:
    raise ValueError(f'num_probes={num_probes}; must be >= 1')
  if dim < 1 or num_steps < 1:
    raise ValueError(f'dim={dim} and num_steps={num_steps} must be >= 1')
  num_steps = min(int(num_steps), int(dim))
  dtype = jnp.dtype(dtype or default_dtype())
  if breakdown_rtol is None:
    breakdown_rtol = default_breakdown_rtol(dtype)
  matvec = as_matvec(matvec)
  nodes, weights = [], []
  for p in range(num_probes):
    v0 = start_vector((seed, p), dim, dtype)
    key = jax.random.fold_in(jax.random.key(seed), p)
    alpha, beta, _, _ = lanczos_tridiag(
      matvec, jnp.asarray(v0), key, breakdown_rtol, num_steps, host_loop
    )
    theta, w = quadrature(alpha, beta)
    nodes.append(theta)
    weights.append(w)
  return SLQResult(np.stack(nodes), np.stack(weights))


def moment(result, power):
  """SLQ estimate of the normalised moment (1/n) tr(A^power), e.g. power=1: mean eigenvalue."""
  return float(np.mean(np.sum(result.weights * result.nodes**power, axis=1)))


def density_grid(result, sigma, num_points=1001, pad=6.0):
  """An even grid from min(node) - pad*sigma to max(node) + pad*sigma."""
  lo, hi = result.nodes.min() - pad * sigma, result.nodes.max() + pad * sigma
  return np.linspace(lo, hi, num_points)


def spectral_density(result, grid, sigma):
  """Gaussian-broadened density on `grid`: mean over probes of sum_i w_i N(x; theta_i, sigma^2).

  Integrates to 1 over a grid that extends a few sigma past the extreme nodes.
  """
  if sigma <= 0:
    raise ValueError(f'sigma={sigma}; must be > 0')
  grid = np.asarray(grid, np.float64)
  density = np.zeros_like(grid)
  for nodes, weights in zip(result.nodes, result.weights, strict=True):
    z = (grid[:, None] - nodes[None, :]) / sigma
    density += np.exp(-0.5 * z**2) @ weights
  return density / (result.nodes.shape[0] * sigma * np.sqrt(2 * np.pi))
