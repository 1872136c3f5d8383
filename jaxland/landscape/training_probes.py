"""The `landscape` task's probes along the run: spectra over training, the trajectory in the
eigenbasis, minibatch gradient noise, per-example gradients. Same contract as probes.py: each
returns a dict with 'rows', 'arrays' and 'summary'; settings come from config.landscape (`c`).
"""

import time

import numpy as np
from jax.flatten_util import ravel_pytree

from jaxland.landscape import dynamics, fits, lines, per_example
from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape.problem import Problem
from jaxland.rundir import artifacts


def spectra_over_training(problem: Problem, eig: eigen_lib.Eigen, c, run_dir, steps) -> dict:
  """Top eigenpairs at num_spectra trajectory points (the last is the probed checkpoint):
  eigenvalues against step and overlaps with the final eigenvectors."""
  if len(steps) == 0:
    return {'rows': [], 'arrays': {}, 'summary': {'skipped': 'no trajectory saved'}}
  picks = np.unique(np.linspace(0, len(steps) - 1, c.num_spectra).round().astype(int))
  chosen = [steps[i] for i in picks if steps[i] != problem.step][: c.num_spectra - 1]
  eigs = {}
  for s in chosen:
    p = problem.with_params(artifacts.load_trajectory(run_dir, s, problem.params), step=s)
    eigs[s] = eigen_lib.compute_from(p, c)
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
  for s in steps:
    params = artifacts.load_trajectory(run_dir, s, problem.params)
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
    'corr_log_eigenvalue_settle': fits.correlation(
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
    'corr_log_var_log_eigenvalue': fits.correlation(np.log(var), np.log(np.abs(lam))),
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
