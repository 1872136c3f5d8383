"""Tests of jaxland.landscape against independent oracles: closed forms on an explicit quadratic
loss, numpy, jax.hessian and per-example jax.grad loops written out here, simulations."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxland.landscape import dynamics, fits, lines, per_example
from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape.problem import make_problem, mean_metrics

# --------------------------------------------------------------------------- an explicit quadratic


def _quadratic(dim=6, seed=0, values=None):
  """A = Q diag(values) Q^T, centre c; loss(theta) = (theta - c)^T A (theta - c) / 2 for every
  example (so every batch, full or mini, sees the same function)."""
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
  values = np.linspace(5.0, 0.5, dim) if values is None else np.asarray(values, float)
  a = q @ np.diag(values) @ q.T
  centre = rng.standard_normal(dim)
  a32, c32 = jnp.asarray(a, jnp.float32), jnp.asarray(centre, jnp.float32)

  def per_ex(flat, x, y):
    d = flat - c32
    loss = 0.5 * d @ (a32 @ d)
    return jnp.full(y.shape, loss), jnp.zeros(y.shape)

  x = jnp.zeros((10, 1), jnp.float32)
  y = jnp.zeros((10,), jnp.int32)
  return {'A': a, 'c': centre, 'values': values, 'Q': q, 'per_example': per_ex, 'x': x, 'y': y}


def _closed_form(q, theta, v, ts):
  g = q['A'] @ (theta - q['c'])
  l0 = 0.5 * (theta - q['c']) @ q['A'] @ (theta - q['c'])
  return l0 + ts * (g @ v) + 0.5 * ts**2 * (v @ q['A'] @ v)


def test_profile_equals_closed_form_on_a_quadratic():
  q = _quadratic()
  rng = np.random.default_rng(1)
  theta, v = rng.standard_normal(6), rng.standard_normal(6)
  ts = np.linspace(-1.5, 2.0, 9)  # 9 points in chunks of 4: the padding is exercised.
  prof = lines.profile(q['per_example'], theta, v, ts, q['x'], q['y'], batch_size=3, t_chunk=4)
  np.testing.assert_allclose(prof['loss'], _closed_form(q, theta, v, ts), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(prof['accuracy'], 0.0)
  slow = lines.point_by_point(q['per_example'], theta, v, ts, q['x'], q['y'], batch_size=3)
  np.testing.assert_allclose(slow['loss'], prof['loss'], rtol=1e-6)


def test_minibatch_profiles_of_a_data_free_loss_are_the_closed_form():
  q = _quadratic()
  theta, v = np.ones(6), np.eye(6)[0]
  ts = np.linspace(-1, 1, 5)
  out = lines.minibatch_profiles(
    q['per_example'], theta, v, ts, q['x'], q['y'], batch_size=4, repeats=3, t_chunk=2
  )
  assert out['loss'].shape == (3, 5)
  np.testing.assert_allclose(out['loss'], np.tile(_closed_form(q, theta, v, ts), (3, 1)), rtol=1e-5)


def test_sampled_minibatches_have_distinct_examples():
  idx = lines.sample_minibatches(20, 7, 5, seed=0)
  assert idx.shape == (5, 7)
  assert all(len(set(row)) == 7 for row in idx)
  with pytest.raises(ValueError, match='minibatch size'):
    lines.sample_minibatches(5, 6, 1, seed=0)


def test_fitted_curvature_equals_the_eigenvalue_and_the_minimum_is_found():
  q = _quadratic()
  theta = q['c'] + 0.3 * q['Q'][:, 1]  # Off the minimum along u_1 only.
  for j in range(6):
    u = q['Q'][:, j]
    ts = lines.symmetric_geometric_grid(1.0, 21, 0.01)
    prof = lines.profile(q['per_example'], theta, u, ts, q['x'], q['y'])
    fit = fits.fit_quadratic(prof['t'], prof['loss'])
    assert fit['curvature'] == pytest.approx(q['values'][j], rel=1e-3)
    assert fit['rel_rms'] < 1e-4
  fit1 = fits.fit_quadratic(
    ts, lines.profile(q['per_example'], theta, q['Q'][:, 1], ts, q['x'], q['y'])['loss']
  )
  # Along u_1 the minimum is back at the centre: t = -0.3 (sign of the eigenvector aside).
  assert fit1['minimum'] == pytest.approx(-0.3, abs=1e-3)


def test_quadratic_range_of_a_quartic_is_sqrt_tol():
  ts = np.linspace(-1, 1, 401)
  losses = ts**2 + ts**4  # Q = t^2: |L - Q| = t^4 <= tol t^2  <=>  |t| <= sqrt(tol).
  r = fits.quadratic_range(ts, losses, 0.0, 0.0, 2.0, tol=0.1)
  assert r == pytest.approx(np.sqrt(0.1), abs=0.005)
  assert fits.quadratic_range(ts, ts**2, 0.0, 0.0, 2.0, tol=0.01) == pytest.approx(1.0)


def test_fit_forms_prefers_pseudo_huber_for_a_pseudo_huber_profile():
  t = np.linspace(-3, 3, 61)
  y = 0.1 + 0.2 * t + 2.0 * 0.5**2 * (np.sqrt(1 + (t / 0.5) ** 2) - 1)
  forms = fits.fit_forms(t, y)
  assert forms['pseudo_huber'] < 1e-4
  assert forms['quadratic'] > 10 * forms['pseudo_huber']


def test_predicted_curvature_equals_vhv_with_an_isotropic_bulk():
  values = [9.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
  q = _quadratic(dim=8, values=values)
  k = 2
  bulk = (np.trace(q['A']) - sum(values[:k])) / (8 - k)
  rng = np.random.default_rng(3)
  for _ in range(3):
    v = rng.standard_normal(8)
    pred = fits.predicted_curvature(v, values[:k], q['Q'][:, :k].T, bulk)
    assert pred['predicted'] == pytest.approx(v @ q['A'] @ v, rel=1e-10)


def test_independent_profile_is_exact_for_a_quadratic():
  q = _quadratic()
  theta = q['c'] + np.random.default_rng(4).standard_normal(6) * 0.2
  ts = np.linspace(-1, 1, 401)
  eigen_profiles = [
    {
      't': ts,
      'loss': lines.profile(q['per_example'], theta, q['Q'][:, j], ts, q['x'], q['y'])['loss'],
    }
    for j in range(6)
  ]
  coeffs = np.random.default_rng(5).standard_normal(6)
  coeffs /= np.linalg.norm(coeffs)
  v = q['Q'] @ coeffs
  l0 = float(_closed_form(q, theta, v, np.zeros(1))[0])
  pred = fits.independent_profile(ts, coeffs, eigen_profiles, l0)
  np.testing.assert_allclose(pred, _closed_form(q, theta, v, ts), atol=2e-4)


def test_filter_normalized_direction_matches_filter_norms():
  rng = np.random.default_rng(0)
  params = {
    'Conv_0': {'kernel': rng.standard_normal((3, 3, 2, 4)), 'bias': rng.standard_normal(4)},
    'Dense_0': {'kernel': rng.standard_normal((5, 3)), 'bias': rng.standard_normal(3)},
  }
  flat = lines.filter_normalized(params, seed=1)
  d = ravel_pytree(jax.tree.map(np.zeros_like, params))[1](jnp.asarray(flat))
  for layer in ('Conv_0', 'Dense_0'):
    w, dw = params[layer]['kernel'], np.asarray(d[layer]['kernel'])
    for j in range(w.shape[-1]):
      assert np.linalg.norm(dw[..., j]) == pytest.approx(np.linalg.norm(w[..., j]), rel=1e-5)
    np.testing.assert_array_equal(np.asarray(d[layer]['bias']), 0.0)


def test_symmetric_geometric_grid():
  g = lines.symmetric_geometric_grid(2.0, 7, 0.01)
  np.testing.assert_allclose(g, [-2, -0.2, -0.02, 0, 0.02, 0.2, 2])
  with pytest.raises(ValueError, match='odd'):
    lines.symmetric_geometric_grid(1.0, 6, 0.01)


def test_eigen_radius_clips():
  assert lines.eigen_radius(2.0, 1.0, 0.01, 10.0) == pytest.approx(1.0)
  assert lines.eigen_radius(0.0, 1.0, 0.01, 10.0) == 10.0
  assert lines.eigen_radius(1e6, 1.0, 0.01, 10.0) == 0.01


# ------------------------------------------------------------------------------- a tiny real model


class TinyMLP(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(3)(nn.tanh(nn.Dense(5)(x)))


@pytest.fixture(scope='module')
def tiny():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((24, 2, 2, 1)).astype(np.float32)
  y = rng.integers(0, 3, 24).astype(np.int32)
  model = TinyMLP()
  params = model.init(jax.random.key(0), jnp.asarray(x[:1]))['params']
  splits = {'train': (jnp.asarray(x), jnp.asarray(y))}
  return make_problem(model, params, {}, splits)


def _example_loss(problem, flat, xi, yi):
  logits = problem.model.apply({'params': problem.unravel(flat)}, xi[None])
  return -jax.nn.log_softmax(logits)[0, yi]


def test_mean_metrics_matches_numpy(tiny):
  x, y = tiny.splits['train']
  out = jax.jit(lambda f: mean_metrics(tiny.per_example, f, x, y, batch_size=7))(tiny.flat)
  logits = np.asarray(tiny.model.apply({'params': tiny.params}, x), np.float64)
  logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  assert float(out['loss']) == pytest.approx(-np.mean(logp[np.arange(24), np.asarray(y)]), rel=1e-5)
  assert float(out['accuracy']) == pytest.approx(np.mean(logits.argmax(1) == np.asarray(y)))


def test_eigen_compute_matches_dense_hessian(tiny):
  x, y = tiny.splits['train']
  hess = jax.jit(
    jax.hessian(lambda f: jnp.mean(jax.vmap(lambda xi, yi: _example_loss(tiny, f, xi, yi))(x, y)))
  )(tiny.flat)
  expected = np.sort(np.linalg.eigvalsh(np.asarray(hess, np.float64)))[::-1]
  eig = eigen_lib.compute(tiny, num_top=3, num_steps=24, batch_size=10, trace_probes=4)
  np.testing.assert_allclose(eig.values[:3], expected[:3], rtol=1e-3, atol=1e-5)
  v0 = eig.vectors[0]
  assert float(v0 @ np.asarray(hess) @ v0) == pytest.approx(expected[0], rel=1e-3)
  sel = eigen_lib.select(eig, num_bulk=3, num_bottom=2)
  assert sel['top'] == [0, 1, 2] and sel['bottom'] == [22, 23]
  assert all(3 <= i < 22 for i in sel['bulk']) and len(sel['bulk']) == 3


def test_per_example_gradients_equal_a_loop_of_single_example_grads(tiny):
  x, y = tiny.splits['train']
  grads = per_example.per_example_grads(tiny.per_example, tiny.flat, x, y)
  single = jax.jit(jax.grad(lambda f, xi, yi: _example_loss(tiny, f, xi, yi)))
  loop = np.stack([np.asarray(single(tiny.flat, x[i], y[i])) for i in range(24)])
  np.testing.assert_allclose(grads, loop, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
    per_example.loop_grads(tiny.per_example, tiny.flat, x, y), loop, atol=1e-6
  )
  basis = np.linalg.qr(np.random.default_rng(2).standard_normal((tiny.dim, 4)))[0].T
  out = per_example.project(tiny.per_example, tiny.flat, x, y, basis, chunk=5)
  np.testing.assert_allclose(out['proj'], loop @ basis.T, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(out['norm'], np.linalg.norm(loop, axis=1), rtol=1e-5)


def test_projection_on_a_complete_orthonormal_basis_preserves_the_norm(tiny):
  x, y = tiny.splits['train']
  basis = np.linalg.qr(np.random.default_rng(3).standard_normal((tiny.dim, tiny.dim)))[0].T
  out = per_example.project(tiny.per_example, tiny.flat, x, y, basis)
  np.testing.assert_allclose(np.linalg.norm(out['proj'], axis=1), out['norm'], rtol=1e-4)
  cos = per_example.cosines(out['proj'], out['norm'])
  np.testing.assert_allclose(np.sum(cos**2, axis=1), 1.0, rtol=1e-4)


def test_participation_ratio_and_top_share():
  even = np.ones((100, 1))
  one = np.zeros((100, 1))
  one[7] = 3.0
  assert per_example.participation_ratio(even)[0] == pytest.approx(1.0)
  assert per_example.participation_ratio(one)[0] == pytest.approx(0.01)
  assert per_example.top_share(one, 0.01)[0] == pytest.approx(1.0)
  assert per_example.top_share(even, 0.1)[0] == pytest.approx(0.1)


def test_minibatch_gradient_projections_match_numpy(tiny):
  x, y = tiny.splits['train']
  basis = np.eye(tiny.dim, dtype=np.float32)[:3]
  out = dynamics.minibatch_gradient_projections(
    tiny.per_example, tiny.flat, x, y, basis, batch_size=6, num_batches=4, seed=9
  )
  idx = lines.sample_minibatches(24, 6, 4, seed=9)
  single = jax.grad(lambda f, xi, yi: _example_loss(tiny, f, xi, yi))
  for m in range(4):
    g = np.mean([np.asarray(single(tiny.flat, x[i], y[i])) for i in idx[m]], axis=0)
    np.testing.assert_allclose(out['proj'][m], g[:3], rtol=1e-4, atol=1e-6)
    assert out['sq_norm'][m] == pytest.approx(g @ g, rel=1e-4)


# ------------------------------------------------------------------------------------- dynamics


def test_overlap_of_a_basis_with_itself_is_the_identity():
  v = np.linalg.qr(np.random.default_rng(0).standard_normal((50, 6)))[0].T
  np.testing.assert_allclose(dynamics.overlap(v, v), np.eye(6), atol=1e-12)
  np.testing.assert_allclose(dynamics.max_overlap(dynamics.overlap(v, v)), 1.0)
  assert dynamics.subspace_overlap(v, v) == pytest.approx(1.0)
  # A rotation inside the span keeps the subspace overlap at 1 but mixes the vectors.
  r = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 6)))[0]
  assert dynamics.subspace_overlap(v, r @ v) == pytest.approx(1.0)
  assert dynamics.max_overlap(dynamics.overlap(v, r @ v)).min() < 0.99


def test_random_subspaces_overlap_about_k_over_p():
  rng = np.random.default_rng(2)
  vals = [
    dynamics.subspace_overlap(
      np.linalg.qr(rng.standard_normal((400, 8)))[0].T,
      np.linalg.qr(rng.standard_normal((400, 8)))[0].T,
    )
    for _ in range(20)
  ]
  assert np.mean(vals) == pytest.approx(8 / 400, rel=0.2)


def test_project_trajectory():
  thetas = np.array([[3.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
  proj = dynamics.project_trajectory(thetas, np.array([1.0, 1.0, 0.0]), np.eye(3)[:2])
  np.testing.assert_allclose(proj, [[2.0, 0.0], [0.0, 0.0]])


def test_settle_step_of_a_decaying_signal():
  rng = np.random.default_rng(0)
  steps = np.arange(2000)
  sigma, amp, tau = 0.01, 1.0, 100.0
  p = amp * np.exp(-steps / tau) + sigma * rng.standard_normal(2000)
  out = dynamics.settle_steps(steps, p[:, None], tail_fraction=0.3, factor=4.0)
  # The last exit from the 4-sigma band comes after the decay itself falls inside it, and before
  # the decay is down to 1 sigma (from there on an exit needs a > 3-sigma draw).
  enters = tau * np.log(amp / (4.0 * sigma))
  deep = tau * np.log(amp / sigma)
  assert enters <= out['settle_step'][0] <= deep
  assert out['tail_std'][0] == pytest.approx(sigma, rel=0.1)
  assert out['distance_init'][0] == pytest.approx(amp, abs=0.05)


def test_stationary_variance_matches_a_heavy_ball_simulation():
  rng = np.random.default_rng(0)
  lr, mu, c, s = 0.1, 0.9, 2.0, 0.5
  x, buf, xs = 0.0, 0.0, []
  noise = rng.standard_normal(400_000) * s
  for i in range(400_000):  # PyTorch SGD momentum: buf = mu buf + g; x -= lr buf.
    buf = mu * buf + c * x + noise[i]
    x -= lr * buf
    xs.append(x)
  measured = np.var(xs[1000:])
  assert dynamics.stationary_variance(lr, mu, c, s**2) == pytest.approx(measured, rel=0.05)
  assert np.isinf(dynamics.stationary_variance(lr, mu, 40.0, s**2))


# ------------------------------------------------------------------------------------ the task


def _hand_loss_and_accuracy(config, run_dir, split='train'):
  """Mean cross-entropy (and its gradient norm) and accuracy of a run's checkpoint on `split`,
  written out here: the data normalised by hand, the model applied directly."""
  from jaxland import data, models
  from jaxland.rundir import checkpoints

  dataset = data.load_dataset(config.data)
  images, labels = getattr(dataset, split)
  x = jnp.asarray((images.astype(np.float32) / 255.0 - dataset.mean) / dataset.std, jnp.float32)
  model = models.get_model(**config.model.to_dict(), num_classes=dataset.num_classes)
  params, batch_stats, _ = checkpoints.load_params(run_dir)

  def loss(p):
    variables = {'params': p, 'batch_stats': batch_stats} if batch_stats else {'params': p}
    logits = model.apply(variables, x, train=False)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    return -jnp.mean(logp[jnp.arange(len(labels)), labels]), logits

  (value, logits), grad = jax.value_and_grad(loss, has_aux=True)(params)
  accuracy = float(np.mean(np.argmax(np.asarray(logits), -1) == labels))
  grad_norm = float(np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(grad))))
  return float(value), grad_norm, accuracy


def test_landscape_task_on_digits(tmp_path):
  from configs import landscape as landscape_config
  from jaxland import tasks

  config = landscape_config.get_config('smoke')
  config.train.max_steps = 12
  config.train.trajectory_every_steps = 4
  config.landscape.probes = ('lines', 'dynamics', 'trajectory')
  c = config.landscape
  c.num_top, c.lanczos_steps, c.num_bulk, c.num_bottom, c.trace_probes = 2, 6, 1, 0, 2
  c.num_spectra = 2
  summary = tasks.run(config, str(tmp_path))
  out = tmp_path / 'landscape'
  assert summary['status'] == 'done'
  for name in ('lines.csv', 'dynamics.csv', 'trajectory.csv', 'profiles_lines.npz'):
    assert (out / name).exists(), name
  assert (out / 'lines_eigen.png').exists() and (out / 'summary.json').exists()
  # The line through the checkpoint at t = 0 is the train loss, computed here by hand.
  loss, grad_norm, _ = _hand_loss_and_accuracy(config, str(tmp_path / 'train'))
  t, profile_loss, _ = np.load(out / 'profiles_lines.npz')['eig0']
  np.testing.assert_allclose(profile_loss[np.flatnonzero(t == 0)[0]], loss, rtol=1e-5)
  np.testing.assert_allclose(summary['lines']['grad_norm'], grad_norm, rtol=1e-4)
  with pytest.raises(ValueError, match='probes'):
    config.landscape.probes = ('nope',)
    tasks.run(config, str(tmp_path))


def test_eigen_loads_its_own_files_and_spectrum_npz(tmp_path):
  rng = np.random.default_rng(0)
  vectors = np.linalg.qr(rng.standard_normal((20, 3)))[0].T.astype(np.float32)
  own = eigen_lib.Eigen(np.array([3.0, 2.0, 1.0]), vectors, np.zeros(3), 2, 7.5, 0.1, 40)
  back = eigen_lib.load(own.save(str(tmp_path / 'e.npz')))
  np.testing.assert_array_equal(back.vectors, vectors)
  assert (back.num_top, back.trace, back.step) == (2, 7.5, 40)
  assert back.bulk_mean() == pytest.approx((7.5 - 5.0) / 18)
  # The spectrum task's npz format (keys in jaxland/spectrum.py's docstring), here out of order.
  np.savez(
    tmp_path / 'spectrum.npz',
    eigenvalues=np.array([1.0, 3.0, 2.0]),
    eigenvectors=vectors,
    residuals=np.array([0.1, 0.3, 0.2]),
    trace=9.0,
    trace_stderr=0.5,
    step=np.int64(12),
  )
  spec = eigen_lib.load(str(tmp_path / 'spectrum.npz'))
  np.testing.assert_array_equal(spec.values, [3.0, 2.0, 1.0])
  np.testing.assert_array_equal(spec.vectors[0], vectors[1])
  np.testing.assert_array_equal(spec.residuals, [0.3, 0.2, 0.1])
  assert (spec.num_top, spec.trace, spec.step) == (3, 9.0, 12)
