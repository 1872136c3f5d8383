"""Tests of jaxland.curvature against independent oracles: numpy eigh on explicit matrices, and
jax.hessian / jax.jacobian of losses written out here on tiny Flax models."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.tree_util import Partial

from jaxland import curvature as cv
from jaxland.curvature.lanczos import _device_loop, _host_step

# ------------------------------------------------------------------------------ tiny models, data


class TinyMLP(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = x.reshape((x.shape[0], -1))
    x = nn.tanh(nn.Dense(6)(x))
    return nn.Dense(3)(x)


class TinyCNN(nn.Module):
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(3, (3, 3))(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.tanh(x).mean(axis=(1, 2))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(3)(x)


class HiddenDropoutCNN(nn.Module):
  """Dropout not controlled by a `dropout` field: bn_mode='train' must refuse it."""

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.BatchNorm(use_running_average=not train)(nn.Conv(2, (3, 3))(x)).mean(axis=(1, 2))
    return nn.Dense(3)(nn.Dropout(0.5, deterministic=not train)(x))


def _data(n, seed=0, shape=(4, 4, 2)):
  rng = np.random.default_rng(seed)
  return {
    'image': rng.normal(size=(n,) + shape).astype(np.float32),
    'label': rng.integers(0, 3, size=n).astype(np.int32),
  }


def _init(model, data, seed=0):
  variables = jax.jit(model.init)(jax.random.key(seed), jnp.asarray(data['image'][:2]))
  params = variables['params']
  stats = variables.get('batch_stats', {})
  rng = np.random.default_rng(seed + 1)
  # Non-trivial running statistics, so eval mode differs from train mode.
  stats = jax.tree.map(lambda s: jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype), stats)
  return params, stats


def _f64(tree):
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)


def _xent(logits, labels):
  """Mean softmax cross-entropy, written out (the oracle's own loss)."""
  logp = jax.nn.log_softmax(logits)
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def _eval_loss(model, stats, data):
  """Dataset loss in eval mode on the unpadded data."""

  def loss(params):
    variables = {'params': params, 'batch_stats': stats} if stats else {'params': params}
    return _xent(model.apply(variables, data['image'], train=False), data['label'])

  return loss


def _train_loss(model, stats, data, batch_size):
  """Dataset loss with per-batch statistics: each batch's mean loss weighted by its size."""
  n = len(data['label'])

  def loss(params):
    total = 0.0
    for start in range(0, n, batch_size):
      x, y = data['image'][start : start + batch_size], data['label'][start : start + batch_size]
      logits, _ = model.apply(
        {'params': params, 'batch_stats': stats}, x, train=True, mutable=['batch_stats']
      )
      total += _xent(logits, y) * len(y)
    return total / n

  return loss


def _block_positions(params, name):
  """Positions of params[name]'s entries in the raveled params, found by raveling a marker."""
  marked = {
    k: jax.tree.map(lambda a, k=k: jnp.full(a.shape, k == name), v) for k, v in params.items()
  }
  return np.flatnonzero(np.asarray(ravel_pytree(marked)[0]))


def _explicit(eigenvalues, seed=0, rotate=True):
  lam = np.asarray(eigenvalues, np.float64)
  if not rotate:
    return np.diag(lam)
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(lam.size, lam.size)))
  return (q * lam) @ q.T


def _matmul(a, v):
  return a @ v


# ------------------------------------------------------------------- Lanczos, explicit matrices

_RNG = np.random.default_rng(7)
# (eigenvalues, rotate by a random orthogonal matrix, Lanczos steps, check bottom-k). The bottom
# of the power law is a cluster within 1e-6 of 0 that 60 steps do not resolve, so only its top.
SPECTRA = {
  'diagonal': (np.linspace(-1.0, 3.0, 60), False, 60, True),
  'rotated_power_law': (10.0 * 0.8 ** np.arange(200), True, 60, False),
  'repeated': (np.repeat([5.0, 3.0, 1.0, -2.0], [4, 3, 5, 2]), True, 14, True),
  'indefinite': (
    np.concatenate([[-10, -7, -5], _RNG.uniform(-1, 1, 144), [4, 6, 9]]),
    True,
    60,
    True,
  ),
}


@pytest.mark.parametrize('name', sorted(SPECTRA))
def test_lanczos_matches_eigh_on_explicit_matrices(name):
  lam, rotate, steps, check_bottom = SPECTRA[name]
  a = _explicit(lam, rotate=rotate)
  truth = np.linalg.eigh(a)[0]
  k = 3 if check_bottom else 0
  with jax.enable_x64(True):
    res = cv.lanczos(Partial(_matmul, jnp.asarray(a)), a.shape[0], steps, top_k=3, bottom_k=k)
    assert res.top.vectors.dtype == jnp.float64
  np.testing.assert_allclose(res.top.values, truth[::-1][:3], rtol=0, atol=1e-6)
  np.testing.assert_allclose(res.bottom.values, truth[:k], rtol=0, atol=1e-6)
  for ritz in (res.top, res.bottom):
    y = np.asarray(ritz.vectors)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-10)
    true_residual = np.linalg.norm(a @ y.T - y.T * ritz.values, axis=0)
    np.testing.assert_array_less(true_residual, 1e-6)
    np.testing.assert_allclose(ritz.residuals, true_residual, atol=1e-9)


def test_lanczos_repeated_eigenvalues_restarts_and_finds_multiplicities():
  lam = np.repeat([5.0, 3.0, 1.0, -2.0], [4, 3, 5, 2])
  a = _explicit(lam, seed=3)
  with jax.enable_x64(True):
    res = cv.lanczos(Partial(_matmul, jnp.asarray(a)), lam.size, 50, top_k=lam.size)
  # From one start vector the Krylov space holds each distinct eigenvalue once (4 steps); the
  # restarts recover the remaining copies.
  assert res.breakdowns >= 3
  np.testing.assert_allclose(res.ritz_values, np.sort(lam), atol=1e-9)


def test_lanczos_float32_and_residual_estimate_on_a_wide_matrix():
  lam = 10.0 * 0.7 ** np.arange(300)
  a = _explicit(lam, seed=1)
  res = cv.lanczos(Partial(_matmul, jnp.asarray(a, jnp.float32)), 300, 40, top_k=5)
  assert res.top.vectors.dtype == jnp.float32
  np.testing.assert_allclose(res.top.values, lam[:5], rtol=1e-5)
  overlaps = np.abs(np.asarray(res.top.vectors, np.float64) @ np.linalg.eigh(a)[1][:, ::-1][:, :5])
  np.testing.assert_allclose(np.diag(overlaps), 1.0, atol=1e-4)


def test_lanczos_host_and_device_loops_agree_and_compile_once():
  a = _explicit(np.linspace(0, 1, 30))
  mv = Partial(_matmul, jnp.asarray(a, jnp.float32))
  runs = {host: cv.lanczos(mv, 30, 10, top_k=2, host_loop=host) for host in (True, False)}
  np.testing.assert_allclose(runs[True].alpha, runs[False].alpha, rtol=1e-5)
  np.testing.assert_allclose(runs[True].beta, runs[False].beta, rtol=1e-5)
  sizes = (_host_step._cache_size(), _device_loop._cache_size())
  for host in (True, False):  # a new seed and new data of the same shape: no new compile
    cv.lanczos(Partial(_matmul, jnp.asarray(2 * a, jnp.float32)), 30, 10, seed=1, host_loop=host)
  assert (_host_step._cache_size(), _device_loop._cache_size()) == sizes


def test_lanczos_rejects_bad_arguments():
  mv = Partial(_matmul, jnp.eye(4))
  with pytest.raises(ValueError, match='top_k'):
    cv.lanczos(mv, 4, 3, top_k=5)
  with pytest.raises(ValueError, match='v0'):
    cv.lanczos(mv, 4, 3, top_k=1, v0=np.ones(5))


# ---------------------------------------------------------------------------- HVP on tiny models


@pytest.fixture(scope='module')
def cnn():
  model = TinyCNN()
  data = _data(21)
  params, stats = _init(model, data)
  return model, params, stats, data


def test_stack_batches_pads_and_masks():
  data = _data(21)
  batches = cv.stack_batches(data, 8)
  assert batches['image'].shape == (3, 8, 4, 4, 2)
  np.testing.assert_array_equal(batches['mask'].sum(axis=1), [8, 8, 5])
  np.testing.assert_array_equal(batches['label'].reshape(-1)[:21], data['label'])
  with pytest.raises(ValueError, match='first dimension'):
    cv.stack_batches({'image': np.zeros((3, 2)), 'label': np.zeros(4)}, 2)


@pytest.fixture(scope='module')
def cnn64(cnn):
  """The tiny CNN in float64, its stacked batches and the dense eval-mode Hessian (the oracle)."""
  model, params, stats, data = cnn
  with jax.enable_x64(True):
    params, stats, data = _f64(params), _f64(stats), _f64(data)
    data['label'] = data['label'].astype(jnp.int32)
    h = cv.dense_hessian(_eval_loss(model, stats, data), params)
  return model, params, stats, data, cv.stack_batches(data, 8), h


def test_hvp_and_lanczos_equal_dense_hessian_mlp():
  model, data = TinyMLP(), _data(21)
  params, stats = _init(model, data)
  with jax.enable_x64(True):
    params, data = _f64(params), _f64(data)
    data['label'] = data['label'].astype(jnp.int32)
    op = cv.model_operator(model, params, stats, cv.stack_batches(data, 8))
    h = cv.dense_hessian(_eval_loss(model, stats, data), params)
    v = np.random.default_rng(0).normal(size=op.dim)
    np.testing.assert_allclose(np.asarray(op(jnp.asarray(v))), h @ v, rtol=1e-9, atol=1e-11)
    res = cv.lanczos(op.matvec, op.dim, op.dim, top_k=4, bottom_k=2)
  truth = cv.eigh(h)[0]
  np.testing.assert_allclose(res.top.values, truth[::-1][:4], atol=1e-8)
  np.testing.assert_allclose(res.bottom.values, truth[:2], atol=1e-8)


def test_hvp_and_lanczos_equal_dense_hessian_cnn_with_batchnorm(cnn64):
  model, params, stats, _, batches, h = cnn64
  with jax.enable_x64(True):
    op = cv.model_operator(model, params, stats, batches)
    v = np.random.default_rng(0).normal(size=op.dim)
    np.testing.assert_allclose(np.asarray(op(jnp.asarray(v))), h @ v, rtol=1e-9, atol=1e-11)
    res = cv.lanczos(op.matvec, op.dim, op.dim, top_k=4, bottom_k=2)
  truth = cv.eigh(h)[0]
  np.testing.assert_allclose(res.top.values, truth[::-1][:4], atol=1e-8)
  np.testing.assert_allclose(res.bottom.values, truth[:2], atol=1e-8)


def test_hvp_float32_matches_dense_hessian(cnn, cnn64):
  model, params, stats, data = cnn
  h = cnn64[-1]
  op = cv.model_operator(model, params, stats, cv.stack_batches(data, 8))
  assert op.dim == ravel_pytree(params)[0].size
  v = np.random.default_rng(1).normal(size=op.dim).astype(np.float32)
  hv = np.asarray(op(jnp.asarray(v)))
  assert hv.dtype == np.float32
  np.testing.assert_allclose(hv, h @ v, rtol=1e-5, atol=1e-5 * np.abs(h @ v).max())
  unrolled = cv.model_operator(model, params, stats, cv.stack_batches(data, 8), unroll=True)
  np.testing.assert_allclose(np.asarray(unrolled(jnp.asarray(v))), hv, rtol=1e-5, atol=1e-7)
  res = cv.lanczos(op.matvec, op.dim, 40, top_k=3, host_loop=True)
  np.testing.assert_allclose(res.top.values, cv.eigh(h)[0][::-1][:3], rtol=1e-5)
  # Another checkpoint of the same model (new params and statistics) reuses the compiled solver.
  size = _host_step._cache_size()
  other = cv.model_operator(
    TinyCNN(), jax.tree.map(lambda p: 1.1 * p, params), stats, cv.stack_batches(data, 8)
  )
  cv.lanczos(other.matvec, other.dim, 40, top_k=3, seed=5, host_loop=True)
  assert _host_step._cache_size() == size


def test_hvp_train_mode_equals_dense_hessian_of_batch_statistics_loss():
  model, data = TinyCNN(dropout=0.5), _data(24, seed=2)
  params, stats = _init(model, data)
  with jax.enable_x64(True):
    params, stats, data = _f64(params), _f64(stats), _f64(data)
    data['label'] = data['label'].astype(jnp.int32)
    batches = cv.stack_batches(data, 8)
    op = cv.model_operator(model, params, stats, batches, bn_mode='train')
    # Dropout is switched off: the oracle is the same model without dropout.
    h = cv.dense_hessian(_train_loss(TinyCNN(dropout=0.0), stats, data, 8), params)
    h_eval = cv.dense_hessian(_eval_loss(model, stats, data), params)
    v = np.random.default_rng(2).normal(size=op.dim)
    np.testing.assert_allclose(np.asarray(op(jnp.asarray(v))), h @ v, rtol=1e-9, atol=1e-11)
  assert np.abs(h - h_eval).max() > 1e-3  # the two modes really differ here


def test_train_mode_refuses_padding_and_hidden_dropout(cnn):
  model, params, stats, data = cnn
  with pytest.raises(ValueError, match='full batches'):
    cv.model_operator(model, params, stats, cv.stack_batches(data, 8), bn_mode='train')
  hidden = HiddenDropoutCNN()
  hp, hs = _init(hidden, data)
  op = cv.model_operator(hidden, hp, hs, cv.stack_batches(data, 7), bn_mode='train')
  with pytest.raises(ValueError, match='dropout'):
    op(jnp.ones(op.dim))


def test_bad_names_raise_value_errors(cnn):
  model, params, stats, data = cnn
  batches = cv.stack_batches(data, 8)
  with pytest.raises(ValueError, match='bn_mode'):
    cv.model_operator(model, params, stats, batches, bn_mode='running')
  with pytest.raises(ValueError, match='kind'):
    cv.model_operator(model, params, stats, batches, kind='fisher')
  with pytest.raises(ValueError, match='loss'):
    cv.make_loss_fn(model, stats, loss='hinge')
  with pytest.raises(ValueError, match='Conv_0'):
    cv.model_operator(model, params, stats, batches, block='Conv_9')
  with pytest.raises(ValueError, match='precision'):
    cv.model_operator(model, params, stats, batches, precision='tf32')


def _matmul_precisions(jaxpr):
  """The `precision` of every dot and convolution in a jaxpr and its sub-jaxprs (scan, jit)."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ('dot_general', 'conv_general_dilated'):
      found.append(eqn.params['precision'])
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        sub = getattr(sub, 'jaxpr', sub)
        if hasattr(sub, 'eqns'):
          found += _matmul_precisions(sub)
  return found


@pytest.mark.parametrize('precision', cv.PRECISIONS)
def test_products_are_traced_at_the_asked_matmul_precision(cnn, precision):
  """GPUs run float32 dots and convolutions in TF32 unless told otherwise (~1e-3 relative error in
  an HVP, 1e-2 for an MLP on an H100: bench/curvature.py), so the operators pin the precision."""
  model, params, stats, data = cnn
  batches = cv.stack_batches(data, 8)
  expected = {'highest': jax.lax.Precision.HIGHEST, 'high': jax.lax.Precision.HIGH}
  for kind in cv.KINDS:
    op = cv.model_operator(model, params, stats, batches, kind=kind, precision=precision)
    found = _matmul_precisions(jax.make_jaxpr(op.matvec)(jnp.ones(op.dim)).jaxpr)
    assert len(found) >= 4, found  # Convolutions and dense layers, forward and backward.
    for p in found:
      pair = p if isinstance(p, tuple) else (p, p)
      if precision == 'default':  # Nothing pinned: the platform decides.
        assert all(x in (None, jax.lax.Precision.DEFAULT) for x in pair), p
      else:
        assert pair == (expected[precision],) * 2, p


def test_ggn_equals_dense_jacobian_product(cnn64):
  model, params, stats, data, batches, _ = cnn64
  with jax.enable_x64(True):
    op = cv.model_operator(model, params, stats, batches, kind='ggn')
    flat, unravel = ravel_pytree(params)
    logits = lambda x: model.apply(
      {'params': unravel(x), 'batch_stats': stats}, data['image'], train=False
    )
    jac = np.asarray(jax.jacobian(logits)(flat))  # [N, K, n]
    p = np.asarray(jax.nn.softmax(logits(flat)))
    h_out = np.stack([np.diag(pi) - np.outer(pi, pi) for pi in p])  # [N, K, K]
    ggn = np.einsum('ika,ikl,ilb->ab', jac, h_out, jac) / len(p)
    v = np.random.default_rng(3).normal(size=op.dim)
    np.testing.assert_allclose(np.asarray(op(jnp.asarray(v))), ggn @ v, rtol=1e-9, atol=1e-11)
    top = cv.lanczos(op.matvec, op.dim, op.dim, top_k=3).top.values
  np.testing.assert_allclose(top, cv.eigh(ggn)[0][::-1][:3], atol=1e-9)


def test_block_spectrum_equals_eigh_of_the_diagonal_block(cnn64):
  model, params, stats, _, batches, h = cnn64
  with jax.enable_x64(True):
    idx = _block_positions(params, 'Conv_0')
    np.testing.assert_array_equal(cv.block_indices(params, 'Conv_0'), idx)
    truth = cv.eigh(h[np.ix_(idx, idx)])[0]
    block = cv.model_operator(model, params, stats, batches, block='Conv_0')
    assert block.dim == idx.size
    res = cv.lanczos(block.matvec, block.dim, block.dim, top_k=3, bottom_k=3)
    generic = cv.restrict(cv.model_operator(model, params, stats, batches), idx)
    np.testing.assert_allclose(
      cv.dense_matrix(generic.matvec, generic.dim), h[np.ix_(idx, idx)], atol=1e-10
    )
    tree = jax.tree.map(np.asarray, block.to_tree(res.top.vectors[0]))
    top_vector = np.asarray(res.top.vectors[0])
  np.testing.assert_allclose(res.ritz_values, truth, atol=1e-9)
  assert np.abs(tree['Dense_0']['kernel']).max() == 0.0
  np.testing.assert_allclose(np.asarray(ravel_pytree(tree)[0])[idx], top_vector)


def test_dataset_loss_and_grad_matches_oracle(cnn):
  model, params, stats, data = cnn
  loss_fn = cv.make_loss_fn(model, stats)
  loss, grad = cv.dataset_loss_and_grad(loss_fn, params, cv.stack_batches(data, 8))
  oracle = _eval_loss(model, stats, data)
  np.testing.assert_allclose(loss, oracle(params), rtol=1e-6)
  np.testing.assert_allclose(cv.ravel(grad), cv.ravel(jax.grad(oracle)(params)), atol=1e-6)


@pytest.mark.parametrize('bn_mode', ['eval', 'train'])
def test_hvp_on_8_devices_equals_1_device(bn_mode):
  model, data = TinyCNN(), _data(32, seed=4)
  # Committed to one device, as restored checkpoints are: the operator replicates them.
  params, stats = jax.device_put(_init(model, data), jax.devices()[0])
  batches = cv.stack_batches(data, 16)
  v = jnp.asarray(np.random.default_rng(4).normal(size=ravel_pytree(params)[0].size), jnp.float32)
  out, top = {}, {}
  for n in (1, 8):
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:n]), ('data',))
    sharded = cv.shard_batches(batches, mesh)
    assert len(sharded['image'].sharding.device_set) == n
    op = cv.model_operator(model, params, stats, sharded, bn_mode=bn_mode)
    out[n] = np.asarray(op(v))
    if bn_mode == 'eval':  # the solver on sharded data (kept short: 8 CPU "devices" are slow)
      top[n] = cv.lanczos(op.matvec, op.dim, 6, top_k=1).top.values
  assert len(jax.devices()) == 8
  np.testing.assert_allclose(out[8], out[1], rtol=1e-5, atol=1e-6 * np.abs(out[1]).max())
  if top:
    np.testing.assert_allclose(top[8], top[1], rtol=1e-4)
  with pytest.raises(ValueError, match='divisible'):
    cv.shard_batches(
      cv.stack_batches(data, 6), jax.sharding.Mesh(np.array(jax.devices()), ('data',))
    )


# --------------------------------------------------------------------------- density and trace


def _spectrum_400():
  rng = np.random.default_rng(11)
  return np.concatenate([rng.normal(0.0, 0.05, 300), rng.uniform(0.5, 2.0, 95), [4, 6, 8, 12, 20]])


def test_quadrature_is_exact_for_low_degree_moments():
  lam = _spectrum_400()
  a = _explicit(lam, seed=5)
  v = np.random.default_rng(6).normal(size=lam.size)
  v /= np.linalg.norm(v)
  with jax.enable_x64(True):
    res = cv.lanczos(Partial(_matmul, jnp.asarray(a)), lam.size, 8, top_k=0, v0=v, vectors=False)
  nodes, weights = cv.quadrature(res.alpha, res.beta)
  for k in range(16):  # Gauss quadrature with m nodes is exact up to degree 2m - 1.
    exact = v @ np.linalg.matrix_power(a, k) @ v
    np.testing.assert_allclose(np.sum(weights * nodes**k), exact, rtol=1e-8)


def test_slq_weights_density_and_moments():
  lam = _spectrum_400()
  a = _explicit(lam, seed=5)
  n, probes = lam.size, 20
  with jax.enable_x64(True):
    res = cv.slq(Partial(_matmul, jnp.asarray(a)), n, probes, 30, seed=1)
  assert res.nodes.shape == (probes, 30)
  np.testing.assert_allclose(res.weights.sum(axis=1), 1.0, atol=1e-12)
  sigma = 0.05
  grid = cv.density_grid(res, sigma, num_points=4001)
  density = cv.spectral_density(res, grid, sigma)
  assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)
  # For uniformly random unit probes, var(v^T B v) = 2 var(eig(B)) / (n + 2).
  for power in (1, 2):
    lam_k = lam**power
    se = np.sqrt(2 * lam_k.var() / (n + 2) / probes)
    assert abs(cv.moment(res, power) - lam_k.mean()) < 4 * se
  exact = np.exp(-0.5 * ((grid[:, None] - lam) / sigma) ** 2).sum(1) / (
    n * sigma * np.sqrt(2 * np.pi)
  )
  assert np.trapezoid(np.abs(density - exact), grid) < 0.15


def test_hutchinson_within_three_standard_errors():
  rng = np.random.default_rng(8)
  b = rng.normal(size=(60, 60))
  a = b + b.T + np.diag(rng.uniform(0, 5, 60))
  probes = 300
  with jax.enable_x64(True):
    est = cv.hutchinson(Partial(_matmul, jnp.asarray(a)), 60, probes, seed=2)
  assert abs(est.trace - np.trace(a)) < 3 * est.stderr
  theory = np.sqrt(2 * (np.sum(a**2) - np.sum(np.diag(a) ** 2)) / probes)
  assert 0.8 < est.stderr / theory < 1.25
  assert est.samples.shape == (probes,)


def test_hutchinson_and_slq_on_a_model_hessian(cnn, cnn64):
  model, params, stats, data = cnn
  h = cnn64[-1]
  op = cv.model_operator(model, params, stats, cv.stack_batches(data, 8))
  est = cv.hutchinson(op.matvec, op.dim, 64)
  assert abs(est.trace - np.trace(h)) < 3 * est.stderr
  res = cv.slq(op.matvec, op.dim, 4, op.dim)
  np.testing.assert_allclose(res.weights.sum(axis=1), 1.0, atol=1e-5)
  np.testing.assert_allclose(res.nodes.max(axis=1), cv.eigh(h)[0][-1], rtol=1e-4)
