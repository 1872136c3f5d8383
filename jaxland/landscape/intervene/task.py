"""Task `intervene`: seed 004's interventions in the eigenbasis of a trained checkpoint.

Experiments (config.intervene.experiments):
  snap     move to the quadratic model's minimum along every eigendirection above a threshold
  noise    noise in eigen-bands (interventions.BANDS); its level picked on the validation split
  precond  continue training with Bayesian per-direction LRs in the top-k (eigen_scale) vs plain
           SGD, same start and batch order; per-direction variance of the iterates vs posterior
  batch1   a last epoch at batch size 1 and a tiny LR (vs the same epoch at the run's batch size)
  hmc      a short full-batch HMC run from the checkpoint (BlackJAX, optional)
  lr       runs at several LRs from the same init and batch order, annealed to one final LR
Continuations drive the training loop's own jitted step (loop.build_run + loop.make_train_step)
with the optimizer swapped; nothing here is a second training loop. The run is resolved as in
the `landscape` task; the curvature settings are config.landscape's. Outputs: <workdir>/intervene/.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxland.landscape import per_example, task
from jaxland.landscape.intervene import figures
from jaxland.landscape.intervene import interventions as iv
from jaxland.landscape.intervene.continuation import continue_training
from jaxland.landscape.intervene.lr_anneal import lr_experiment
from jaxland.landscape.problem import Problem, mean_metrics, predict, split_metrics, train_gradient
from jaxland.landscape.task import lr_function, top_eigen, write_csv
from jaxland.output.progress import Progress
from jaxland.rundir import artifacts

# ------------------------------------------------------------------------------------------ snap


def snap_points(snap_steps, run_dir: str, lr_at) -> list[int]:
  """snap_steps with -2 resolved: the last trajectory step whose updates all ran at the peak LR
  (the LR the schedule reaches at its highest over the trajectory)."""
  saved = artifacts.trajectory_steps(run_dir)
  peak = max(lr_at(max(s - 1, 0)) for s in saved) if saved else None
  at_peak = [s for s in saved if s == 0 or lr_at(s - 1) == peak]
  if -2 in snap_steps and not at_peak:
    raise ValueError(f'config.intervene.snap_steps = -2 needs trajectory files in {run_dir}')
  return [at_peak[-1] if s == -2 else s for s in snap_steps]


def snap_experiment(problem: Problem, eig, c, lc, run_dir, out, lr_at) -> dict:
  """Train / test metrics after snapping the directions above each top eigenvalue."""
  rows = []
  for s in snap_points(c.snap_steps, run_dir, lr_at):
    if s < 0:
      p, e = problem, eig
    else:
      p = problem.with_params(artifacts.load_trajectory(run_dir, s, problem.params), step=s)
      e = top_eigen(p, lc, out, trace_probes=0)
    grad = train_gradient(p, lc.batch_size)
    base = split_metrics(p, p.flat)
    thresholds = [np.inf] + [float(v) for v in e.top_values if v > 0]
    for n, thr in enumerate(thresholds):
      flat = iv.snap(p.flat, grad, e.top_values, e.top_vectors, thr)
      row = {'step': p.step, 'num_snapped': n, 'threshold': thr}
      row['predicted_train_loss'] = base['train_loss'] - iv.snap_predicted_decrease(
        grad, e.top_values, e.top_vectors, thr
      )
      rows.append(row | split_metrics(p, jnp.asarray(flat, jnp.float32)))
  summary = {}
  for s in sorted({r['step'] for r in rows}):
    sel = [r for r in rows if r['step'] == s]
    summary[f'step_{s}'] = {
      'before': {k: sel[0][k] for k in sel[0] if k.startswith(('train_', 'test_'))},
      'all_top_snapped': {k: sel[-1][k] for k in sel[-1] if k.startswith(('train_', 'test_'))},
      'best_test_accuracy': max(r['test_accuracy'] for r in sel),
    }
  return {'rows': rows, 'summary': summary}


# ----------------------------------------------------------------------------------------- noise


def noise_experiment(problem: Problem, eig, c) -> dict:
  """Noise in each band at each level: single draws and their ensemble on val and test."""
  rng = np.random.default_rng(c.seed)
  labels = {s: np.asarray(problem.splits[s][1]) for s in ('val', 'test') if s in problem.splits}
  if 'val' not in labels:
    raise ValueError('the noise experiment picks its level on val: set config.data.val_size > 0')
  theta = np.asarray(problem.flat, np.float64)
  rows = []
  for band in c.noise_bands:
    for level in c.noise_levels:
      draws = 1 if level == 0 else c.noise_samples
      logits = {s: [] for s in labels}
      for _ in range(draws):
        noise = iv.band_noise(rng, band, level, eig.top_values, eig.top_vectors)
        flat = jnp.asarray(theta + noise, jnp.float32)
        for s in labels:
          logits[s].append(predict(problem, s, flat))
      row = {'band': band, 'level': float(level), 'draws': draws}
      for s in labels:
        row |= {f'{s}_{k}': v for k, v in iv.ensemble_metrics(logits[s], labels[s]).items()}
      rows.append(row)
  summary = {}
  for band in c.noise_bands:
    sel = [r for r in rows if r['band'] == band]
    base = next(r for r in sel if r['level'] == 0) if any(r['level'] == 0 for r in sel) else None
    for key in ('ensemble', 'member'):
      best = max(sel, key=lambda r: (r[f'val_{key}_accuracy'], -r[f'val_{key}_loss']))
      entry = {
        'level': best['level'],
        'val_accuracy': best[f'val_{key}_accuracy'],
        'test_accuracy': best[f'test_{key}_accuracy'],
        'test_loss': best[f'test_{key}_loss'],
      }
      if base is not None:
        entry['test_accuracy_change'] = entry['test_accuracy'] - base['test_member_accuracy']
        entry['test_loss_change'] = entry['test_loss'] - base['test_member_loss']
      summary[f'{band}/{key}'] = entry
  return {'rows': rows, 'summary': summary}


def precond_experiment(config, problem: Problem, eig, c, lc, runs=None) -> dict:
  """Plain SGD vs Bayesian eigen-LRs in the top-k subspace, from the checkpoint, c.epochs each."""
  x, y = problem.splits['train']
  n_pe = lc.per_example_examples or int(y.shape[0])
  top = eig.top_vectors
  pe = per_example.project(problem.per_example, problem.flat, x[:n_pe], y[:n_pe], top)
  noise = pe['proj'].var(axis=0)  # Per-example gradient variance C_j along u_j.
  lr = c.learning_rate or config.optim.learning_rate
  momentum = float(config.optim.momentum)
  b, n = config.data.batch_size, problem.num_train
  labels = np.asarray(problem.splits['test'][1])
  variants = {'plain': None}
  for t in c.temperatures:
    variants[f'bayes_T{t:g}'] = iv.bayes_scales(noise, lr, momentum, b, n, t, c.max_scale)
  variants['bayes_hessian_T1'] = iv.bayes_scales(
    eig.top_values, lr, momentum, b, n, 1.0, c.max_scale
  )
  rows, curves, tracked = [], {}, {}
  epoch_offset = int(config.train.num_epochs)
  for name, scales in variants.items():
    extra = None if scales is None else iv.eigen_scale(top, scales)
    res = continue_training(
      config,
      problem,
      problem.flat,
      lr=lr,
      batch_size=b,
      epochs=c.epochs,
      extra_tx=extra,
      snapshots=c.epochs * 4,
      track=top,
      epoch_offset=epoch_offset,
      runs=runs,
    )
    ens = iv.ensemble_metrics(res['snapshot_logits'], labels)
    spe = res['steps'] // c.epochs
    var = res['tracked'][-spe:].var(axis=0)  # Last epoch's per-direction variance of iterates.
    tracked[name] = var
    curves[name] = res['per_epoch']
    row = {'variant': name, 'lr': lr, **split_metrics(problem, jnp.asarray(res['flat']))}
    row |= {'snapshot_ensemble_accuracy': ens['ensemble_accuracy']}
    row |= {'snapshot_ensemble_loss': ens['ensemble_loss']}
    if scales is not None:
      row |= {'min_scale': float(np.min(scales)), 'max_scale': float(np.max(scales))}
    rows.append(row)
  posterior_var = 1.0 / (n * np.maximum(eig.top_values, 1e-30))
  lam_star = iv.bayes_eigenvalue(lr, momentum, b, n)
  direction_rows = [
    {
      'index': j,
      'eigenvalue': float(eig.top_values[j]),
      'per_example_grad_var': float(noise[j]),
      'posterior_var_T1': float(posterior_var[j]),
      **{f'iterate_var_{k}': float(v[j]) for k, v in tracked.items()},
    }
    for j in range(eig.num_top)
  ]
  summary = {'lambda_star': lam_star, 'lr': lr, 'epochs': c.epochs, 'variants': rows}
  return {'rows': rows, 'direction_rows': direction_rows, 'curves': curves, 'summary': summary}


def batch1_experiment(config, problem: Problem, c, runs=None) -> dict:
  """One more epoch at batch size 1 and LR c.batch1_lr, vs the same epoch at the run's batch."""
  n = c.batch1_examples or problem.num_train
  labels = np.asarray(problem.splits['test'][1])
  rows = [{'variant': 'start', **split_metrics(problem, problem.flat)}]
  epoch_offset = int(config.train.num_epochs)
  for name, b in (('batch1', 1), (f'batch{config.data.batch_size}', config.data.batch_size)):
    steps = max(1, n // b)
    res = continue_training(
      config,
      problem,
      problem.flat,
      lr=c.batch1_lr,
      batch_size=b,
      max_steps=steps,
      snapshots=10,
      epoch_offset=epoch_offset,
      runs=runs,
    )
    ens = iv.ensemble_metrics(res['snapshot_logits'], labels)
    rows.append(
      {
        'variant': name,
        'steps': res['steps'],
        'lr': c.batch1_lr,
        **split_metrics(problem, jnp.asarray(res['flat'])),
        'snapshot_ensemble_accuracy': ens['ensemble_accuracy'],
        'snapshot_ensemble_loss': ens['ensemble_loss'],
        'distance_moved': float(np.linalg.norm(res['flat'] - np.asarray(problem.flat))),
      }
    )
  return {'rows': rows, 'summary': {r['variant']: r for r in rows}}


# ------------------------------------------------------------------------------------------- hmc


def hmc_experiment(problem: Problem, eig, c, batch_size=1000) -> dict:
  """Full-batch HMC on exp(-N L(theta)) N(theta; 0, prior_std^2) from the checkpoint (BlackJAX)."""
  try:
    import blackjax
  except ImportError:
    msg = 'skipped: blackjax is not installed (optional dependency: pip install blackjax)'
    print(f'[jaxland] intervene/hmc {msg}', flush=True)
    return {'rows': [], 'summary': {'status': msg}}

  x, y = problem.splits['train']
  n = int(y.shape[0])

  def logdensity(flat):
    loss = mean_metrics(problem.per_example, flat, x, y, batch_size)['loss']
    return -n * loss - 0.5 * jnp.sum(flat**2) / c.hmc_prior_std**2

  step_size = c.hmc_step_scale / np.sqrt(n * max(float(eig.values[0]), 1e-6))
  hmc = blackjax.hmc(
    logdensity,
    step_size=step_size,
    inverse_mass_matrix=jnp.ones(problem.dim),
    num_integration_steps=c.hmc_leapfrog,
  )
  step = jax.jit(hmc.step)
  state = hmc.init(problem.flat)
  key = jax.random.key(c.seed)
  labels = np.asarray(problem.splits['test'][1])
  logits, accept = [], []
  for i in range(c.hmc_burnin + c.hmc_samples):
    state, info = step(jax.random.fold_in(key, i), state)
    if i >= c.hmc_burnin:
      accept.append(float(info.acceptance_rate))
      logits.append(predict(problem, 'test', state.position))
  ens = iv.ensemble_metrics(logits, labels)
  start = split_metrics(problem, problem.flat, ('test',))
  row = {
    'step_size': float(step_size),
    'leapfrog': c.hmc_leapfrog,
    'samples': c.hmc_samples,
    'acceptance': float(np.mean(accept)),
    'distance_moved': float(np.linalg.norm(np.asarray(state.position) - np.asarray(problem.flat))),
    'start_test_accuracy': start['test_accuracy'],
    'start_test_loss': start['test_loss'],
    **{f'hmc_{k}': v for k, v in ens.items()},
  }
  return {'rows': [row], 'summary': row}


# ------------------------------------------------------------------------------------------ task


def record_dir(config, workdir: str) -> str:
  return task.out_dir(config, workdir, 'intervene')


def run(config, workdir: str) -> dict:
  """Runs the experiments of config.intervene (module doc); returns the summary."""
  c, lc = config.intervene, config.landscape
  s = task.start(config, workdir, 'intervene')
  ref, run_dir, out, problem, eig = s.ref, s.run_dir, s.out, s.problem, s.eig
  summary = {'checkpoint': ref, 'step': problem.step, 'start': split_metrics(problem, problem.flat)}
  summary['top_eigenvalues'] = eig.top_values.tolist()
  lr_at = lr_function(config, problem)
  summary['lr_at_checkpoint'] = lr_at(problem.step)
  results, times, runs = {}, {}, {}
  jobs = {
    'snap': lambda: snap_experiment(problem, eig, c, lc, run_dir, out, lr_at),
    'noise': lambda: noise_experiment(problem, eig, c),
    'precond': lambda: precond_experiment(config, problem, eig, c, lc, runs),
    'batch1': lambda: batch1_experiment(config, problem, c, runs),
    'hmc': lambda: hmc_experiment(problem, eig, c, lc.batch_size),
    'lr': lambda: lr_experiment(config, c, lc, out, problem.num_train),
  }
  progress = Progress('intervene experiment', len(c.experiments))
  for name in c.experiments:
    t0 = time.time()
    results[name] = jobs[name]()
    times[name] = time.time() - t0
    progress.tick(name)
    if results[name]['rows']:
      write_csv(os.path.join(out, f'{name}.csv'), results[name]['rows'])
    if results[name].get('direction_rows'):
      write_csv(os.path.join(out, f'{name}_directions.csv'), results[name]['direction_rows'])
    summary[name] = results[name]['summary']
  summary['figures'] = figures.all_figures(results, out)
  summary['seconds'] = times
  return task.finish('intervene', out, summary, s.t_start)
