"""Muon as airbench94_muon uses it (Jordan 2024): momentum, then the update's matrix replaced by an
approximate orthogonalization of it, on weights renormalized at every step.

For a conv kernel [k, k, in, out] (or a dense one [in, out]) seen as the matrix G [out, k k in]:
  buf = momentum buf + g;  d = g + momentum buf (nesterov) or buf
  w <- w sqrt(out) / ||w||_F             (the weight renormalized, then)
  w <- w - lr NS(d)
NS is the quintic Newton-Schulz iteration X <- a X + (b A + c A^2) X, A = X X^T, from
X = d / (||d||_F + eps) on the wide orientation, with (a, b, c) = (3.4445, -4.7750, 2.0315): the
coefficients push every singular value toward 1 fast without converging exactly (airbench's
reasoning: values left in about [0.5, 1.5] train as well as the exact U V^T). Its scale ignores
the gradient's, so a summed and a batch-mean loss give the same update. airbench runs NS in
bfloat16 for 3 steps; `ns_dtype` chooses.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: jax.Array, steps: int, dtype=jnp.bfloat16, eps: float = 1e-7) -> jax.Array:
  """NS(g) of a 2-D g (see the module doc), returned in g's dtype."""
  a, b, c = NS_COEFFICIENTS
  x = g.astype(dtype)
  x = x / (jnp.linalg.norm(x) + eps)
  tall = g.shape[0] > g.shape[1]
  if tall:
    x = x.T
  for _ in range(steps):
    m = x @ x.T
    x = a * x + (b * m + c * m @ m) @ x
  return (x.T if tall else x).astype(g.dtype)


def _as_matrix(w: jax.Array) -> jax.Array:
  """[out, everything else] of a flax kernel whose last axis is its outputs."""
  return w.reshape(-1, w.shape[-1]).T


class MuonState(NamedTuple):
  momentum: optax.Updates


def muon(
  learning_rate, momentum: float, nesterov: bool = True, ns_steps: int = 3,
  ns_dtype=jnp.bfloat16, normalize: bool = True,
) -> optax.GradientTransformation:  # fmt: skip
  """The whole Muon step of the module doc as one optax transform (its update includes the
  renormalization, so it needs params; learning_rate may be a traced scalar)."""

  def init(params):
    return MuonState(jax.tree.map(jnp.zeros_like, params))

  def update(grads, state, params=None):
    if params is None:
      raise ValueError(optax.NO_PARAMS_MSG)
    buf = jax.tree.map(lambda m, g: momentum * m + g, state.momentum, grads)
    direction = jax.tree.map(lambda g, m: g + momentum * m, grads, buf) if nesterov else buf

    def step(d, w):
      orth = newton_schulz(_as_matrix(d), ns_steps, ns_dtype).T.reshape(w.shape)
      if normalize:
        renormed = w * (jnp.sqrt(w.shape[-1]).astype(w.dtype) / jnp.linalg.norm(w))
      else:
        renormed = w
      return (renormed - w) - jnp.asarray(learning_rate, w.dtype) * orth

    return jax.tree.map(step, direction, params), MuonState(buf)

  return optax.GradientTransformation(init, update)
