"""Interventions in the eigenbasis: snapping to the quadratic minimum, noise in eigen-bands, and
an eigenvalue-dependent learning rate as an optax GradientTransformation.

Snap: the quadratic model L(theta + d) ~ L + g.d + d^T H d / 2 has, along an eigenvector u_j of
eigenvalue lambda_j > 0, its minimum at d_j = -(g.u_j) / lambda_j; `snap` moves theta there along
every u_j with lambda_j >= threshold (a Newton step restricted to the top of the spectrum).

Noise bands (per-direction standard deviation sigma):
  top        sigma * sum_j z_j u_j over the top-k eigenvectors
  bulk       sigma * (I - U^T U) z: isotropic noise in the complement of the top-k span
  all        sigma * z (isotropic in every direction)
  posterior  sum_j sigma / sqrt(lambda_j) z_j u_j over the top-k: the shape of a Laplace posterior
             (sigma^2 = T / N for the posterior exp(-N L / T))

Bayesian learning rates (seed 004): heavy-ball SGD with LR eta, momentum mu and batch b leaves a
direction of curvature lambda and per-example gradient variance C at stationary variance
eta C / (2 b lambda (1 - mu)); the tempered posterior exp(-N L / T) has variance T / (N lambda).
They agree when eta = 2 b (1 - mu) T / (N C). With C ~ lambda (Fisher ~ Hessian) a constant LR
is "Bayesian" for exactly one eigenvalue lambda* = 2 b (1 - mu) T / (N eta): hotter than the
posterior above it, colder below. `bayes_scales` gives the per-direction LR factors
min(max_scale, lambda* / C_j) that `eigen_scale` applies to the top-k components of the update.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxland.distance.ensemble import softmax

BANDS = ('top', 'bulk', 'all', 'posterior')


def snap(theta, grad, values, vectors, threshold: float) -> np.ndarray:
  """theta - sum over lambda_j >= threshold (and > 0) of (g.u_j / lambda_j) u_j."""
  values = np.asarray(values, np.float64)
  vectors = np.asarray(vectors, np.float64)
  sel = (values >= threshold) & (values > 0)
  coeff = vectors[sel] @ np.asarray(grad, np.float64) / values[sel]
  return np.asarray(theta, np.float64) - coeff @ vectors[sel]


def snap_predicted_decrease(grad, values, vectors, threshold: float) -> float:
  """The quadratic model's loss decrease of `snap`: sum (g.u_j)^2 / (2 lambda_j)."""
  values = np.asarray(values, np.float64)
  sel = (values >= threshold) & (values > 0)
  a = np.asarray(vectors, np.float64)[sel] @ np.asarray(grad, np.float64)
  return float(np.sum(a**2 / (2 * values[sel])))


def band_noise(rng: np.random.Generator, band: str, sigma: float, values, vectors) -> np.ndarray:
  """One draw of the noise of `band` (module doc) at per-direction std sigma, float64 [P]."""
  if band not in BANDS:
    raise ValueError(f'noise band {band!r}; choose from {BANDS}')
  vectors = np.asarray(vectors, np.float64)
  k, dim = vectors.shape
  if band == 'top':
    return sigma * rng.standard_normal(k) @ vectors
  if band == 'posterior':
    lam = np.asarray(values, np.float64)
    std = np.where(lam > 0, sigma / np.sqrt(np.maximum(lam, 1e-30)), 0.0)
    return (std * rng.standard_normal(k)) @ vectors
  z = rng.standard_normal(dim)
  if band == 'all':
    return sigma * z
  return sigma * (z - (vectors @ z) @ vectors)


class EigenScaleState(NamedTuple):
  """The fixed basis and factors (kept in the state so they checkpoint with the optimizer)."""

  vectors: jax.Array  # [k, P] orthonormal rows.
  scales: jax.Array  # [k]


def eigen_scale(vectors, scales) -> optax.GradientTransformation:
  """Multiplies the components of the updates along the rows u_j of `vectors` by scales[j]:
  u <- u + sum_j (s_j - 1)(u_j . u) u_j, on the raveled update (ravel_pytree order).

  Placed last in a chain (after momentum and -lr) it gives direction j the learning rate
  lr * s_j, momentum being linear; the rest of the space is untouched.
  """
  vectors = jnp.asarray(vectors, jnp.float32)
  scales = jnp.asarray(scales, jnp.float32)
  if vectors.ndim != 2 or scales.shape != (vectors.shape[0],):
    raise ValueError(f'vectors [k, P] and scales [k] expected, got {vectors.shape}, {scales.shape}')

  def init_fn(params):
    flat = ravel_pytree(params)[0]
    if flat.size != vectors.shape[1]:
      raise ValueError(f'params have {flat.size} entries but the eigenvectors {vectors.shape[1]}')
    return EigenScaleState(vectors, scales)

  def update_fn(updates, state, params=None):
    del params
    flat, unravel = ravel_pytree(updates)
    coeff = state.vectors @ flat.astype(jnp.float32)
    flat = flat + (state.vectors.T @ ((state.scales - 1.0) * coeff)).astype(flat.dtype)
    return unravel(flat), state

  return optax.GradientTransformation(init_fn, update_fn)


def bayes_eigenvalue(lr, momentum, batch_size, num_train, temperature=1.0) -> float:
  """lambda* = 2 b (1 - mu) T / (N eta): the curvature at which constant-LR SGD samples the
  tempered posterior (with per-example gradient variance equal to the curvature)."""
  return float(2 * batch_size * (1 - momentum) * temperature / (num_train * lr))


def bayes_scales(noise, lr, momentum, batch_size, num_train, temperature=1.0, max_scale=1.0):
  """Per-direction LR factors min(max_scale, lambda* / C_j), C_j the per-example gradient variance
  along u_j (pass the eigenvalues for the Fisher ~ Hessian reading)."""
  lam_star = bayes_eigenvalue(lr, momentum, batch_size, num_train, temperature)
  c = np.maximum(np.asarray(noise, np.float64), 1e-30)
  return np.minimum(max_scale, lam_star / c)


def ensemble_metrics(logits_list, labels) -> dict:
  """Accuracy and NLL of the mean of the members' softmax probabilities, and the members' means."""
  labels = np.asarray(labels)
  probs = [softmax(lg) for lg in logits_list]
  mean = np.mean(probs, axis=0)
  idx = np.arange(len(labels))
  member_acc = [float(np.mean(np.argmax(p, -1) == labels)) for p in probs]
  member_nll = [float(-np.mean(np.log(np.maximum(p[idx, labels], 1e-30)))) for p in probs]
  return {
    'ensemble_accuracy': float(np.mean(np.argmax(mean, -1) == labels)),
    'ensemble_loss': float(-np.mean(np.log(np.maximum(mean[idx, labels], 1e-30)))),
    'member_accuracy': float(np.mean(member_acc)),
    'member_loss': float(np.mean(member_nll)),
  }
