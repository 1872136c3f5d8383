"""Curvature benchmark: what an HVP costs, and how few HVPs Lanczos needs for the top eigenvalues.

Run:  .venv/bin/python bench/curvature.py            (about 4-6 minutes on 2 CPU cores)
      .venv/bin/python bench/curvature.py --quick    (smaller, for a smoke run)

(a) Time of one Hessian-vector product (and one Gauss-Newton product) over a fixed set of batches,
    divided by the time of the gradient over the same batches (on a GPU at matmul precision
    'highest', the curvature default, and 'default' = TF32, with the products' relative error),
    each one jitted scan over the batches (fully unrolled on CPU, where XLA runs convolution
    gradients inside loops 10-30x slower, jax-ml/jax#12868), for ResNet-20 on CIFAR-shaped
    synthetic data and for the default MLP (784-100-10) on MNIST-shaped synthetic data;
    BatchNorm in eval mode.
(b) HVPs needed for the top-10 Hessian eigenvalues to 1e-3 relative error, for small relu MLPs
    on sklearn's digits (at init and after brief SGD), whose exact spectrum is known from the
    dense matrix: Lanczos with full reorthogonalisation (jaxland.curvature.lanczos) against power
    iteration with deflation as PyHessian implements it (`hessian.eigenvalues`, written out below).
(c) The same for the top-20 and top-40 of one of them.
(d) (--parts=d --run_dir=DIR) The same for the top-10 of a trained real-data run (its latest
    checkpoint, the first --num_examples training examples), against scipy's ARPACK as the oracle:
    e.g. the Fashion-MNIST MLP of results/spectrum (runs/spectrum_results/mlp).
All numbers are measured in this run and printed with the machine they ran on.
"""

import argparse
import functools
import time

import common  # bench/common.py: puts the repository on sys.path
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxland import curvature as cv
from jaxland.models import get_model

RTOL = 1e-3
TOP_N = 10


# ------------------------------------------------------------------------ (a) cost of one product


def product_cost(name, model, image_shape, batch_size, num_batches, calls, unroll, precisions):
  """Prints HVP / gradient and GGN / gradient time ratios on synthetic data, per matmul precision
  (the gradient computed at the same precision), and the HVP's error against the first one."""
  rng = np.random.default_rng(0)
  n = batch_size * num_batches
  data = {
    'image': rng.normal(size=(n, *image_shape)).astype(np.float32),
    'label': rng.integers(0, 10, n).astype(np.int32),
  }
  batches = jax.device_put(cv.stack_batches(data, batch_size))
  variables = jax.jit(model.init, static_argnames='train')(
    jax.random.key(0), jnp.asarray(data['image'][:2]), train=False
  )
  params, stats = variables['params'], variables.get('batch_stats', {})
  reference = None
  for precision in precisions:
    hv, times = _products_against_grad(model, params, stats, batches, precision, calls, unroll)
    reference = hv if reference is None else reference
    error = np.linalg.norm(hv - reference) / np.linalg.norm(reference)
    t_grad, t_hvp, t_ggn = times['grad'], times['hvp'], times['ggn']
    print(
      f'  {name:<9} {hv.size:>8,d} params, {num_batches} x {batch_size} examples, '
      f'precision {precision!r}: grad {t_grad * 1e3:7.2f} ms | HVP {t_hvp * 1e3:7.2f} ms = '
      f'{t_hvp / t_grad:.2f} x grad | GGN {t_ggn * 1e3:7.2f} ms = {t_ggn / t_grad:.2f} x grad'
      + (f' | HVP relative error vs {precisions[0]!r}: {error:.1e}' if error else '')
    )


def _products_against_grad(model, params, stats, batches, precision, calls, unroll):
  """(H v as float64 numpy, {'grad' | 'hvp' | 'ggn': median seconds}) at one matmul precision."""
  kw = dict(unroll=unroll, precision=precision)
  hvp = cv.model_operator(model, params, stats, batches, **kw)
  ggn = cv.model_operator(model, params, stats, batches, kind='ggn', **kw)
  loss_fn = cv.make_loss_fn(model, stats)
  v = jnp.asarray(np.random.default_rng(1).normal(size=hvp.dim), jnp.float32)

  def grad():
    with jax.default_matmul_precision(precision):
      return cv.dataset_loss_and_grad(loss_fn, params, batches, unroll=unroll)

  variants = {'grad': grad, 'hvp': lambda: hvp(v), 'ggn': lambda: ggn(v)}
  times = common.interleaved(variants, n=calls, rounds=5)
  return np.asarray(hvp(v), np.float64), times


# --------------------------------------------------------------- (b) HVPs for the top eigenvalues


def trained_digits_mlp(hidden, epochs):
  """An MLP trained with SGD + momentum on sklearn digits: (model, params, batches, accuracy)."""
  from sklearn.datasets import load_digits

  x, y = load_digits(return_X_y=True)
  x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
  y = y.astype(np.int32)
  perm = np.random.default_rng(0).permutation(len(y))
  train, test = perm[:1500], perm[1500:]
  model = get_model('mlp', hidden_sizes=hidden, num_classes=10)
  params = jax.jit(model.init, static_argnames='train')(
    jax.random.key(0), jnp.asarray(x[:2]), train=False
  )['params']
  tx = optax.sgd(0.1, momentum=0.9)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, xb, yb):
    def loss(p):
      logits = model.apply({'params': p}, xb, train=False)
      return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    grads = jax.grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  rng = np.random.default_rng(1)
  for _ in range(epochs):
    order = rng.permutation(train)
    for start in range(0, len(order) - 63, 64):
      idx = order[start : start + 64]
      params, opt_state = step(params, opt_state, x[idx], y[idx])
  logits = model.apply({'params': params}, x[test], train=False)
  acc = float(np.mean(np.argmax(logits, -1) == y[test]))
  batches = cv.stack_batches({'image': x[train], 'label': y[train]}, 256)
  return model, params, batches, acc


def lanczos_hvps(op, truth, max_steps, seed):
  """Fewest Lanczos steps m whose top Ritz values are all within RTOL of the truth (oracle), and
  fewest m whose residual bounds |beta_m s_mi| / |theta_i| are all below RTOL (no oracle).

  One run of max_steps: the m-step tridiagonal is the leading m x m block of the longer one.
  """
  top_n = len(truth)
  res = cv.lanczos(op.matvec, op.dim, max_steps, top_k=top_n, seed=seed, vectors=False)
  oracle = residual = None
  for m in range(top_n, max_steps + 1):
    values, s = cv.tridiag_eigh(res.alpha[:m], res.beta[:m])
    top = values[::-1][:top_n]
    bound = np.abs(res.beta[m - 1] * s[-1, ::-1][:top_n])
    if oracle is None and np.all(np.abs(top - truth) <= RTOL * np.abs(truth)):
      oracle = m
    if residual is None and np.all(bound <= RTOL * np.abs(top)):
      residual = m
    if oracle and residual:
      break
  return oracle, residual


@jax.jit
def _deflated_power_step(matvec, found, v):
  """PyHessian's step: orthonormalise v against the found vectors; Hv; v.Hv; Hv / |Hv|. Also the
  residual |Hv - (v.Hv) v|, which bounds the distance from v.Hv to an eigenvalue (Krylov-Weinstein,
  the certificate Lanczos' residual bounds give too)."""
  v = v - found.T @ (found @ v)  # rows of unused slots are zero
  v = v / jnp.linalg.norm(v)
  hv = matvec(v)
  rayleigh = jnp.vdot(hv, v)
  return rayleigh, hv / jnp.linalg.norm(hv), jnp.linalg.norm(hv - rayleigh * v)


def power_iteration(op, top_n, max_iter, seed, stop):
  """Power iteration with deflation (PyHessian `hessian.eigenvalues`): for each eigenvalue, start
  from a random unit vector and iterate until stop(i, previous, current, residual) or max_iter HVPs.

  Returns (eigenvalues, number of HVPs per eigenvalue).
  """
  rng = np.random.default_rng(seed)
  found = jnp.zeros((top_n, op.dim), jnp.float32)
  values, counts = [], []
  for i in range(top_n):
    v = jnp.asarray(rng.standard_normal(op.dim), jnp.float32)
    v = v / jnp.linalg.norm(v)
    value, count = None, 0
    for _ in range(max_iter):
      current, v, residual = _deflated_power_step(op.matvec, found, v)
      current, count = float(current), count + 1
      if value is not None and stop(i, value, current, float(residual)):
        value = current
        break
      value = current
    found = found.at[i].set(v)
    values.append(value)
    counts.append(count)
  return np.array(values), np.array(counts)


@functools.cache
def digits_problem(hidden, epochs):
  """The Hessian operator of a trained digits MLP and its exact spectrum (descending)."""
  model, params, batches, acc = trained_digits_mlp(hidden, epochs)
  op = cv.model_operator(model, params, {}, batches)
  n_real = int(batches['mask'].sum())
  name = '-'.join(str(w) for w in (64, *hidden, 10))
  print(
    f'  MLP {name} relu, {op.dim:,d} params, {epochs} epochs of SGD (lr 0.1, momentum 0.9, '
    f'batch 64), held-out accuracy {acc:.3f}; Hessian of the mean cross-entropy over the '
    f'{n_real} training examples (float32 HVPs)'
  )
  start = time.perf_counter()
  exact = cv.eigh(cv.dense_matrix(op.matvec, op.dim, jnp.float32))[0][::-1]
  print(
    f'    exact top-12 (dense matrix, {time.perf_counter() - start:.0f}s): '
    + ' '.join(f'{e:.4g}' for e in exact[:12])
  )
  return name, op, exact


def power_hvps(op, truth, max_iter, seed):
  """HVPs of power iteration + deflation stopped when each value is within RTOL of the truth."""
  values, counts = power_iteration(
    op,
    len(truth),
    max_iter,
    seed,
    lambda i, _, current, __: abs(current - truth[i]) <= RTOL * abs(truth[i]),
  )
  return int(counts.sum()), bool(np.all(np.abs(values - truth) <= RTOL * np.abs(truth)))


def certified_power_hvps(op, truth, max_iter, seed):
  """HVPs of power iteration + deflation stopped by its own certificate, residual <= RTOL |value|
  (no oracle, as Lanczos' residual-bound count); also whether all values then lie within RTOL."""
  values, counts = power_iteration(
    op, len(truth), max_iter, seed, lambda i, _, current, r: r <= RTOL * abs(current)
  )
  return int(counts.sum()), bool(np.all(np.abs(values - truth) <= RTOL * np.abs(truth)))


def hvps_for_top_eigenvalues(hidden, epochs, max_steps, max_power_iter, seeds=3):
  """Prints, for one trained MLP, the HVPs each method needs; returns a summary row."""
  name, op, exact = digits_problem(hidden, epochs)
  truth = exact[:TOP_N]

  def pyhessian_stop(i, previous, current, residual):
    return abs(previous - current) / (abs(previous) + 1e-6) < RTOL

  lanczos_oracle, lanczos_residual, power, pyhessian, pyhessian_err = [], [], [], [], []
  certified, power_converged, certified_ok = [], True, True
  for seed in range(seeds):
    m_oracle, m_residual = lanczos_hvps(op, truth, max_steps, seed)
    lanczos_oracle.append(m_oracle)
    lanczos_residual.append(m_residual)
    count, converged = power_hvps(op, truth, max_power_iter, seed)
    power.append(count)
    power_converged &= converged
    count, within = certified_power_hvps(op, truth, max_power_iter, seed)
    certified.append(count)
    certified_ok &= within
    values, counts = power_iteration(op, TOP_N, 100, seed, pyhessian_stop)
    pyhessian.append(int(counts.sum()))
    pyhessian_err.append(float(np.max(np.abs(values - truth) / np.abs(truth))))
  print(
    f'    Lanczos: {lanczos_oracle} HVPs (seeds 0..{seeds - 1}) until all top-{TOP_N} lie '
    f'within {RTOL:g} of the exact values; {lanczos_residual} until the residual bounds alone '
    f'certify {RTOL:g}'
  )
  print(
    f'    power iteration + deflation stopped at the exact values (its best case): {power} HVPs'
    + ('' if power_converged else f' (some hit the cap of {max_power_iter} per eigenvalue)')
  )
  print(
    f'    power iteration + deflation stopped by its residual certificate (no oracle): '
    f'{certified} HVPs' + ('' if certified_ok else ' (not all within RTOL of the exact values)')
  )
  print(
    f'    power iteration with PyHessian defaults (tol {RTOL:g} on the change, maxIter 100): '
    f'{pyhessian} HVPs, reaching max relative errors ' + ' '.join(f'{e:.1e}' for e in pyhessian_err)
  )
  return (
    name,
    epochs,
    (max(lanczos_oracle), max(lanczos_residual)),
    (np.mean(power), np.mean(certified)),
    power_converged,
  )


def hvp_counts_top10(quick):
  """(b): Lanczos against power iteration for the top-10 of four digits MLPs."""
  print(f'(b) HVPs for the top-{TOP_N} Hessian eigenvalues at {RTOL:g} relative error:')
  settings = [((32,), 0), ((32,), 3), ((32,), 10), ((32, 32), 10)]
  if quick:
    settings = settings[1:2]
  rows = [
    hvps_for_top_eigenvalues(hidden, epochs, 150, 500 if quick else 3000)
    for hidden, epochs in settings
  ]
  print(
    '  summary (Lanczos: worst of 3 seeds; power iteration: mean of 3 seeds). Oracle stop: each '
    'method stops once within RTOL of the exact values; certified: each stops by its own '
    'residual bound:'
  )
  for name, epochs, (lanczos_oracle, lanczos_residual), (power, certified), converged in rows:
    at_least = '' if converged else '>='  # power iteration hit its cap: its count is a floor
    print(
      f'    MLP {name:<11} {epochs:>2} epochs: oracle stop: Lanczos {lanczos_oracle:>3} vs power '
      f'{at_least}{power:.0f} HVPs = {at_least}{power / lanczos_oracle:.1f}x fewer; certified: '
      f'Lanczos {lanczos_residual} vs power {certified:.0f} = {certified / lanczos_residual:.1f}x'
    )


def hvp_counts_more():
  """(c): the same for the top-20 and top-40 of one trained digits MLP."""
  hidden, epochs = (32,), 10
  print(f'(c) more eigenvalues, same {RTOL:g} criterion, MLP 64-32-10 after {epochs} epochs:')
  name, op, exact = digits_problem(hidden, epochs)
  for top_n in (20, 40):
    truth = exact[:top_n]
    lanczos_needed = max(lanczos_hvps(op, truth, 300, seed)[0] for seed in range(3))
    power, converged = power_hvps(op, truth, 1000, 0)
    at_least = '' if converged else '>='
    print(
      f'    top-{top_n}: Lanczos {lanczos_needed} HVPs (worst of 3 seeds) vs power iteration '
      f'{at_least}{power} (seed 0, cap 1000 per eigenvalue): {at_least}'
      f'{power / lanczos_needed:.1f}x fewer'
    )


def trained_run_operator(run_dir, num_examples):
  """(label, Operator) of a jaxland run's latest checkpoint: the Hessian of its mean training loss
  over the first `num_examples` training examples (BatchNorm eval), as the spectrum task does."""
  from configs import default
  from jaxland import models, spectrum
  from jaxland.data import pipeline, sources
  from jaxland.rundir import artifacts
  from jaxland.spectrum import report, settings, task

  run_config = artifacts.load_config(run_dir)
  step = report.resolve_steps(run_dir, None, ())[0]
  dataset = sources.load_dataset(run_config.data)
  model = models.from_config(run_config.model, dataset.num_classes)
  _, init_stats = models.init_variables(model, dataset.train[0].shape[1:], 0)
  params, stats, _ = artifacts.load_step(run_dir, step, init_stats, 'eval')
  config = default.get_config()
  config.spectrum = spectrum.defaults()
  config.spectrum.num_examples = num_examples
  opts = settings.options(config)
  batches, n = task.example_batches(
    dataset, opts, run_config.data.batch_size, run_config.data.eval_batch_size, pipeline.make_mesh()
  )
  op = cv.model_operator(model, params, stats, batches, unroll=task._unroll(opts, batches))
  return f'{run_config.model.name} of {run_dir} at step {step}, {n} {dataset.name} examples', op


def arpack_top(op, k):
  """The top-k eigenvalues by scipy's ARPACK (implicitly restarted Lanczos, tol 1e-10): an
  independent oracle; returns (values descending, products used)."""
  from scipy.sparse.linalg import LinearOperator, eigsh

  calls = [0]

  def matvec(v):
    calls[0] += 1
    return np.asarray(op(jnp.asarray(np.ravel(v), jnp.float32)), np.float64)

  linear = LinearOperator((op.dim, op.dim), matvec=matvec, dtype=np.float64)
  values = eigsh(linear, k=k, which='LA', tol=1e-10, return_eigenvectors=False)
  return np.sort(values)[::-1], calls[0]


def hvp_counts_trained_run(run_dir, num_examples, max_power_iter):
  """(d): Lanczos against power iteration for the top-10 of a trained real-data model."""
  label, op = trained_run_operator(run_dir, num_examples)
  print(f'(d) HVPs for the top-{TOP_N} at {RTOL:g}: {label} ({op.dim:,d} params)', flush=True)
  start = time.perf_counter()
  truth, arpack_calls = arpack_top(op, TOP_N + 2)
  truth = truth[:TOP_N]
  print(
    f'    oracle: ARPACK top-{TOP_N + 2}, {arpack_calls} HVPs, {time.perf_counter() - start:.0f}s: '
    + ' '.join(f'{e:.5g}' for e in truth),
    flush=True,
  )
  found = [lanczos_hvps(op, truth, 200, seed) for seed in range(3)]
  print(
    f'    Lanczos: {[f[0] for f in found]} HVPs (seeds 0..2) until all top-{TOP_N} lie within '
    f'{RTOL:g} of the oracle; {[f[1] for f in found]} until the residual bounds certify it',
    flush=True,
  )
  power, converged = power_hvps(op, truth, max_power_iter, 0)
  at_least = '' if converged else '>='
  print(
    f'    power iteration + deflation stopped at the oracle values (its best case): '
    f'{at_least}{power} HVPs (seed 0, cap {max_power_iter} per eigenvalue)',
    flush=True,
  )
  certified, within = certified_power_hvps(op, truth, max_power_iter, 0)
  print(
    f'    power iteration + deflation stopped by its residual certificate: {certified} HVPs'
    + ('' if within else ' (not all within RTOL of the oracle)'),
    flush=True,
  )
  worst, worst_certified = max(f[0] for f in found), max(f[1] for f in found)
  print(
    f'    => oracle stop: {at_least}{power / worst:.1f}x fewer HVPs with Lanczos (worst seed); '
    f'certified: {certified / worst_certified:.1f}x'
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help='smaller sizes, for a smoke run')
  parser.add_argument('--parts', default='a,b,c', help='which of the parts (a), (b), (c) to run')
  parser.add_argument('--unroll', default='auto', choices=('auto', 'full', 'none'), help='(a)')
  parser.add_argument('--models', default='resnet20,mlp', help='(a): resnet20 and / or mlp')
  parser.add_argument('--run_dir', default='', help='(d): a trained jaxland run directory')
  parser.add_argument('--num_examples', type=int, default=1000, help='(d): training examples')
  parser.add_argument('--max_power_iter', type=int, default=1000, help='(d): cap per eigenvalue')
  args = parser.parse_args()
  parts = args.parts.split(',')
  print(f'{common.machine()}; float32 products')
  # On CPU, XLA runs convolution gradients inside a while loop 10-30x slower (jax-ml/jax#12868),
  # so there the scan over batches is unrolled, for the gradient and the products alike.
  on_cpu = jax.default_backend() == 'cpu'
  unroll = {'auto': True if on_cpu else 1, 'full': True, 'none': 1}[args.unroll]
  models = args.models.split(',')
  if 'a' in parts:
    print(
      '(a) product time / gradient time over the same batches (median of 5 interleaved rounds; '
      f'scan over batches {"fully unrolled" if unroll is True else "not unrolled"}):'
    )
    batch, num_batches, calls = (8 if args.quick else 32, 2, 1) if on_cpu else (128, 8, 20)
    # CPUs compute float32 matmuls in full at any precision; GPUs use TF32 unless 'highest'.
    precisions = ('highest',) if on_cpu else ('highest', 'default')
    if 'resnet20' in models:
      resnet = get_model('resnet20')
      product_cost('resnet20', resnet, (32, 32, 3), batch, num_batches, calls, unroll, precisions)
    if 'mlp' in models:
      mlp_calls = 10 if on_cpu else 100
      product_cost('mlp', get_model('mlp'), (28, 28, 1), 128, 8, mlp_calls, unroll, precisions)
  if 'b' in parts:
    hvp_counts_top10(args.quick)
  if 'c' in parts and not args.quick:
    hvp_counts_more()
  if 'd' in parts:
    if not args.run_dir:
      raise SystemExit('part (d) needs --run_dir (e.g. runs/spectrum_results/mlp)')
    hvp_counts_trained_run(args.run_dir, args.num_examples, args.max_power_iter)


if __name__ == '__main__':
  main()
