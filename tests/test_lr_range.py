"""Range tests: divergence at 2 / lambda_max on least squares, weights left alone, the same step as
the training loop, suggestion rules and curve shapes on curves with known answers, the task."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from jaxland import lr, tasks
from jaxland.lr import range_test, suggest
from jaxland.optim import build
from jaxland.output import metrics
from jaxland.train import loop
from tests import helpers
from tests.helpers import flat


def digits_config(**lr_range_keys):
  """MLP on scikit-learn's digits (1300 train after 200 held out: 20 steps per epoch of 64)."""
  overrides = {'task': 'lr_range', 'data.val_size': 200, 'optim.momentum': 0.0}
  overrides |= {'lr_range.start': 1e-3, 'lr_range.end': 30.0, 'lr_range.num_steps': 30}
  overrides |= {'lr_range.eval_every': 10, 'lr_range.eval_size': 150}
  return helpers.digits_config(overrides | {f'lr_range.{k}': v for k, v in lr_range_keys.items()})


# --- The core on least squares --------------------------------------------------------------------


def least_squares(seed=0, n=256, d=16):
  """X with spread column scales, y = noise only: the optimum is not exactly representable, so
  float32 rounding keeps exciting every direction (as gradient noise does in SGD)."""
  rng = np.random.RandomState(seed)
  x = (rng.randn(n, d) * np.linspace(0.5, 2.0, d)).astype(np.float32)
  y = rng.randn(n).astype(np.float32)
  return x, y


def least_squares_step(x, y, tx):
  """Full-batch GD on 0.5 * mean squared error, the learning rate pinned by build.set_hparam."""
  x, y = jnp.asarray(x), jnp.asarray(y)

  def loss(w):
    return 0.5 * jnp.mean((x @ w - y) ** 2)

  @jax.jit
  def step(state, lr):
    w, opt_state = state
    opt_state = build.set_hparam(opt_state, 'learning_rate', lr)
    value, grad = jax.value_and_grad(loss)(w)
    updates, opt_state = tx.update(grad, opt_state, w)
    return (optax.apply_updates(w, updates), opt_state), {'loss': value}

  return step


@pytest.mark.parametrize('seed', [0, 1])
def test_least_squares_diverges_within_20_percent_of_two_over_lambda_max(seed):
  x, y = least_squares(seed)
  x64 = x.astype(np.float64)
  lam_max = np.linalg.eigvalsh(x64.T @ x64 / len(y)).max()  # H = X^T X / n.
  critical = 2 / lam_max
  config = default.get_config()
  config.optim.momentum = 0.0
  tx = build.make_optimizer(config, 1, 1)
  w0 = jnp.zeros(x.shape[1])
  values = range_test.sweep_values(critical / 100, critical * 10, 20000, 'log')
  result = range_test.sweep((w0, tx.init(w0)), least_squares_step(x, y, tx), values, sync_every=200)
  assert result.status == 'diverged'
  # GD on a quadratic contracts every direction below 2 / lambda_max: it cannot diverge before.
  assert critical <= result.stop_value <= 1.2 * critical, result.stop_value / critical
  # Before diverging it reached the least-squares minimum (numpy's lstsq as the oracle).
  w_star = np.linalg.lstsq(x64, y.astype(np.float64), rcond=None)[0]
  best = 0.5 * np.mean((x64 @ w_star - y) ** 2)
  np.testing.assert_allclose(result.loss.min(), best, rtol=1e-4)


def test_sweep_values_log_and_linear():
  v = range_test.sweep_values(1e-4, 10.0, 6, 'log')
  np.testing.assert_allclose(v, [1e-4, 1e-3, 1e-2, 1e-1, 1, 10], rtol=1e-12)
  np.testing.assert_allclose(
    range_test.sweep_values(0.0, 1.0, 5, 'linear'), [0, 0.25, 0.5, 0.75, 1]
  )
  with pytest.raises(ValueError, match='spacing'):
    lr.validate_section(digits_config(spacing='cubic'))
  for start, end in ((0.0, 1.0), (1.0, -1.0)):
    with pytest.raises(ValueError, match='log spacing'):
      lr.validate_section(digits_config(start=start, end=end))


def scripted(losses):
  """A step function replaying a loss sequence (the state counts calls)."""
  losses = np.asarray(losses, np.float32)
  return lambda state, value: (state + 1, {'loss': jnp.asarray(losses[int(state)])})


def test_smoothed_loss_is_the_bias_corrected_ema():
  rng = np.random.RandomState(0)
  losses, beta = rng.rand(50) + 1.0, 0.9
  r = range_test.sweep(jnp.zeros(()), scripted(losses), np.ones(50), smoothing=beta, sync_every=7)
  # Closed form: sum_j (1 - beta) beta^(i - j) x_j / (1 - beta^(i + 1)).
  i, j = np.arange(50)[:, None], np.arange(50)[None, :]
  weights = np.where(j <= i, (1 - beta) * beta ** (i - j), 0.0)
  expected = weights @ losses.astype(np.float32) / (1 - beta ** (np.arange(50) + 1))
  np.testing.assert_allclose(r.smooth_loss, expected, rtol=1e-6)
  constant = range_test.sweep(jnp.zeros(()), scripted(np.full(5, 2.5)), np.ones(5), smoothing=0.98)
  np.testing.assert_allclose(constant.smooth_loss, 2.5, rtol=1e-6)  # No bias towards 0.


def test_stops_at_the_first_loss_above_factor_times_best_or_non_finite():
  losses = [5.0, 3.0, 2.0, 1.0, 2.0, 3.9, 4.5, 1.0, 1.0]
  r = range_test.sweep(jnp.zeros(()), scripted(losses), np.arange(9.0), smoothing=0.0, sync_every=4)
  assert r.status == 'diverged' and r.stop_value == 6.0 and len(r.loss) == 7
  r = range_test.sweep(jnp.zeros(()), scripted([2.0, 1.0, np.nan, 1.0]), np.arange(4.0))
  assert r.status == 'non_finite' and r.stop_value == 2.0
  r = range_test.sweep(jnp.zeros(()), scripted(losses), np.arange(9.0), diverge_factor=0)
  assert r.status == 'completed' and r.stop_value is None and len(r.loss) == 9


def test_other_hyperparameters_get_the_lowest_loss_not_lr_rules():
  losses = [3.0, 2.0, 1.5, 1.0, 1.2, 2.0, 2.5]
  values = np.linspace(0.5, 0.99, 7)
  r = range_test.sweep(jnp.zeros(()), scripted(losses), values, param='momentum', smoothing=0.0)
  a = r.analyze()
  assert a['suggestions']['minimum_loss'] == values[3] and 'steepest' not in a['suggestions']
  assert 'recommended' not in a  # max_lr / min_lr are learning-rate advice only.


# --- The image driver -----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def digits_run(tmp_path_factory):
  config = digits_config()
  return loop.build_run(config, str(tmp_path_factory.mktemp('run')), writer=None)


def test_range_test_leaves_the_weights_and_repeats_exactly(digits_run):
  before = flat(digits_run.state.params), flat(digits_run.state.opt_state)
  sweeper = range_test.ImageSweeper(digits_run, eval_size=150)
  values = range_test.sweep_values(1e-3, 30.0, 30)
  first = sweeper('learning_rate', values, eval_every=10)
  # The given state is untouched (and alive: the step donates, so a missing copy would delete it).
  np.testing.assert_array_equal(flat(digits_run.state.params), before[0])
  np.testing.assert_array_equal(flat(digits_run.state.opt_state), before[1])
  second = sweeper('learning_rate', values, eval_every=10)
  np.testing.assert_array_equal(first.loss, second.loss)  # Same start, same batches.
  assert len(first.val_accuracy) >= 3 and 0 <= first.val_accuracy.min() <= 1


def test_constant_sweep_reproduces_the_training_loop_step_for_step(tmp_path):
  """The range test drives the loop's own step: at a constant value (and a pinned momentum) its
  per-iteration losses are the training loop's logged losses, across an epoch boundary."""
  config = digits_config()
  config.optim.learning_rate = 0.05
  config.optim.momentum = 0.9
  config.train.max_steps = 30
  config.train.log_every_steps = 1
  summary = loop.train_and_evaluate(config, str(tmp_path / 'train'))
  assert summary['status'] == 'done'
  logged = metrics.series(metrics.read_jsonl(str(tmp_path / 'train')), 'train/loss')[1]
  config.optim.learning_rate, config.optim.momentum = 0.7, 0.0  # Both pinned back below.
  run = loop.build_run(config, str(tmp_path / 'range'), writer=None)
  result = range_test.ImageSweeper(run)('learning_rate', np.full(30, 0.05), {'momentum': 0.9})
  np.testing.assert_allclose(result.loss, logged, rtol=1e-5)


def test_unknown_param_is_refused(digits_run):
  with pytest.raises(ValueError, match='Unknown hyperparameter'):
    range_test.ImageSweeper(digits_run)('lr', np.ones(3))


def test_task_on_digits_writes_png_csv_json_overlay_and_momentum_grid(tmp_path):
  config = digits_config(
    overlay='momentum', overlay_values=(0.0, 0.9), momentum_grid=(0.0, 0.9), grid_steps=10
  )
  config.optim.learning_rate = 0.1
  summary = tasks.run(config, str(tmp_path))
  assert summary['status'] == 'done' and summary['eval_split'] == 'val'
  names = ['learning_rate_log-momentum0', 'learning_rate_log-momentum0.9']
  assert sorted(summary['tests']) == names
  for name in names:
    for ext in ('png', 'csv', 'json'):
      assert os.path.getsize(tmp_path / f'{name}.{ext}') > 0
    analysis = json.load(open(tmp_path / f'{name}.json'))
    assert set(suggest.LOSS_RULES) <= set(analysis['suggestions'])
    assert analysis['shape'] in suggest.SHAPES
    rows = open(tmp_path / f'{name}.csv').read().strip().splitlines()
    assert len(rows) == 1 + analysis['iterations']
  assert summary['tests'][names[1]]['fixed'] == {'momentum': 0.9}
  for f in ('overlay.png', 'momentum_grid.png', 'summary.json', 'momentum_grid-momentum0.9.csv'):
    assert os.path.getsize(tmp_path / f) > 0
  assert set(summary['momentum_grid']['runs']) == {'0', '0.9'}
  keys = set().union(*metrics.read_jsonl(str(tmp_path)))
  assert f'lr_range/{names[0]}/smooth_loss' in keys and f'lr_range/{names[0]}/val_accuracy' in keys
  assert json.load(open(tmp_path / 'status.json'))['status'] == 'done'


def test_task_rejects_bad_settings(tmp_path):
  with pytest.raises(ValueError, match='overlay'):
    tasks.run(digits_config(overlay='depth', overlay_values=(1,)), str(tmp_path))
  with pytest.raises(ValueError, match='overlay_values'):
    tasks.run(digits_config(overlay='momentum'), str(tmp_path))
  with pytest.raises(ValueError, match='multiples of the 8 devices'):
    tasks.run(digits_config(overlay='batch_size', overlay_values=(64, 100)), str(tmp_path))
  assert not os.listdir(tmp_path)  # Refused before anything was written.


# --- Suggestion rules and shapes on synthetic curves ----------------------------------------------


def test_steepest_and_minimum_rules_on_a_known_curve():
  values = np.geomspace(1e-5, 10, 601)
  u = np.log10(values)
  loss = 2 - np.tanh(2 * (u + 2.5)) + np.exp(3 * (u - 0.5))  # Steepest descent at u = -2.5.
  assert suggest.steepest(values, loss) == pytest.approx(10**-2.5, rel=0.03)
  # Minimum: d/du = -2 sech^2(2(u+2.5)) + 3 exp(3(u-0.5)) = 0, solved numerically on a fine grid.
  fine = np.linspace(-3, 1, 400001)
  du = -2 / np.cosh(2 * (fine + 2.5)) ** 2 + 3 * np.exp(3 * (fine - 0.5))
  u_min = fine[np.argmin(np.abs(np.where(fine > -2.5, du, np.inf)))]
  assert suggest.minimum_10(values, loss) == pytest.approx(10**u_min / 10, rel=0.03)


def test_valley_is_fastais_point_on_the_longest_decrease():
  values = np.arange(100.0)
  loss = np.concatenate(
    [np.linspace(2.9, 3.0, 20), np.linspace(3.5, 1.0, 50), np.linspace(1.1, 5, 30)]
  )
  assert suggest.longest_decrease(loss) == (20, 69)
  # fastai: sections = (69 - 20) / 3 = 16.33; index 20 + int(16.33) + int(8.17) = 44.
  assert suggest.valley(values, loss) == 44.0


def test_robust_rule_resists_a_noise_spike_that_fools_the_steepest_slope():
  values = np.geomspace(1e-5, 10, 300)
  u = np.log10(values)
  loss = 2 - np.tanh(2 * (u + 2.5)) + np.exp(3 * (u - 0.5))
  spiky = loss.copy()
  spiky[60] += 0.6  # One bad batch at lr ~ 1e-4: the curve falls steeply right after it.
  s = suggest.loss_suggestions(values, spiky, skip_start=0, skip_end=0)
  assert s['steepest'] == pytest.approx(values[60], rel=0.05)  # Fooled by the spike.
  clean = suggest.loss_suggestions(values, loss, skip_start=0, skip_end=0)
  assert clean['steepest'] == pytest.approx(10**-2.5, rel=0.1)
  # The two rules the spike does not fool are unchanged and the median stays between them.
  assert (s['valley'], s['minimum_10']) == (clean['valley'], clean['minimum_10'])
  assert s['valley'] <= s['robust'] <= s['minimum_10']
  assert s['robust'] > 5 * values[60]


def test_trim_drops_fastais_ends_and_the_non_finite_tail():
  v, s = suggest.trim(np.arange(40.0), np.r_[np.ones(30), np.nan, np.ones(9)])
  np.testing.assert_array_equal(v, np.arange(3.0, 25.0))  # 30 finite: skip 3 and the last 5.


def test_accuracy_rules_peak_and_collapse():
  values = np.geomspace(1e-4, 10, 11)
  acc = np.array([0.1, 0.1, 0.3, 0.6, 0.8, 0.85, 0.8, 0.6, 0.4, 0.1, 0.1])
  s = suggest.accuracy_suggestions(values, acc)
  assert s['peak_accuracy'] == values[5]
  assert s['collapse'] == values[8]  # First below 0.1 + (0.85 - 0.1) / 2 = 0.475 after the peak.
  rec = suggest.recommend({'robust': 0.01}, s, values, np.ones(11), min_lr_div=4)
  assert rec['max_lr'] == values[5] and rec['min_lr'] == values[5] / 4


@pytest.mark.parametrize(
  'acc, shape',
  [
    ([0.1, 0.2, 0.5, 0.8, 0.85, 0.7, 0.4, 0.2], 'hill'),
    ([0.1, 0.2, 0.5, 0.8, 0.85, 0.86, 0.85, 0.84], 'plateau'),
    ([0.1, 0.3, 0.7, 0.8, 0.1, 0.1, 0.4, 0.7, 0.75], 'collapse_rise'),
    ([0.1, 0.3, 0.7, 0.8, 0.1, 0.1, 0.12, 0.1], 'hill'),
    ([0.1, 0.11, 0.1, 0.12, 0.1], 'flat'),
  ],
)
def test_curve_shapes(acc, shape):
  assert suggest.classify_shape(acc) == shape
