"""Tests of jaxland.landscape.interventions and the `intervene` task: closed forms on an explicit
quadratic, hand-computed transform updates, sample statistics, and the heavy-ball closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxland.landscape import dynamics
from jaxland.landscape.intervene import interventions as iv
from tests.test_landscape import _hand_loss_and_accuracy


def _quadratic(dim=6, seed=0):
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
  values = np.geomspace(10.0, 0.1, dim)
  a = q @ np.diag(values) @ q.T
  centre = rng.standard_normal(dim)
  loss = lambda th: 0.5 * (th - centre) @ a @ (th - centre)
  grad = lambda th: a @ (th - centre)
  return a, centre, values, q.T, loss, grad  # vectors as rows


def test_snap_with_every_direction_reaches_the_exact_minimum():
  a, centre, values, vectors, loss, grad = _quadratic()
  theta = np.random.default_rng(1).standard_normal(6)
  snapped = iv.snap(theta, grad(theta), values, vectors, threshold=-np.inf)
  np.testing.assert_allclose(snapped, centre, atol=1e-10)
  assert loss(snapped) == pytest.approx(0.0, abs=1e-18)


def test_snap_above_a_threshold_zeroes_only_those_gradient_components():
  a, centre, values, vectors, loss, grad = _quadratic()
  theta = np.random.default_rng(2).standard_normal(6)
  snapped = iv.snap(theta, grad(theta), values, vectors, threshold=values[2])
  g_after = vectors @ grad(snapped)
  np.testing.assert_allclose(g_after[:3], 0.0, atol=1e-10)
  np.testing.assert_allclose(g_after[3:], (vectors @ grad(theta))[3:], rtol=1e-10)
  decrease = iv.snap_predicted_decrease(grad(theta), values, vectors, values[2])
  assert loss(theta) - loss(snapped) == pytest.approx(decrease, rel=1e-10)
  np.testing.assert_array_equal(iv.snap(theta, grad(theta), values, vectors, np.inf), theta)


def test_band_noise_lies_in_its_band_with_the_right_scale():
  rng = np.random.default_rng(0)
  dim, k = 30, 4
  vectors = np.linalg.qr(rng.standard_normal((dim, k)))[0].T
  values = np.array([16.0, 4.0, 1.0, 0.25])
  draws = {
    b: np.stack([iv.band_noise(rng, b, 0.5, values, vectors) for _ in range(4000)])
    for b in iv.BANDS
  }
  outside = lambda e: e - (e @ vectors.T) @ vectors
  np.testing.assert_allclose(outside(draws['top']), 0.0, atol=1e-12)
  np.testing.assert_allclose(draws['bulk'] @ vectors.T, 0.0, atol=1e-12)
  assert np.mean(np.sum(draws['top'] ** 2, 1)) == pytest.approx(0.25 * k, rel=0.05)
  assert np.mean(np.sum(draws['bulk'] ** 2, 1)) == pytest.approx(0.25 * (dim - k), rel=0.05)
  assert np.mean(np.sum(draws['all'] ** 2, 1)) == pytest.approx(0.25 * dim, rel=0.05)
  std = (draws['posterior'] @ vectors.T).std(0)
  np.testing.assert_allclose(std, 0.5 / np.sqrt(values), rtol=0.05)
  with pytest.raises(ValueError, match='band'):
    iv.band_noise(rng, 'middle', 0.1, values, vectors)


def test_eigen_scale_rescales_components_of_a_two_leaf_update():
  rng = np.random.default_rng(0)
  params = {'a': jnp.zeros((2, 3)), 'b': jnp.zeros(4)}
  vectors = np.linalg.qr(rng.standard_normal((10, 2)))[0].T
  scales = np.array([0.1, 3.0])
  tx = iv.eigen_scale(vectors, scales)
  state = tx.init(params)
  updates = {
    'a': jnp.asarray(rng.standard_normal((2, 3)), jnp.float32),
    'b': jnp.asarray(rng.standard_normal(4), jnp.float32),
  }
  new, _ = jax.jit(tx.update)(updates, state)
  u = np.concatenate([np.asarray(updates['a']).ravel(), np.asarray(updates['b'])])
  expected = u + ((scales - 1) * (vectors @ u)) @ vectors
  got = np.concatenate([np.asarray(new['a']).ravel(), np.asarray(new['b'])])
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='entries'):
    iv.eigen_scale(vectors[:, :5], scales).init(params)


def test_eigen_scale_after_sgd_is_a_per_direction_learning_rate():
  a, centre, values, vectors, loss, grad = _quadratic()
  scales = np.array([0.01, 0.1, 1.0, 1.0, 2.0, 1.0])
  lr = 0.05
  tx = optax.chain(optax.sgd(lr), iv.eigen_scale(vectors, scales))
  theta = jnp.asarray(np.random.default_rng(3).standard_normal(6), jnp.float32)
  updates, _ = tx.update(jnp.asarray(grad(np.asarray(theta)), jnp.float32), tx.init(theta))
  per_direction = -lr * scales * (vectors @ grad(np.asarray(theta, np.float64)))
  np.testing.assert_allclose(vectors @ np.asarray(updates), per_direction, rtol=1e-4, atol=1e-7)


def test_bayes_scales_make_the_stationary_variance_the_posterior():
  lr, mu, b, n, temp = 0.05, 0.9, 128, 4000, 1.0
  lam = np.array([20.0, 5.0, 1.0])
  noise = np.array([10.0, 4.0, 1.5])  # Per-example gradient variance along each direction.
  s = iv.bayes_scales(noise, lr, mu, b, n, temp, max_scale=np.inf)
  var = dynamics.stationary_variance(lr * s, mu, lam, noise / b)
  # lr * s * lam is small here, where the heavy-ball variance is lr C / (2 b lam (1 - mu)).
  np.testing.assert_allclose(var, temp / (n * lam), rtol=1e-2)
  assert iv.bayes_eigenvalue(lr, mu, b, n) == pytest.approx(2 * b * (1 - mu) / (n * lr))
  assert np.all(iv.bayes_scales(noise * 1e-6, lr, mu, b, n, max_scale=1.0) == 1.0)


def test_ensemble_metrics_by_hand():
  labels = np.array([0, 1])
  a = np.log(np.array([[0.9, 0.1], [0.6, 0.4]]))
  b = np.log(np.array([[0.5, 0.5], [0.2, 0.8]]))
  out = iv.ensemble_metrics([a, b], labels)
  assert out['ensemble_accuracy'] == 1.0  # Mean probabilities [[0.7, 0.3], [0.4, 0.6]].
  assert out['ensemble_loss'] == pytest.approx(-(np.log(0.7) + np.log(0.6)) / 2)
  assert out['member_accuracy'] == pytest.approx((0.5 + 1.0) / 2)  # b's tie goes to class 0.
  assert out['member_loss'] == pytest.approx(
    (-(np.log(0.9) + np.log(0.4)) / 2 - (np.log(0.5) + np.log(0.8)) / 2) / 2
  )


def test_intervene_task_on_digits(tmp_path):
  from configs import intervene as intervene_config
  from jaxland import tasks

  config = intervene_config.get_config('smoke')
  config.train.max_steps = 12
  config.train.trajectory_every_steps = 4
  config.intervene.snap_steps = (-1, 4)
  config.intervene.experiments = ('snap', 'noise', 'precond')
  config.intervene.noise_bands = ('top', 'all')
  config.intervene.temperatures = ()  # precond: plain SGD and the Hessian-based eigen-LRs.
  config.landscape.num_top, config.landscape.lanczos_steps = 2, 6
  config.landscape.trace_probes = 2
  config.landscape.per_example_examples = 50
  summary = tasks.run(config, str(tmp_path))
  out = tmp_path / 'intervene'
  assert summary['status'] == 'done'
  for name in ('snap.csv', 'noise.csv', 'precond.csv', 'precond_directions.csv', 'snap.png'):
    assert (out / name).exists(), name
  rows = (out / 'snap.csv').read_text().splitlines()
  assert len(rows) == 1 + 2 * 3  # Two points, each: nothing snapped, then the 2 top directions.
  # Nothing snapped at the checkpoint: its test accuracy, computed here by hand.
  first = dict(zip(rows[0].split(','), rows[1].split(','), strict=True))
  _, _, accuracy = _hand_loss_and_accuracy(config, str(tmp_path / 'train'), 'test')
  assert float(first['test_accuracy']) == pytest.approx(accuracy, abs=1e-6)


def test_intervene_continuations_and_lr_runs_on_digits(tmp_path):
  """batch1 (continuations with the loop's step) and lr (new runs, annealed) end to end."""
  from configs import intervene as intervene_config
  from jaxland import tasks

  config = intervene_config.get_config('smoke')
  config.train.max_steps = 12
  config.intervene.experiments = ('batch1', 'lr')
  config.intervene.batch1_examples = 64
  config.intervene.lr_values = (0.01, 0.1)
  config.landscape.num_top, config.landscape.lanczos_steps = 2, 6
  config.landscape.per_example_examples = 50
  summary = tasks.run(config, str(tmp_path))
  out = tmp_path / 'intervene'
  assert summary['status'] == 'done'
  assert len((out / 'batch1.csv').read_text().splitlines()) == 1 + 3  # start, two variants.
  lr_rows = (out / 'lr.csv').read_text().splitlines()
  assert len(lr_rows) == 1 + 2 and lr_rows[1].startswith('0.01,')
  # The LR run's final train loss, computed here by hand from its checkpoint.
  first = dict(zip(lr_rows[0].split(','), lr_rows[1].split(','), strict=True))
  loss, _, _ = _hand_loss_and_accuracy(config, str(out / 'lr_runs' / 'lr_0.01'))
  assert float(first['train_loss']) == pytest.approx(loss, rel=1e-5)
  assert len((out / 'lr_directions.csv').read_text().splitlines()) == 1 + 2 * 2
