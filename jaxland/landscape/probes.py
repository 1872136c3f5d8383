"""The line probes of the `landscape` task, one function each: Problem + Eigen -> (rows, arrays).

Line searches along eigen, bulk, bottom and random directions, minibatch and dense multiscale
lines; the probes along the run are in training_probes.py.

Each returns a dict with 'rows' (a list of flat dicts, written as a CSV), 'arrays' (numpy arrays
for the npz) and 'summary' (a few headline numbers). Settings come from config.landscape (`c`).
"""

import numpy as np

from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape import fits, lines
from jaxland.landscape.problem import Problem, train_gradient


def _radius(c, curvature):
  return lines.eigen_radius(curvature, c.line_rise, c.line_min_radius, c.line_max_radius)


def _grid(c, radius):
  return lines.symmetric_geometric_grid(radius, c.line_points, c.line_min_frac)


def _fit_row(c, prof, radius, slope, curvature):
  """Fitted curvature (inner window and whole grid) and the range where the Taylor quadratic
  L0 + (g.v) t + (v^T H v / 2) t^2 holds."""
  inner = fits.fit_quadratic(prof['t'], prof['loss'], c.inner_window * radius)
  whole = fits.fit_quadratic(prof['t'], prof['loss'])
  l0 = float(np.interp(0.0, prof['t'], prof['loss']))
  qrange = fits.quadratic_range(prof['t'], prof['loss'], l0, slope, curvature, c.quad_tol)
  # The same with the fitted local quadratic: separates "autodiff's Hessian misses curvature"
  # (ReLU kinks) from "the function stops being quadratic".
  qfit = fits.quadratic_range(
    prof['t'], prof['loss'], inner['l0'], inner['slope'], inner['curvature'], c.quad_tol
  )
  return {
    'radius': radius,
    'fit_curvature': inner['curvature'],
    'fit_curvature_whole': whole['curvature'],
    'fit_rel_rms_whole': whole['rel_rms'],
    'fit_minimum': inner['minimum'],
    'quad_range': qrange,
    'quad_range_rel': qrange / radius,
    'quad_range_fit': qfit,
    'quad_range_fit_rel': qfit / radius,
    'loss_min': float(np.min(prof['loss'])),
    't_at_min': float(prof['t'][np.argmin(prof['loss'])]),
  }


def line_searches(problem: Problem, eig: eigen_lib.Eigen, c) -> dict:
  """Profiles along the top, bulk and bottom Ritz vectors; quadratic fits and functional forms."""
  grad = train_gradient(problem, c.batch_size)
  picks = eigen_lib.select(eig, c.num_bulk, c.num_bottom)
  rows, profiles = [], {}
  for group, indices in picks.items():
    for i in indices:
      v, lam = eig.vectors[i], float(eig.values[i])
      radius = _radius(c, lam)
      prof = lines.train_profile(problem, v, _grid(c, radius), c)
      slope = float(grad @ v)
      row = {'group': group, 'index': i, 'eigenvalue': lam, 'residual': float(eig.residuals[i])}
      row |= {'slope': slope} | _fit_row(c, prof, radius, slope, lam)
      row |= {f'form_{k}': val for k, val in fits.fit_forms(prof['t'], prof['loss']).items()}
      rows.append(row)
      profiles[f'eig{i}'] = np.stack([prof['t'], prof['loss'], prof['accuracy']])
  top = [r for r in rows if r['group'] == 'top']
  rel_err = [abs(r['fit_curvature'] / r['eigenvalue'] - 1) for r in top if r['eigenvalue'] > 0]
  summary = {
    'top_eigenvalue': float(eig.values[0]),
    'median_rel_error_fit_vs_lanczos_top': float(np.median(rel_err)) if rel_err else None,
    'median_quad_range_rel_top': float(np.median([r['quad_range_rel'] for r in top])),
    'median_quad_range_fit_rel_top': float(np.median([r['quad_range_fit_rel'] for r in top])),
    'median_fit_over_lanczos_top': float(
      np.median([r['fit_curvature'] / r['eigenvalue'] for r in top if r['eigenvalue'] > 0])
    ),
    'best_form_counts': _best_forms(rows),
    'grad_norm': float(np.linalg.norm(grad)),
  }
  return {'rows': rows, 'arrays': profiles, 'summary': summary, 'grad': grad}


def _best_forms(rows):
  counts = {}
  for r in rows:
    scores = {f: r[f'form_{f}'] for f in fits.FORMS if np.isfinite(r[f'form_{f}'])}
    if scores:
      best = min(scores, key=scores.get)
      counts[best] = counts.get(best, 0) + 1
  return counts


def random_directions(problem: Problem, eig: eigen_lib.Eigen, c, grad, eigen_profiles) -> dict:
  """Gaussian, filter-normalised and top-k-mixture directions: measured vs predicted curvature;
  for the mixtures also the whole profile predicted by independent eigendirections."""
  hvp = eigen_lib.hvp_fn(problem, c.batch_size, c.curvature_examples, c.kind)
  bulk = eig.bulk_mean() if np.isfinite(eig.trace) else float('nan')
  rng = np.random.default_rng(c.seed + 100)
  rows, arrays = [], {}
  top_idx = [i for i in range(eig.num_top) if f'eig{i}' in eigen_profiles]
  for kind in ('gaussian', 'filter', 'topk_mix'):
    for r in range(c.num_random):
      seed = c.seed + 1000 * (1 + len(rows))
      coeffs = None
      if kind == 'gaussian':
        v = lines.unit_gaussian(problem.dim, seed)
      elif kind == 'filter':
        v = lines.filter_normalized(problem.params, seed)
        v = v / np.linalg.norm(v)
      else:
        coeffs = rng.standard_normal(len(top_idx))
        coeffs /= np.linalg.norm(coeffs)
        v = (coeffs @ eig.vectors[top_idx]).astype(np.float32)
      exact = float(v @ hvp(v))
      pred = fits.predicted_curvature(v, eig.top_values, eig.top_vectors, bulk)
      radius = _radius(c, exact)
      prof = lines.train_profile(problem, v, _grid(c, radius), c)
      slope = float(grad @ v)
      row = {'kind': kind, 'repeat': r, 'vHv_exact': exact, 'vHv_predicted': pred['predicted']}
      row |= {'predicted_top': pred['top'], 'predicted_bulk': pred['bulk']}
      row |= {'top_fraction': pred['top_fraction'], 'slope': slope}
      row |= _fit_row(c, prof, radius, slope, exact)
      name = f'{kind}{r}'
      arrays[name] = np.stack([prof['t'], prof['loss'], prof['accuracy']])
      if coeffs is not None:
        l0 = float(np.interp(0.0, prof['t'], prof['loss']))
        indep = fits.independent_profile(
          prof['t'], coeffs, [_as_profile(eigen_profiles[f'eig{i}']) for i in top_idx], l0
        )
        arrays[f'{name}_independent'] = indep
        spread = float(np.ptp(prof['loss'])) or 1.0
        row['independent_rel_rms'] = float(np.sqrt(np.mean((indep - prof['loss']) ** 2)) / spread)
      rows.append(row)
  summary = {'bulk_mean_eigenvalue': bulk, 'trace': eig.trace, 'trace_stderr': eig.trace_stderr}
  for kind in ('gaussian', 'filter', 'topk_mix'):
    sel = [r for r in rows if r['kind'] == kind]
    if sel:
      ratio = [r['vHv_predicted'] / r['vHv_exact'] for r in sel]
      fit_ratio = [r['fit_curvature'] / r['vHv_exact'] for r in sel]
      summary[f'{kind}_predicted_over_exact'] = [float(np.mean(ratio)), float(np.std(ratio))]
      summary[f'{kind}_fit_over_exact'] = [float(np.mean(fit_ratio)), float(np.std(fit_ratio))]
  mix = [r['independent_rel_rms'] for r in rows if 'independent_rel_rms' in r]
  if mix:
    summary['topk_mix_independent_rel_rms'] = float(np.mean(mix))
  return {'rows': rows, 'arrays': arrays, 'summary': summary}


def _as_profile(stacked):
  return {'t': stacked[0], 'loss': stacked[1]}


def minibatch(problem: Problem, eig: eigen_lib.Eigen, c) -> dict:
  """Line searches on random minibatches: spread of the minimum and of the curvature against b."""
  x, y = problem.splits['train']
  rows, arrays = [], {}
  n_dirs = min(c.minibatch_directions, eig.num_top)
  for i in range(n_dirs):
    v, lam = eig.vectors[i], float(eig.values[i])
    radius = _radius(c, lam)
    ts = _grid(c, radius)
    for b in c.minibatch_sizes:
      if b > int(y.shape[0]):
        continue
      prof = lines.minibatch_profiles(
        problem.per_example,
        problem.flat,
        v,
        ts,
        x,
        y,
        batch_size=b,
        repeats=c.minibatch_repeats,
        seed=c.seed + 17 * b + i,
        t_chunk=c.t_chunk,
      )
      f = [fits.fit_quadratic(ts, p, c.inner_window * radius) for p in prof['loss']]
      curv = np.array([q['curvature'] for q in f])
      # Minimum of each minibatch's local quadratic: -s_b / c_b (the linear-term estimate).
      mins = np.array([-q['slope'] / q['curvature'] if q['curvature'] > 0 else np.nan for q in f])
      arrays[f'eig{i}_b{b}_curvature'] = curv
      arrays[f'eig{i}_b{b}_minimum'] = mins
      rows.append(
        {
          'index': i,
          'eigenvalue': lam,
          'batch_size': b,
          'curvature_mean': float(np.mean(curv)),
          'curvature_std': float(np.std(curv)),
          'minimum_mean': float(np.nanmean(mins)),
          'minimum_std': float(np.nanstd(mins)),
          'corr_minimum_curvature': fits.correlation(mins, curv),
          'fraction_convex': float(np.mean(curv > 0)),
        }
      )
  return {'rows': rows, 'arrays': arrays, 'summary': {}}


def dense(problem: Problem, eig: eigen_lib.Eigen, c) -> dict:
  """Dense line searches at shrinking scales along the top eigenvector and a random direction."""
  x, y = problem.splits['train']
  n = c.dense_examples or int(y.shape[0])
  x, y = x[:n], y[:n]
  rows, arrays = [], {}
  directions = {'eig0': (eig.vectors[0], float(eig.values[0]))}
  directions['gaussian'] = (lines.unit_gaussian(problem.dim, c.seed + 7), eig.bulk_mean())
  for name, (v, lam) in directions.items():
    radius = _radius(c, lam if np.isfinite(lam) else 0.0)
    profs = lines.multiscale_profiles(
      problem.per_example,
      problem.flat,
      v,
      x,
      y,
      scales=[radius * s for s in c.dense_scales],
      num_points=c.dense_points,
      batch_size=c.batch_size,
      t_chunk=c.t_chunk,
    )
    for s, prof in zip(c.dense_scales, profs, strict=True):
      l0 = float(np.interp(0.0, prof['t'], prof['loss']))
      rows.append(
        {
          'direction': name,
          'scale': float(s),
          'half_width': prof['scale'],
          'roughness': fits.roughness(prof['t'], prof['loss']),
          'loss_range': float(np.ptp(prof['loss'])),
          'float32_floor': float(np.finfo(np.float32).eps * abs(l0)),
        }
      )
      arrays[f'{name}_s{s:g}'] = np.stack([prof['t'], prof['loss']])
  return {'rows': rows, 'arrays': arrays, 'summary': {}}
