"""Dense curvature for tiny models: the oracle the matrix-free tools are tested against.

An n-parameter Hessian costs n HVPs and n^2 memory, so this is for models of a few thousand
params at most.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxland.curvature.lanczos import as_matvec, default_dtype


def dense_hessian(fn, params):
  """jax.hessian of the scalar fn(params) over the raveled params, as a float64 numpy [n, n]."""
  flat, unravel = ravel_pytree(params)
  return np.asarray(jax.jit(jax.hessian(lambda x: fn(unravel(x))))(flat), np.float64)


def dense_matrix(matvec, dim, dtype=None):
  """The matrix of a linear matvec, column by column (one matvec per column), float64 numpy."""
  dtype = jnp.dtype(dtype or default_dtype())
  matvec = as_matvec(matvec)
  columns = jax.jit(lambda mv: jax.lax.map(mv, jnp.eye(dim, dtype=dtype)))(matvec)
  # lax.map stacks A e_i as rows, i.e. A^T, which equals A for the symmetric operators here.
  return np.asarray(columns, np.float64).T


def eigh(matrix):
  """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix, float64 numpy.

  The matrix is symmetrised first, removing the rounding asymmetry of autodiff Hessians.
  """
  m = np.asarray(matrix, np.float64)
  if m.ndim != 2 or m.shape[0] != m.shape[1]:
    raise ValueError(f'matrix must be square, got shape {m.shape}')
  return np.linalg.eigh(0.5 * (m + m.T))
