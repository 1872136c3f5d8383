"""Lanczos with full reorthogonalisation: extreme eigenpairs of a symmetric operator from matvecs.

The basis [m, n] stays on device (float32, or float64 when jax x64 is enabled). The steps run in
one jitted `fori_loop`, or on CPU as a Python loop over the same jitted step (see
lanczos_tridiag); either way nothing recompiles per step, and a new operator of the same shapes
(a new checkpoint) reuses the compiled code. Each new direction is orthogonalised against the
whole basis twice ("twice is enough"), so Ritz values do not duplicate as they do in plain
Lanczos. The small tridiagonal T is diagonalised on the host in float64.

Invariant subspace: when the new direction's norm falls below `breakdown_rtol * |A v|` (default
100 eps) the Krylov space from the start vector is (numerically) invariant. The loop then
records beta = 0, making T block diagonal, and restarts from a random vector orthogonal to the
basis; so repeated eigenvalues are found with their multiplicity, and every Ritz pair still
satisfies A V^T = V^T T + beta_m v_{m+1} e_m^T. With num_steps >= dim the whole space is
spanned and the Ritz values are the eigenvalues.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from jax.tree_util import Partial


class Ritz(NamedTuple):
  """Ritz pairs: values [k] (float64), vectors [k, n] (device, basis dtype), residual bounds [k]."""

  values: np.ndarray
  vectors: jax.Array | None
  residuals: np.ndarray


class LanczosResult(NamedTuple):
  """Top-k (descending) and bottom-k (ascending) Ritz pairs and the tridiagonal they come from.

  residuals are |beta_m * s_mi| = ||A y_i - theta_i y_i|| for unit Ritz vectors y_i, so each
  theta_i is within that distance of an eigenvalue of A. alpha [m], beta [m] (float64) define T
  (beta[:-1] off the diagonal, beta[-1] the coupling to the next vector; 0 at restarts).
  """

  top: Ritz
  bottom: Ritz
  ritz_values: np.ndarray
  alpha: np.ndarray
  beta: np.ndarray
  breakdowns: int


def default_dtype():
  """float64 when jax x64 is enabled, else float32."""
  return jax.dtypes.canonicalize_dtype(jnp.float64)


def default_breakdown_rtol(dtype):
  """100 eps: a missed breakdown is harmless (the normalised rounding noise left is orthogonal to
  the basis and serves as the restart), while a false one drops a coupling of up to rtol * |A v|.
  """
  return float(100 * np.finfo(dtype).eps)


def as_matvec(matvec):
  """A matvec as a pytree (a Partial), so its arrays become arguments of the jitted solvers."""
  return matvec if isinstance(matvec, Partial) else Partial(matvec)


def start_vector(seed, dim, dtype):
  """A standard normal vector drawn on the host (numpy), so no extra compile per shape."""
  return np.random.default_rng(seed).standard_normal(dim).astype(dtype)


def _orthogonalise(basis, w):
  """w minus its projection on the rows of `basis` (unused rows are zero), applied twice."""
  w = w - basis.T @ (basis @ w)
  return w - basis.T @ (basis @ w)


class _State(NamedTuple):
  basis: jax.Array  # [m, n]; row j holds the j-th Lanczos vector, later rows are zero
  alpha: jax.Array  # [m]
  beta: jax.Array  # [m]
  v: jax.Array  # the next Lanczos vector
  v_prev: jax.Array
  b_prev: jax.Array
  breaks: jax.Array  # number of restarts


def _init(v0, num_steps):
  dtype = v0.dtype
  zeros, scalar = jnp.zeros((num_steps,), dtype), jnp.zeros((), dtype)
  v = v0 / jnp.linalg.norm(v0)
  basis = jnp.zeros((num_steps, v0.shape[0]), dtype)
  return _State(basis, zeros, zeros, v, jnp.zeros_like(v), scalar, jnp.zeros((), jnp.int32))


def _step(matvec, key, breakdown_rtol, j, state):
  """Lanczos step j: A v, three-term recurrence, full reorthogonalisation, restart on breakdown."""
  basis, alpha, beta, v, v_prev, b_prev, breaks = state
  dtype = v.dtype
  basis = basis.at[j].set(v)
  w = matvec(v).astype(dtype)
  scale = jnp.linalg.norm(w)
  a = jnp.vdot(v, w)
  w = _orthogonalise(basis, w - a * v - b_prev * v_prev)
  b = jnp.linalg.norm(w)
  broke = b <= breakdown_rtol * scale

  def restart(_):
    r = jax.random.normal(jax.random.fold_in(key, j), v.shape, dtype)
    r = _orthogonalise(basis, r)
    return r / jnp.maximum(jnp.linalg.norm(r), jnp.finfo(dtype).tiny), jnp.zeros((), dtype)

  def proceed(_):
    return w / b, b

  v_next, b = jax.lax.cond(broke, restart, proceed, None)
  return _State(basis, alpha.at[j].set(a), beta.at[j].set(b), v_next, v, b, breaks + broke)


@functools.partial(jax.jit, static_argnames=('num_steps',))
def _device_loop(matvec, v0, key, breakdown_rtol, num_steps):
  step = lambda j, state: _step(matvec, key, breakdown_rtol, j, state)
  return jax.lax.fori_loop(0, num_steps, step, _init(v0, num_steps))


_init_jit = jax.jit(_init, static_argnames=('num_steps',))
_host_step = jax.jit(_step, donate_argnames=('state',))


def _placed_like(state, matvec):
  """The state replicated over the mesh of the matvec's sharded arrays (as the step returns it),
  so that the host loop's second step does not compile again for new input shardings."""
  for leaf in jax.tree.leaves(matvec):
    sharding = getattr(leaf, 'sharding', None)
    if isinstance(sharding, NamedSharding):
      return jax.device_put(state, NamedSharding(sharding.mesh, PartitionSpec()))
  return state


def lanczos_tridiag(matvec, v0, key, breakdown_rtol, num_steps, host_loop=None):
  """num_steps Lanczos steps from v0 (any norm): (alpha [m], beta [m], basis [m, n], restarts).

  host_loop=False runs all steps in one jitted fori_loop; True calls the same jitted step from
  Python (the basis donated, so updated in place; the step index is traced, so nothing
  recompiles). None picks True on CPU, where XLA runs convolution gradients inside a while loop
  10-30x slower than outside one (jax-ml/jax#12868), and False on GPU / TPU.
  """
  matvec = as_matvec(matvec)
  if host_loop is None:
    host_loop = jax.default_backend() == 'cpu'
  if host_loop:
    state = _placed_like(_init_jit(v0, num_steps=num_steps), matvec)
    for j in range(num_steps):
      state = _host_step(matvec, key, breakdown_rtol, jnp.int32(j), state)
  else:
    state = _device_loop(matvec, v0, key, breakdown_rtol, num_steps)
  return state.alpha, state.beta, state.basis, state.breaks


def tridiag_eigh(alpha, beta):
  """Eigenvalues (ascending) and eigenvectors (columns) of T, in float64 on the host."""
  alpha = np.asarray(alpha, np.float64)
  off = np.asarray(beta, np.float64)[: alpha.size - 1]
  t = np.diag(alpha) + np.diag(off, 1) + np.diag(off, -1)
  return np.linalg.eigh(t)


def _ritz(values, s, order, beta_last, basis, vectors):
  s_sel = s[:, order]
  ritz_vectors = None
  if vectors:
    ritz_vectors = jnp.asarray(s_sel.T, basis.dtype) @ basis
  return Ritz(values[order], ritz_vectors, np.abs(beta_last * s_sel[-1]))


def lanczos(
  matvec,
  dim,
  num_steps,
  *,
  top_k=10,
  bottom_k=0,
  seed=0,
  v0=None,
  dtype=None,
  vectors=True,
  breakdown_rtol=None,
  host_loop=None,
):
  """Top-k and bottom-k eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

  matvec: v [dim] -> A v [dim]; pass a jax.tree_util.Partial (Operator.matvec) so its arrays are
  jit arguments; a plain function is wrapped (its closed-over arrays become constants).
  num_steps: Krylov dimension m (clipped to dim, where the result is exact); each step is one
  matvec. seed: start vector (standard normal) and restarts; or give v0. dtype: basis dtype
  (default float64 under x64, else float32). breakdown_rtol: see default_breakdown_rtol.
  host_loop: see lanczos_tridiag (None: a Python loop of jitted steps on CPU, else one fori_loop).
  """
  if dim < 1 or num_steps < 1:
    raise ValueError(f'dim={dim} and num_steps={num_steps} must be >= 1')
  num_steps = min(int(num_steps), int(dim))
  if not 0 <= top_k <= num_steps or not 0 <= bottom_k <= num_steps:
    raise ValueError(f'top_k={top_k} and bottom_k={bottom_k} must lie in [0, {num_steps}]')
  dtype = jnp.dtype(dtype or default_dtype())
  if breakdown_rtol is None:
    breakdown_rtol = default_breakdown_rtol(dtype)
  if v0 is None:
    v0 = start_vector(seed, dim, dtype)
  elif np.shape(v0) != (dim,):
    raise ValueError(f'v0 has shape {np.shape(v0)}; expected ({dim},)')
  alpha, beta, basis, breaks = lanczos_tridiag(
    matvec, jnp.asarray(v0, dtype), jax.random.key(seed), breakdown_rtol, num_steps, host_loop
  )
  alpha, beta = np.asarray(alpha, np.float64), np.asarray(beta, np.float64)
  values, s = tridiag_eigh(alpha, beta)
  top = _ritz(values, s, np.arange(num_steps)[::-1][:top_k], beta[-1], basis, vectors)
  bottom = _ritz(values, s, np.arange(bottom_k), beta[-1], basis, vectors)
  return LanczosResult(top, bottom, values, alpha, beta, int(breaks))
