"""Fits of line-search profiles: quadratics, simple functional forms, and what the eigen-
decomposition predicts for other directions.

Conventions: a profile is L(t) on a grid of t around 0 along a direction v. The quadratic model
is L(0) + s t + (c / 2) t^2 (s = g.v, c = v^T H v for a unit v); `fit_quadratic` estimates
(L0, s, c) by least squares on |t| <= window, so for an eigenvector the fitted c should equal the
Lanczos eigenvalue as the window shrinks. `quadratic_range` is the largest |t| up to which a given
quadratic stays within a relative tolerance of the measured profile.
"""

import warnings

import numpy as np

FORMS = ('quadratic', 'quartic', 'pseudo_huber')


def fit_quadratic(ts, losses, window: float | None = None) -> dict:
  """Least-squares L0 + s t + (c/2) t^2 on |t| <= window (all t when None).

  Returns {'l0', 'slope', 'curvature', 'rms', 'rel_rms', 'minimum'}: rms of the residual,
  rel_rms = rms / (max - min of the profile in the window), minimum = -s/c (nan if c <= 0).
  """
  t, y = np.asarray(ts, np.float64), np.asarray(losses, np.float64)
  keep = np.ones_like(t, bool) if window is None else np.abs(t) <= window * (1 + 1e-9)
  t, y = t[keep], y[keep]
  if t.size < 3:
    raise ValueError(f'need >= 3 points in the window {window}, got {t.size}')
  design = np.stack([np.ones_like(t), t, 0.5 * t**2], axis=1)
  coef, *_ = np.linalg.lstsq(design, y, rcond=None)
  resid = y - design @ coef
  rms = float(np.sqrt(np.mean(resid**2)))
  spread = float(np.ptp(y))
  l0, s, c = (float(a) for a in coef)
  return {
    'l0': l0,
    'slope': s,
    'curvature': c,
    'rms': rms,
    'rel_rms': rms / spread if spread > 0 else 0.0,
    'minimum': -s / c if c > 0 else float('nan'),
  }


def quadratic(ts, l0, slope, curvature) -> np.ndarray:
  """L0 + s t + (c/2) t^2."""
  t = np.asarray(ts, np.float64)
  return l0 + slope * t + 0.5 * curvature * t**2


def quadratic_range(ts, losses, l0, slope, curvature, tol: float = 0.1) -> float:
  """Largest |t| of the grid such that every point with |t'| <= |t| has
  |L(t') - Q(t')| <= tol * |c| t'^2 / 2 (Q = L0 + s t + c t^2 / 2): the error stays a small
  fraction of the curvature term (the slope term is exact by construction); 0 if the nearest
  points fail."""
  t, y = np.asarray(ts, np.float64), np.asarray(losses, np.float64)
  q = quadratic(t, l0, slope, curvature)
  nonzero = np.abs(t) > 0
  t, y, q = t[nonzero], y[nonzero], q[nonzero]
  ok = np.abs(y - q) <= tol * 0.5 * abs(curvature) * t**2 + 1e-12
  radius = 0.0
  for r in np.unique(np.abs(t)):
    if not np.all(ok[np.abs(t) <= r * (1 + 1e-12)]):
      break
    radius = float(r)
  return radius


def _pseudo_huber(t, a, b, t0, k, delta):
  """a + b (t - t0) + k delta^2 (sqrt(1 + ((t - t0)/delta)^2) - 1): curvature k at t0,
  asymptotically linear with slopes b -+ k delta (softmax cross-entropy's far-field shape)."""
  delta = np.abs(delta) + 1e-12
  u = (t - t0) / delta
  return a + b * (t - t0) + k * delta**2 * (np.sqrt(1.0 + u**2) - 1.0)


def fit_forms(ts, losses) -> dict:
  """Relative rms residual (rms / range) of each form of FORMS fitted to the whole profile."""
  from scipy.optimize import curve_fit

  t, y = np.asarray(ts, np.float64), np.asarray(losses, np.float64)
  spread = float(np.ptp(y)) or 1.0
  out = {'quadratic': fit_quadratic(t, y)['rel_rms']}
  design = np.stack([np.ones_like(t), t, 0.5 * t**2, t**3, t**4], axis=1)
  coef, *_ = np.linalg.lstsq(design, y, rcond=None)
  out['quartic'] = float(np.sqrt(np.mean((y - design @ coef) ** 2)) / spread)
  q = fit_quadratic(t, y)
  c = max(q['curvature'], 1e-6)
  t0 = float(np.clip(-q['slope'] / c, t.min(), t.max()))
  p0 = [float(np.min(y)), 0.0, t0, c, 0.5 * float(np.ptp(t))]
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      popt, _ = curve_fit(_pseudo_huber, t, y, p0=p0, maxfev=20000)
    resid = y - _pseudo_huber(t, *popt)
    out['pseudo_huber'] = float(np.sqrt(np.mean(resid**2)) / spread)
  except (RuntimeError, ValueError):
    out['pseudo_huber'] = float('nan')
  return out


def predicted_curvature(v, top_values, top_vectors, bulk_mean: float) -> dict:
  """v^T H v predicted from the top-k eigenpairs plus an isotropic bulk of mean eigenvalue
  bulk_mean: sum_j lambda_j (u_j.v)^2 + (|v|^2 - sum_j (u_j.v)^2) * bulk_mean.

  Returns {'predicted', 'top', 'bulk', 'top_fraction'} (top_fraction: share of |v|^2 in the top k).
  """
  v = np.asarray(v, np.float64)
  a = np.asarray(top_vectors, np.float64) @ v
  top = float(np.sum(np.asarray(top_values, np.float64) * a**2))
  rest = float(v @ v - a @ a)
  return {
    'predicted': top + rest * bulk_mean,
    'top': top,
    'bulk': rest * bulk_mean,
    'top_fraction': float(a @ a / (v @ v)),
  }


def independent_profile(ts, coefficients, eigen_profiles, l0: float) -> np.ndarray:
  """The loss along v = sum_j a_j u_j predicted by independent eigendirections:
  L0 + sum_j [ell_j(t a_j) - L0], each ell_j interpolated from its measured profile (t_j, L_j)
  (clamped at the ends of its grid)."""
  t = np.asarray(ts, np.float64)
  total = np.full_like(t, l0)
  for a, prof in zip(coefficients, eigen_profiles, strict=True):
    total += np.interp(t * a, prof['t'], prof['loss']) - l0
  return total


def roughness(ts, losses) -> float:
  """rms of the residual after a quadratic fit, relative to the profile's range: ~0 for a smooth
  profile at a small enough scale; a fractal keeps the same value at every scale."""
  return fit_quadratic(ts, losses)['rel_rms']


def correlation(a, b) -> float:
  """Pearson correlation over the finite pairs; NaN with fewer than 3 or a constant side."""
  ok = np.isfinite(a) & np.isfinite(b)
  if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
    return float('nan')
  return float(np.corrcoef(a[ok], b[ok])[0, 1])
