"""Hutchinson's trace estimator with Rademacher probes, and its standard error.

tr(A) = E[z^T A z] for z with independent +-1 entries; its variance 2 * sum_{i != j} A_ij^2 is the
smallest among probes with independent entries. The probes run in one jitted loop.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxland.curvature.lanczos import as_matvec, default_dtype


class TraceEstimate(NamedTuple):
  """Mean of the probe samples z^T A z, its standard error std/sqrt(P), and the samples [P]."""

  trace: float
  stderr: float
  samples: np.ndarray


@functools.partial(jax.jit, static_argnames=('dim', 'num_probes', 'dtype'))
def _samples(matvec, key, dim, num_probes, dtype):
  def sample(i):
    z = jax.random.rademacher(jax.random.fold_in(key, i), (dim,), dtype)
    return jnp.vdot(z, matvec(z).astype(dtype))

  return jax.lax.map(sample, jnp.arange(num_probes))


def hutchinson(matvec, dim, num_probes, *, seed=0, dtype=None):
  """Estimates tr(A) from num_probes matvecs of Rademacher vectors (num_probes >= 2)."""
  if num_probes < 2:
    raise ValueError(f'num_probes={num_probes}; need >= 2 for a standard error')
  if dim < 1:
    raise ValueError(f'dim={dim}; must be >= 1')
  dtype = jnp.dtype(dtype or default_dtype())
  samples = np.asarray(
    _samples(as_matvec(matvec), jax.random.key(seed), int(dim), num_probes, dtype),
    np.float64,
  )
  stderr = samples.std(ddof=1) / np.sqrt(num_probes)
  return TraceEstimate(float(samples.mean()), float(stderr), samples)
