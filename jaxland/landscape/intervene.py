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

import copy
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxland import checkpoints, metrics
from jaxland import workdir as workdir_lib
from jaxland.data import pipeline
from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape import intervene_figures, lines, per_example
from jaxland.landscape import interventions as iv
from jaxland.landscape.problem import (
  Problem,
  ensure_trained,
  evaluate,
  load_problem,
  load_trajectory_params,
  predict,
  resolve_run,
  training_config,
)
from jaxland.landscape.task import _jsonable, lr_function, out_dir, top_eigen, write_csv

EXPERIMENTS = ('snap', 'noise', 'precond', 'batch1', 'hmc', 'lr')


def validate(c) -> None:
  """ValueError for a bad config.intervene setting."""
  bad = [e for e in c.experiments if e not in EXPERIMENTS]
  if bad:
    raise ValueError(f'config.intervene.experiments has {bad}; choose from {EXPERIMENTS}')
  bad = [b for b in c.noise_bands if b not in iv.BANDS]
  if bad:
    raise ValueError(f'config.intervene.noise_bands has {bad}; choose from {iv.BANDS}')
  if any(level < 0 for level in c.noise_levels):
    raise ValueError(f'config.intervene.noise_levels={c.noise_levels} must be >= 0')
  if not 0 < c.lr_anneal_fraction < 1:
    raise ValueError(f'config.intervene.lr_anneal_fraction={c.lr_anneal_fraction}: need (0, 1)')


def _grad(problem: Problem, batch_size: int = 1000) -> np.ndarray:
  from jaxland.landscape.problem import mean_metrics

  x, y = problem.splits['train']
  fn = jax.jit(jax.grad(lambda f: mean_metrics(problem.per_example, f, x, y, batch_size)['loss']))
  return np.asarray(fn(problem.flat), np.float64)


def _metrics(problem: Problem, flat, splits=('train', 'test')) -> dict:
  out = {}
  for split in splits:
    if split in problem.splits:
      out |= {f'{split}_{k}': v for k, v in evaluate(problem, split, flat).items()}
  return out


# ------------------------------------------------------------------------------------------ snap


def snap_experiment(problem: Problem, eig, c, lc, run_dir, out) -> dict:
  """Train / test metrics after snapping the directions above each top eigenvalue."""
  rows = []
  for s in c.snap_steps:
    if s < 0:
      p, e = problem, eig
    else:
      p = problem.with_params(load_trajectory_params(run_dir, s, problem.params), step=s)
      e = top_eigen(p, lc, out, trace_probes=0)
    grad = _grad(p, lc.batch_size)
    base = _metrics(p, p.flat)
    thresholds = [np.inf] + [float(v) for v in e.top_values if v > 0]
    for n, thr in enumerate(thresholds):
      flat = iv.snap(p.flat, grad, e.top_values, e.top_vectors, thr)
      row = {'step': p.step, 'num_snapped': n, 'threshold': thr}
      row['predicted_train_loss'] = base['train_loss'] - iv.snap_predicted_decrease(
        grad, e.top_values, e.top_vectors, thr
      )
      rows.append(row | _metrics(p, jnp.asarray(flat, jnp.float32)))
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


# ---------------------------------------------------------------------------------- continuation


def _continuation_config(config, lr, batch_size, epochs):
  cfg = training_config(config)
  cfg.optim.learning_rate = float(lr)
  cfg.optim.schedule.name = 'constant'
  cfg.data.batch_size = int(batch_size)
  cfg.train.num_epochs = int(epochs)
  cfg.train.max_steps = 0
  return cfg


def continue_training(
  config,
  problem: Problem,
  flat,
  *,
  lr,
  batch_size,
  epochs=1,
  max_steps=0,
  extra_tx=None,
  snapshots=0,
  track=None,
  epoch_offset=0,
  runs=None,
) -> dict:
  """Trains on from `flat` with the run's optimizer at constant `lr` (plus `extra_tx` chained
  after it), using the loop's own jitted step; the batch order continues the run's (its data
  seed, epochs epoch_offset, epoch_offset + 1, ...). Returns the final flat params, test metrics
  per epoch, the logits of `snapshots` evenly spaced iterates on test, and, for `track` [k, P],
  the projections of every iterate on its rows. `runs` caches the built runs by batch size."""
  from jaxland.optim import build
  from jaxland.train import loop

  cfg = _continuation_config(config, lr, batch_size, epochs)
  runs = {} if runs is None else runs
  if batch_size not in runs:  # Data on device and eval functions are reused across calls.
    devices = jax.devices()
    mesh = pipeline.make_mesh(devices if batch_size % len(devices) == 0 else devices[:1])
    runs[batch_size] = loop.build_run(cfg, '', writer=None, mesh=mesh)
  run = runs[batch_size]
  mesh = run.mesh
  run.tx = build.make_optimizer(cfg, run.steps_per_epoch, run.steps_per_epoch * epochs)
  if extra_tx is not None:
    run.tx = optax.chain(run.tx, extra_tx)
  params = problem.unravel(jnp.asarray(flat, jnp.float32))
  rep = pipeline.replicated(mesh)
  state = run.state.replace(
    step=jnp.zeros((), jnp.int32), params=params, batch_stats=problem.batch_stats
  )
  state = state.replace(opt_state=run.tx.init(state.params))
  run.state = pipeline.put_global(state, rep)
  step_fn = loop.make_train_step(run)
  images, labels = run.device_data['train']
  n, spe = len(run.dataset.train[1]), run.steps_per_epoch
  total = spe * epochs if not max_steps else min(max_steps, spe * epochs)
  data_seed = cfg.seed if cfg.data_seed < 0 else cfg.data_seed
  snap_at = set(np.linspace(total / max(snapshots, 1), total, snapshots).round().astype(int))
  vectors = None if track is None else jax.device_put(jnp.asarray(track, jnp.float32), rep)
  project = jax.jit(lambda p, v: v @ ravel_pytree(p)[0])
  tracked, snaps, per_epoch, step = [], [], [], 0
  while step < total:
    epoch = step // spe
    idx = pipeline.epoch_batches(data_seed, epoch_offset + epoch, n, batch_size)
    for _ in range(min(spe, total - step)):
      run.state, _ = step_fn(run.state, images, labels, idx)
      step += 1
      if vectors is not None:
        tracked.append(project(run.state.params, vectors))
      if step in snap_at:
        snaps.append(run.predict('test', run.state.params, run.state.batch_stats))
    per_epoch.append({'step': step, **run.evaluate('test')})
  final = np.asarray(ravel_pytree(jax.device_get(run.state.params))[0], np.float32)
  out = {'flat': final, 'per_epoch': per_epoch, 'steps': step, 'snapshot_logits': snaps}
  if vectors is not None:
    out['tracked'] = np.asarray(jax.device_get(tracked), np.float64)
  return out


def _num_train(problem: Problem) -> int:
  return int(problem.splits['train'][1].shape[0])


def precond_experiment(config, problem: Problem, eig, c, lc, runs=None) -> dict:
  """Plain SGD vs Bayesian eigen-LRs in the top-k subspace, from the checkpoint, c.epochs each."""
  x, y = problem.splits['train']
  n_pe = lc.per_example_examples or int(y.shape[0])
  top = eig.top_vectors
  pe = per_example.project(problem.per_example, problem.flat, x[:n_pe], y[:n_pe], top)
  noise = pe['proj'].var(axis=0)  # Per-example gradient variance C_j along u_j.
  lr = c.learning_rate or config.optim.learning_rate
  momentum = float(config.optim.momentum)
  b, n = config.data.batch_size, _num_train(problem)
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
    row = {'variant': name, 'lr': lr, **_metrics(problem, jnp.asarray(res['flat']))}
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
  n = c.batch1_examples or _num_train(problem)
  labels = np.asarray(problem.splits['test'][1])
  rows = [{'variant': 'start', **_metrics(problem, problem.flat)}]
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
        **_metrics(problem, jnp.asarray(res['flat'])),
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
  from jaxland.landscape.problem import mean_metrics

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
  start = _metrics(problem, problem.flat, ('test',))
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


# -------------------------------------------------------------------------------------------- lr


def lr_run_config(config, lr, c):
  """The run at LR `lr`: same init, data order and length, annealed to c.lr_final at the end."""
  cfg = training_config(config)
  from jaxland import data as data_lib

  n = len(data_lib.load_dataset(cfg.data).train[1])
  total = (n // cfg.data.batch_size) * cfg.train.num_epochs
  cfg.optim.learning_rate = float(lr)
  cfg.optim.schedule.name = 'piecewise'
  cfg.optim.schedule.boundaries_steps = (int(round((1 - c.lr_anneal_fraction) * total)),)
  cfg.optim.schedule.scales = (c.lr_final / float(lr),)
  cfg.train.trajectory_every_steps = 0
  cfg.train.save_batch_order = False
  return cfg


def lr_experiment(config, c, lc, out) -> dict:
  """Final train loss and the per-direction excess loss of runs at each LR of c.lr_values."""
  rows, direction_rows, curves = [], [], {}
  for lr in c.lr_values:
    cfg = lr_run_config(config, lr, c)
    run_dir = ensure_trained(cfg, os.path.join(out, 'lr_runs', f'lr_{lr:g}'))
    recs = metrics.read_jsonl(run_dir)
    curves[f'{lr:g}'] = metrics.series(recs, 'train/loss')
    p = load_problem(cfg, run_dir)
    e = eigen_lib.compute(
      p,
      num_top=lc.num_top,
      num_steps=lc.lanczos_steps,
      kind=lc.kind,
      batch_size=lc.batch_size,
      num_examples=lc.curvature_examples,
      seed=lc.seed,
    )
    grad = _grad(p, lc.batch_size)
    x, y = p.splits['train']
    base = _metrics(p, p.flat)
    a = e.top_vectors @ grad
    excess = []
    for j in range(e.num_top):
      radius = lines.eigen_radius(
        e.top_values[j], lc.line_rise, lc.line_min_radius, lc.line_max_radius
      )
      prof = lines.profile(
        p.per_example,
        p.flat,
        e.top_vectors[j],
        lines.symmetric_geometric_grid(radius, lc.line_points, lc.line_min_frac),
        x,
        y,
        batch_size=lc.batch_size,
        t_chunk=lc.t_chunk,
      )
      excess.append(base['train_loss'] - float(prof['loss'].min()))
      direction_rows.append(
        {'lr': lr, 'index': j, 'eigenvalue': float(e.top_values[j]), 'excess_loss': excess[-1]}
      )
    g_perp = grad - a @ e.top_vectors
    v = -g_perp / max(np.linalg.norm(g_perp), 1e-30)
    prof = lines.profile(
      p.per_example,
      p.flat,
      v,
      np.linspace(0, lc.line_max_radius, lc.line_points),
      x,
      y,
      batch_size=lc.batch_size,
      t_chunk=lc.t_chunk,
    )
    rows.append(
      {
        'lr': lr,
        **base,
        'grad_norm': float(np.linalg.norm(grad)),
        'grad_fraction_top': float(a @ a / max(grad @ grad, 1e-30)),
        'top_eigenvalue': float(e.top_values[0]),
        'excess_top_sum': float(np.sum(excess)),
        'newton_decrement_top': iv.snap_predicted_decrease(grad, e.top_values, e.top_vectors, 0.0),
        'excess_bulk_gradient_line': base['train_loss'] - float(prof['loss'].min()),
      }
    )
  summary = {'runs': rows, 'lr_final': c.lr_final, 'anneal_fraction': c.lr_anneal_fraction}
  return {'rows': rows, 'direction_rows': direction_rows, 'curves': curves, 'summary': summary}


# ------------------------------------------------------------------------------------------ task


def run_task(config, workdir: str) -> dict:
  """Runs the experiments of config.intervene (module doc); returns the summary."""
  c, lc = config.intervene, config.landscape
  validate(c)
  ref = resolve_run(config, workdir)
  run_dir, _ = checkpoints.parse_checkpoint_ref(ref)
  out = out_dir(config, workdir, 'intervene')
  workdir_lib.write_status(out, 'running')
  t_start = time.time()
  problem = load_problem(config, ref)
  eig = top_eigen(problem, lc, out)
  summary = {'checkpoint': ref, 'step': problem.step, 'start': _metrics(problem, problem.flat)}
  summary['top_eigenvalues'] = eig.top_values.tolist()
  summary['lr_at_checkpoint'] = lr_function(config, run_dir)(problem.step)
  results, times, runs = {}, {}, {}
  jobs = {
    'snap': lambda: snap_experiment(problem, eig, c, lc, run_dir, out),
    'noise': lambda: noise_experiment(problem, eig, c),
    'precond': lambda: precond_experiment(config, problem, eig, c, lc, runs),
    'batch1': lambda: batch1_experiment(config, problem, c, runs),
    'hmc': lambda: hmc_experiment(problem, eig, c, lc.batch_size),
    'lr': lambda: lr_experiment(config, c, lc, out),
  }
  for name in c.experiments:
    t0 = time.time()
    results[name] = jobs[name]()
    times[name] = time.time() - t0
    print(f'[jaxland] intervene/{name}: {times[name]:.1f}s', flush=True)
    if results[name]['rows']:
      write_csv(os.path.join(out, f'{name}.csv'), results[name]['rows'])
    if results[name].get('direction_rows'):
      write_csv(os.path.join(out, f'{name}_directions.csv'), results[name]['direction_rows'])
    summary[name] = results[name]['summary']
  summary['figures'] = intervene_figures.all_figures(results, out)
  summary['seconds'] = times
  summary['status'] = 'done'
  workdir_lib.write_json(out, 'summary.json', _jsonable(copy.deepcopy(summary)))
  workdir_lib.write_status(out, 'done')
  print(f'[jaxland] intervene done in {time.time() - t_start:.0f}s; results in {out}', flush=True)
  return {'status': 'done', 'out_dir': out, 'seconds': time.time() - t_start}
