"""Hutchinson's trace estimator with Rademacher probes, and its standard error.

tr(A) = E[z^T A z] for z with independent +-1 entries; its variance 2 * sum_{i != j} A_ij^2 is the
smallest among probes with independent entries. Each probe is one call of a jitted function (a
Python loop over probes: no recompiles, and no convolution inside an XLA while loop on CPU).
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


@functools.partial(jax.jit, static_argnames=('dim', 'dtype'))
def _sample(matvec, key, i, dim, dtype):
  z = jax.random.rademacher(jax.random.fold_in(key, i), (dim,), dtype)
  return jnp.vdot(z, matvec(z).astype(dtype))


def hutchinson(matvec, dim, num_probes, *, seed=0, dtype=None):
  """Estimates tr(A) from num_probes matvecs of Rademacher vectors (num_probes >= 2)."""
  if num_probes < 2:
    raise ValueError(f'num_probes={num_probes}; need >= 2 for a standard error')
  if dim < 1:
    raise ValueError(f'dim={dim}; must be >= 1')
  dtype = jnp.dtype(dtype or default_dtype())
  matvec, key = as_matvec(matvec), jax.random.key(seed)
  samples = [_sample(matvec, key, jnp.int32(i), int(dim), dtype) for i in range(num_probes)]
  samples = np.array(jax.device_get(samples), np.float64)
  stderr = samples.std(ddof=1) / np.sqrt(num_probes)
  return TraceEstimate(float(samples.mean()), float(stderr), samples)
