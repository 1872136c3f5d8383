"""The probes of the `landscape` task, one function each: Problem + Eigen -> (table rows, arrays).

Each returns a dict with 'rows' (a list of flat dicts, written as a CSV), 'arrays' (numpy arrays
for the npz) and 'summary' (a few headline numbers). Settings come from config.landscape (`c`).
"""

import time

import numpy as np

from jaxland.landscape import dynamics, fits, lines, per_example
from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape.problem import Problem, load_trajectory_params


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


def _gradient(problem: Problem, c):
  import jax
  import jax.numpy as jnp

  from jaxland.landscape.problem import mean_metrics

  x, y = problem.splits['train']
  fn = jax.jit(jax.grad(lambda f: mean_metrics(problem.per_example, f, x, y, c.batch_size)['loss']))
  return np.asarray(fn(jnp.asarray(problem.flat)), np.float64)


def line_searches(problem: Problem, eig: eigen_lib.Eigen, c) -> dict:
  """Profiles along the top, bulk and bottom Ritz vectors; quadratic fits and functional forms."""
  x, y = problem.splits['train']
  grad = _gradient(problem, c)
  picks = eigen_lib.select(eig, c.num_bulk, c.num_bottom)
  rows, profiles = [], {}
  for group, indices in picks.items():
    for i in indices:
      v, lam = eig.vectors[i], float(eig.values[i])
      radius = _radius(c, lam)
      prof = lines.profile(
        problem.per_example,
        problem.flat,
        v,
        _grid(c, radius),
        x,
        y,
        batch_size=c.batch_size,
        t_chunk=c.t_chunk,
      )
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
  x, y = problem.splits['train']
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
      prof = lines.profile(
        problem.per_example,
        problem.flat,
        v,
        _grid(c, radius),
        x,
        y,
        batch_size=c.batch_size,
        t_chunk=c.t_chunk,
      )
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
          'corr_minimum_curvature': _corr(mins, curv),
          'fraction_convex': float(np.mean(curv > 0)),
        }
      )
  return {'rows': rows, 'arrays': arrays, 'summary': {}}


def _corr(a, b):
  ok = np.isfinite(a) & np.isfinite(b)
  if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
    return float('nan')
  return float(np.corrcoef(a[ok], b[ok])[0, 1])


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


def spectra_over_training(problem: Problem, eig: eigen_lib.Eigen, c, run_dir, steps) -> dict:
  """Top eigenpairs at num_spectra trajectory points (the last is the probed checkpoint):
  eigenvalues against step and overlaps with the final eigenvectors."""
  if len(steps) == 0:
    return {'rows': [], 'arrays': {}, 'summary': {'skipped': 'no trajectory saved'}}
  picks = np.unique(np.linspace(0, len(steps) - 1, c.num_spectra).round().astype(int))
  chosen = [steps[i] for i in picks if steps[i] != problem.step][: c.num_spectra - 1]
  eigs = {}
  for s in chosen:
    p = problem.with_params(load_trajectory_params(run_dir, s, problem.params), step=s)
    eigs[s] = eigen_lib.compute(
      p,
      num_top=c.num_top,
      num_steps=c.lanczos_steps,
      kind=c.kind,
      batch_size=c.batch_size,
      num_examples=c.curvature_examples,
      seed=c.seed,
    )
  eigs[problem.step] = eig
  order = sorted(eigs)
  rows, arrays = [], {}
  final = eig.top_vectors
  for s in order:
    e = eigs[s]
    o = dynamics.overlap(e.top_vectors, final)
    arrays[f'overlap_final_{s}'] = o
    arrays[f'values_{s}'] = e.top_values
    for j in range(e.num_top):
      rows.append(
        {
          'step': s,
          'index': j,
          'eigenvalue': float(e.top_values[j]),
          'max_overlap_final': float(dynamics.max_overlap(o)[j]),
        }
      )
  consecutive = {
    f'{a}->{b}': dynamics.subspace_overlap(eigs[a].top_vectors, eigs[b].top_vectors)
    for a, b in zip(order[:-1], order[1:], strict=True)
  }
  to_final = {s: dynamics.subspace_overlap(eigs[s].top_vectors, final) for s in order}
  random_level = eig.num_top / problem.dim
  summary = {
    'steps': order,
    'subspace_overlap_consecutive': consecutive,
    'subspace_overlap_to_final': to_final,
    'random_subspace_overlap': random_level,
    'top_eigenvalue_by_step': {s: float(eigs[s].top_values[0]) for s in order},
  }
  return {'rows': rows, 'arrays': arrays, 'summary': summary, 'eigs': eigs}


def trajectory(problem: Problem, eig: eigen_lib.Eigen, c, run_dir, steps, lr_at) -> dict:
  """The saved trajectory projected on the final eigenvectors; distance at init and settling."""
  if len(steps) < 3:
    return {'rows': [], 'arrays': {}, 'summary': {'skipped': 'fewer than 3 trajectory points'}}
  picks = eigen_lib.select(eig, c.num_bulk, 0)
  idx = picks['top'] + picks['bulk']
  vectors = eig.vectors[idx]
  thetas = []
  from jax.flatten_util import ravel_pytree

  for s in steps:
    params = load_trajectory_params(run_dir, s, problem.params)
    thetas.append(np.asarray(ravel_pytree(params)[0], np.float32))
  thetas = np.stack(thetas)
  proj = dynamics.project_trajectory(thetas, problem.flat, vectors)
  # Settling is judged on the constant-LR phase (up to the last point at >= half the peak LR):
  # after an LR drop every direction shrinks to a new, smaller band.
  lrs = np.array([lr_at(s) for s in steps])
  phase = np.flatnonzero(lrs >= 0.5 * lrs.max())
  end = int(phase[-1]) + 1 if phase.size >= 3 else len(steps)
  settle = dynamics.settle_steps(steps[:end], proj[:end], c.tail_fraction, c.settle_factor)
  tail = dynamics.settle_steps(steps, proj, c.tail_fraction, c.settle_factor)
  rows = []
  for n, i in enumerate(idx):
    rows.append(
      {
        'index': i,
        'group': 'top' if i < eig.num_top else 'bulk',
        'eigenvalue': float(eig.values[i]),
        'distance_init': float(settle['distance_init'][n]),
        'settle_step': int(settle['settle_step'][n]),
        'phase_tail_std': float(settle['tail_std'][n]),
        'tail_std': float(tail['tail_std'][n]),
        'tail_mean': float(tail['tail_mean'][n]),
      }
    )
  total = np.linalg.norm(thetas[0] - np.asarray(problem.flat))
  summary = {
    'settle_phase_end_step': int(steps[end - 1]),
    'distance_init_total': float(total),
    'lr_at_tail': lr_at(steps[-1]),
    'corr_log_eigenvalue_settle': _corr(
      np.log(np.abs([r['eigenvalue'] for r in rows])), np.array([r['settle_step'] for r in rows])
    ),
  }
  return {
    'rows': rows,
    'arrays': {'steps': np.asarray(steps), 'proj': proj, 'indices': np.asarray(idx)},
    'summary': summary,
  }


def grad_noise(problem: Problem, eig: eigen_lib.Eigen, c, batch_size, lr, momentum, traj) -> dict:
  """Variance of minibatch gradients along each direction against its eigenvalue, and the
  stationary position variance it predicts for heavy-ball SGD against the trajectory's tail."""
  x, y = problem.splits['train']
  picks = eigen_lib.select(eig, c.num_bulk, 0)
  idx = picks['top'] + picks['bulk']
  out = dynamics.minibatch_gradient_projections(
    problem.per_example,
    problem.flat,
    x,
    y,
    eig.vectors[idx],
    batch_size=batch_size,
    num_batches=c.grad_noise_batches,
    seed=c.seed + 5,
  )
  var = out['proj'].var(axis=0)
  lam = eig.values[idx]
  pred = dynamics.stationary_variance(lr, momentum, lam, var)
  tail = {r['index']: r['tail_std'] ** 2 for r in traj.get('rows', [])}
  rows = [
    {
      'index': i,
      'eigenvalue': float(lam[n]),
      'grad_var': float(var[n]),
      'grad_var_over_eigenvalue': float(var[n] / lam[n]) if lam[n] > 0 else float('nan'),
      'predicted_position_var': float(pred[n]),
      'tail_position_var': float(tail.get(i, np.nan)),
    }
    for n, i in enumerate(idx)
  ]
  summary = {
    'batch_size': batch_size,
    'lr': lr,
    'momentum': momentum,
    'corr_log_var_log_eigenvalue': _corr(np.log(var), np.log(np.abs(lam))),
    'mean_total_grad_sq_norm': float(out['sq_norm'].mean()),
  }
  return {
    'rows': rows,
    'arrays': {'proj': out['proj'], 'indices': np.asarray(idx)},
    'summary': summary,
  }


def per_example_decomposition(problem: Problem, eig: eigen_lib.Eigen, c) -> dict:
  """Per-example gradients on the eigenbasis (and two random directions as the baseline)."""
  x, y = problem.splits['train']
  n = c.per_example_examples or int(y.shape[0])
  x, y = x[:n], y[:n]
  picks = eigen_lib.select(eig, c.num_bulk, 0)
  idx = picks['top'] + picks['bulk']
  randoms = np.stack([lines.unit_gaussian(problem.dim, c.seed + 31 + r) for r in range(2)])
  vectors = np.concatenate([eig.vectors[idx], randoms])
  t0 = time.time()
  out = per_example.project(problem.per_example, problem.flat, x, y, vectors)
  seconds = time.time() - t0
  cos = per_example.cosines(out['proj'], out['norm'])
  pr = per_example.participation_ratio(out['proj'])
  share = per_example.top_share(out['proj'], 0.01)
  fisher = per_example.second_moment(out['proj'])
  names = [('top' if i < eig.num_top else 'bulk', i, float(eig.values[i])) for i in idx]
  names += [('random', r, float('nan')) for r in range(2)]
  rows = []
  for j, (group, i, lam) in enumerate(names):
    a = np.abs(cos[:, j])
    rows.append(
      {
        'group': group,
        'index': i,
        'eigenvalue': lam,
        'abs_cos_median': float(np.median(a)),
        'abs_cos_p90': float(np.quantile(a, 0.9)),
        'abs_cos_max': float(a.max()),
        'participation_ratio': float(pr[j]),
        'top1pct_share': float(share[j]),
        'fisher': float(fisher[j]),
      }
    )
  summary = {
    'num_examples': n,
    'seconds': seconds,
    'median_grad_norm': float(np.median(out['norm'])),
  }
  return {'rows': rows, 'arrays': {'abs_cos': np.abs(cos).astype(np.float32)}, 'summary': summary}
