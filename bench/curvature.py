"""Curvature benchmark: what an HVP costs, and how few HVPs Lanczos needs for the top eigenvalues.

Run:  .venv/bin/python bench/curvature.py            (about 4-6 minutes on 2 CPU cores)
      .venv/bin/python bench/curvature.py --quick    (smaller, for a smoke run)

(a) Time of one Hessian-vector product (and one Gauss-Newton product) over a fixed set of batches,
    divided by the time of the gradient over the same batches, each one jitted scan over the
    batches (fully unrolled on CPU, where XLA runs convolution gradients inside loops 10-30x
    slower, jax-ml/jax#12868), for ResNet-20 on CIFAR-shaped synthetic data and for the default
    MLP (784-100-10) on MNIST-shaped synthetic data; BatchNorm in eval mode.
(b) HVPs needed for the top-10 Hessian eigenvalues to 1e-3 relative error, for small relu MLPs
    on sklearn's digits (at init and after brief SGD), whose exact spectrum is known from the
    dense matrix: Lanczos with full reorthogonalisation (jaxland.curvature.lanczos) against power
    iteration with deflation as PyHessian implements it (`hessian.eigenvalues`, written out below).
(c) The same for the top-20 and top-40 of one of them.
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


def product_cost(name, model, image_shape, batch_size, num_batches, calls, unroll):
  """Prints HVP / gradient and GGN / gradient time ratios on synthetic data."""
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
  loss_fn = cv.make_loss_fn(model, stats)
  hvp = cv.model_operator(model, params, stats, batches, unroll=unroll)
  ggn = cv.model_operator(model, params, stats, batches, kind='ggn', unroll=unroll)
  v = jnp.asarray(rng.normal(size=hvp.dim), jnp.float32)
  grad = lambda: cv.dataset_loss_and_grad(loss_fn, params, batches, unroll=unroll)
  variants = {'grad': grad, 'hvp': lambda: hvp(v), 'ggn': lambda: ggn(v)}
  times = common.interleaved(variants, n=calls, rounds=5)
  t_grad, t_hvp, t_ggn = times['grad'], times['hvp'], times['ggn']
  print(
    f'  {name:<9} {hvp.dim:>8,d} params, {num_batches} x {batch_size} examples: '
    f'grad {t_grad * 1e3:7.1f} ms | HVP {t_hvp * 1e3:7.1f} ms = {t_hvp / t_grad:.2f} x grad | '
    f'GGN {t_ggn * 1e3:7.1f} ms = {t_ggn / t_grad:.2f} x grad'
  )
  return t_hvp / t_grad


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
  """PyHessian's step: orthonormalise v against the found vectors; Hv; v.Hv; Hv / |Hv|."""
  v = v - found.T @ (found @ v)  # rows of unused slots are zero
  v = v / jnp.linalg.norm(v)
  hv = matvec(v)
  return jnp.vdot(hv, v), hv / jnp.linalg.norm(hv)


def power_iteration(op, top_n, max_iter, seed, stop):
  """Power iteration with deflation (PyHessian `hessian.eigenvalues`): for each eigenvalue, start
  from a random unit vector and iterate until stop(i, previous, current) or max_iter HVPs.

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
      current, v = _deflated_power_step(op.matvec, found, v)
      current, count = float(current), count + 1
      if value is not None and stop(i, value, current):
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
    lambda i, _, current: abs(current - truth[i]) <= RTOL * abs(truth[i]),
  )
  return int(counts.sum()), bool(np.all(np.abs(values - truth) <= RTOL * np.abs(truth)))


def hvps_for_top_eigenvalues(hidden, epochs, max_steps, max_power_iter, seeds=3):
  """Prints, for one trained MLP, the HVPs each method needs; returns a summary row."""
  name, op, exact = digits_problem(hidden, epochs)
  truth = exact[:TOP_N]

  def pyhessian_stop(i, previous, current):
    return abs(previous - current) / (abs(previous) + 1e-6) < RTOL

  lanczos_oracle, lanczos_residual, power, pyhessian, pyhessian_err = [], [], [], [], []
  power_converged = True
  for seed in range(seeds):
    m_oracle, m_residual = lanczos_hvps(op, truth, max_steps, seed)
    lanczos_oracle.append(m_oracle)
    lanczos_residual.append(m_residual)
    count, converged = power_hvps(op, truth, max_power_iter, seed)
    power.append(count)
    power_converged &= converged
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
    f'    power iteration with PyHessian defaults (tol {RTOL:g} on the change, maxIter 100): '
    f'{pyhessian} HVPs, reaching max relative errors ' + ' '.join(f'{e:.1e}' for e in pyhessian_err)
  )
  return name, epochs, max(lanczos_oracle), max(lanczos_residual), np.mean(power), power_converged


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help='smaller sizes, for a smoke run')
  args = parser.parse_args()
  print(f'{common.machine()}; float32 products')
  # On CPU, XLA runs convolution gradients inside a while loop 10-30x slower (jax-ml/jax#12868),
  # so there the scan over batches is unrolled, for the gradient and the products alike.
  unroll = True if jax.default_backend() == 'cpu' else 1
  print(
    '(a) product time / gradient time over the same batches (median of 5 interleaved rounds; '
    f'scan over batches {"fully unrolled" if unroll is True else "not unrolled"}):'
  )
  batch = 8 if args.quick else 32
  product_cost('resnet20', get_model('resnet20'), (32, 32, 3), batch, 2, 1, unroll)
  product_cost('mlp', get_model('mlp'), (28, 28, 1), 128, 8, 10, unroll)
  print(f'(b) HVPs for the top-{TOP_N} Hessian eigenvalues at {RTOL:g} relative error:')
  settings = [((32,), 0), ((32,), 3), ((32,), 10), ((32, 32), 10)]
  if args.quick:
    settings = settings[1:2]
  rows = [
    hvps_for_top_eigenvalues(hidden, epochs, 150, 500 if args.quick else 3000)
    for hidden, epochs in settings
  ]
  print('  summary (Lanczos: worst of 3 seeds; power iteration: mean of 3 seeds, best case):')
  for name, epochs, lanczos_oracle, lanczos_residual, power, converged in rows:
    at_least = '' if converged else '>='  # power iteration hit its cap: its count is a floor
    print(
      f'    MLP {name:<11} {epochs:>2} epochs: Lanczos {lanczos_oracle:>3} HVPs '
      f'({lanczos_residual} to certify) vs power iteration {at_least}{power:.0f}: '
      f'{at_least}{power / lanczos_oracle:.1f}x fewer '
      f'({at_least}{power / lanczos_residual:.1f}x when certified)'
    )
  if not args.quick:
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


if __name__ == '__main__':
  main()
