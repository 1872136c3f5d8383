"""The airbench recipe's pieces, each alone against an independent oracle (numpy, closed forms, a
transcription of the published update rules), then configs/cifar_fast.py:smoke through the loop."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import cifar_fast
from jaxland import config as config_lib
from jaxland import models, tasks, validation
from jaxland.data import pipeline
from jaxland.models import airbench
from jaxland.optim import groups, make_optimizer, muon, schedules
from jaxland.rundir import artifacts
from jaxland.train import steps
from tests.helpers import set_keys
from tests.test_optim import _config

RNG = np.random.default_rng(0)


def test_whitening_conv_decorrelates_the_patches_it_was_fit_on():
  # Oracle: the uncentred covariance of the conv's outputs over all positions must be
  # diag(l / (l + eps)) for the patch covariance's eigenvalues l, computed here from numpy's own
  # sliding windows (a wrong patch layout would leave the outputs correlated).
  images = RNG.normal(size=(64, 8, 8, 3)).cumsum(axis=1).astype(np.float32)  # Correlated pixels.
  kernel = airbench.whitening_kernel(images, k=2, eps=5e-4)
  windows = np.lib.stride_tricks.sliding_window_view(images, (2, 2), axis=(1, 2))  # N,7,7,C,2,2
  p = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12).astype(np.float64)
  eig = np.sort(np.linalg.eigvalsh(p.T @ p / len(p)))[::-1]
  y = jax.lax.conv_general_dilated(
    images, kernel, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )
  y = np.asarray(y, np.float64).reshape(-1, 24)
  cov = y.T @ y / len(y)
  expected = np.diag(eig / (eig + 5e-4))
  np.testing.assert_allclose(cov[:12, :12], expected, atol=2e-4)
  np.testing.assert_allclose(cov[12:, 12:], expected, atol=2e-4)  # The negated copies.


def test_dirac_init_passes_the_first_channels_through():
  kernel = airbench.dirac_conv_init(jax.random.PRNGKey(0), (3, 3, 5, 7))
  x = jnp.asarray(RNG.normal(size=(2, 6, 6, 5)), jnp.float32)
  y = jax.lax.conv_general_dilated(
    x, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )
  np.testing.assert_array_equal(np.asarray(y[..., :5]), np.asarray(x))
  assert float(jnp.abs(kernel[..., 5:]).max()) <= 1 / np.sqrt(45) + 1e-6  # PyTorch's default.


def test_airbench_model_shapes_init_from_data_and_frozen_kernel_gradient():
  model = models.get_model('airbench_tiny', conv_backward='matmul')  # Compiles fast.
  images = RNG.integers(0, 256, size=(300, 32, 32, 3), dtype=np.uint8)
  mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
  params, stats = models.init_variables(model, (32, 32, 3), 0, (images, mean, std))
  x = (images[:256].astype(np.float32) / 255 - 0.5) / 0.25
  np.testing.assert_allclose(params['whiten']['kernel'], airbench.whitening_kernel(x, 2), rtol=1e-6)
  assert set(stats) == {f'group{i}_norm{j}' for i in range(3) for j in (1, 2)}
  assert 'scale' not in params['group0_norm1']  # BatchNorm without a trained scale.

  def loss(p):
    logits, _ = model.apply(
      {'params': p, 'batch_stats': stats}, x[:4], train=True, mutable=['batch_stats']
    )
    return logits.sum()

  grads = jax.jit(jax.grad(loss))(params)
  assert float(jnp.abs(grads['whiten']['kernel']).max()) == 0.0
  assert float(jnp.abs(grads['whiten']['bias']).max()) > 0.0
  with pytest.raises(ValueError, match='train_data'):
    models.init_variables(model, (32, 32, 3), 0)


def test_the_whitening_ablation_keeps_the_default_init_and_trains_the_first_conv():
  config = smoke_config('smoke,whiten=random')
  config_lib.validate(config, num_devices=1)
  model = models.from_config(config.model, 10)
  images = RNG.integers(0, 256, size=(300, 32, 32, 3), dtype=np.uint8)
  params, stats = models.init_variables(model, (32, 32, 3), 0, (images, (0.5,) * 3, (0.25,) * 3))
  plain = model.init({'params': jax.random.PRNGKey(0)}, jnp.zeros((1, 32, 32, 3)), train=False)
  np.testing.assert_array_equal(params['whiten']['kernel'], plain['params']['whiten']['kernel'])
  x = (images[:8].astype(np.float32) / 255 - 0.5) / 0.25
  assert not np.allclose(params['whiten']['kernel'], airbench.whitening_kernel(x, 2), atol=0.1)

  def loss(p):
    logits, _ = model.apply(
      {'params': p, 'batch_stats': stats}, x[:4], train=True, mutable=['batch_stats']
    )
    return logits.sum()

  grads = jax.jit(jax.grad(loss))(params)
  assert float(jnp.abs(grads['whiten']['kernel']).max()) > 0.0
  moved = _apply(make_optimizer(config, 8, 32), [grads], params)[0]['whiten']
  assert not np.array_equal(moved['kernel'], params['whiten']['kernel'])
  assert not np.array_equal(moved['bias'], params['whiten']['bias'])
  assert cifar_fast.get_config('smoke').optim.freeze[0][0] == '^whiten/kernel'  # The recipe's.
  with pytest.raises(ValueError, match="whiten='none'"):
    cifar_fast.get_config('smoke,whiten=none')


def _np_newton_schulz(g, steps, eps=1e-7):
  """airbench94_muon's zeropower_via_newtonschulz5, transcribed to float64 numpy."""
  a, b, c = 3.4445, -4.7750, 2.0315
  x = g / (np.linalg.norm(g) + eps)
  if g.shape[0] > g.shape[1]:
    x = x.T
  for _ in range(steps):
    m = x @ x.T
    x = a * x + (b * m + c * m @ m) @ x
  return x.T if g.shape[0] > g.shape[1] else x


def _np_muon_steps(w, grads, lr, momentum, steps=3):
  """airbench94_muon's Muon.step on a torch-layout [out, in, k, k] weight, per gradient."""
  buf, out = np.zeros_like(w), []
  for g in grads:
    buf = momentum * buf + g
    d = g + momentum * buf
    w = w * (len(w) ** 0.5 / np.linalg.norm(w))
    w = w - lr * _np_newton_schulz(d.reshape(len(d), -1), steps).reshape(w.shape)
    out.append(w)
  return out


def test_newton_schulz_is_airbenchs_and_spreads_singular_values_around_one():
  for shape in ((6, 20), (20, 6)):
    g = RNG.normal(size=shape)
    got = muon.newton_schulz(jnp.asarray(g, jnp.float32), 3, jnp.float32)
    np.testing.assert_allclose(got, _np_newton_schulz(g, 3), rtol=1e-4, atol=1e-5)
    s = np.linalg.svd(np.asarray(muon.newton_schulz(jnp.asarray(g), 5, jnp.float32)), False, False)
    assert 0.6 < s.min() and s.max() < 1.25, s  # Not U V^T: near 1, as the coefficients intend.
  assert muon.newton_schulz(jnp.ones((4, 8)), 3).dtype == jnp.float32  # bf16 inside, f32 out.


def test_muon_matches_airbenchs_step_on_a_flax_conv_kernel():
  w = RNG.normal(size=(5, 3, 3, 3)).astype(np.float32)  # torch [out, in, k, k]
  grads = [RNG.normal(size=w.shape).astype(np.float32) for _ in range(4)]
  want = _np_muon_steps(w.astype(np.float64), [g.astype(np.float64) for g in grads], 0.24, 0.6)
  flax = lambda t: np.transpose(t, (2, 3, 1, 0))  # noqa: E731  [k, k, in, out]
  tx = muon.muon(0.24, 0.6, nesterov=True, ns_steps=3, ns_dtype=jnp.float32)
  got = _apply(tx, [{'k': flax(g)} for g in grads], {'k': flax(w)})
  for g, wt in zip(got, want, strict=True):
    np.testing.assert_allclose(g['k'], flax(wt), rtol=1e-4, atol=1e-5)


def test_the_muon_recipe_splits_filters_from_biases_and_head():
  published = cifar_fast.get_config('muon')
  assert published.optim.lookahead.every_steps == 0 and published.model.head_unit_std
  assert published.data.batch_size == 2000 and published.model.head_scale == 1 / 256
  config = smoke_config('smoke,muon', **{'optim.lookahead.every_steps': 0})
  config_lib.validate(config, num_devices=1)
  o = config.optim
  params = {
    'group0_conv1': {'kernel': np.ones((3, 3, 2, 4), np.float32)},
    'group0_norm1': {'bias': np.ones(4, np.float32)},
    'head': {'kernel': np.ones((4, 10), np.float32)},
  }
  grads = [jax.tree.map(lambda p: RNG.normal(size=p.shape).astype(np.float32), params)]
  got = _apply(make_optimizer(config, 8, 32), grads, params)[0]
  want_conv = _np_muon_steps(
    np.transpose(params['group0_conv1']['kernel'], (3, 2, 0, 1)).astype(np.float64),
    [np.transpose(grads[0]['group0_conv1']['kernel'], (3, 2, 0, 1)).astype(np.float64)],
    o.muon.learning_rate,
    o.muon.momentum,
  )[0]  # fmt: skip  (bfloat16 Newton-Schulz: 1e-2)
  np.testing.assert_allclose(
    got['group0_conv1']['kernel'], np.transpose(want_conv, (2, 3, 1, 0)), atol=2e-2
  )
  for name, scale in (('head', 1.0), ('group0_norm1', 0.053 / 0.67)):
    (key,) = params[name]
    p, g = params[name][key], grads[0][name][key]
    # Nesterov SGD's first step: lr x s x (1 + momentum) x (g + L2 / s x p), PyTorch's.
    want = p - o.learning_rate * scale * (1 + o.momentum) * (g + o.weight_decay / scale * p)
    np.testing.assert_allclose(got[name][key], want, rtol=1e-5)
  with pytest.raises(validation.ConfigError, match='optim.grad_clip_norm'):
    config_lib.validate(set_keys(smoke_config('smoke,muon'), {'optim.grad_clip_norm': 1.0}), 1)


def test_triangle_schedule_is_airbenchs_line():
  total, peak = 476, int(0.23 * 476)
  config = _config(**{'optim.schedule.name': 'triangle', 'optim.schedule.pct_start': 0.23})
  lr = schedules.make_schedules(config.optim, 48, total)['learning_rate']
  steps_ = np.arange(total + 5)
  expected = 0.01 * np.interp(steps_, [0, peak, total], [0.2, 1.0, 0.07])
  np.testing.assert_allclose(np.asarray(jax.vmap(lr)(steps_)), expected, rtol=1e-5)
  # pct_start 0: airbench94_muon's lr x (1 - step / total), from the update count 0.
  muon_line = {'start_factor': 1.0, 'pct_start': 0.0, 'end_factor': 0.0}
  config = _config(**{'optim.schedule.name': 'triangle'}, **{
    f'optim.schedule.{k}': v for k, v in muon_line.items()
  })  # fmt: skip
  lr = schedules.make_schedules(config.optim, 25, 200)['learning_rate']
  expected = 0.01 * np.maximum(1 - np.arange(205) / 200, 0)
  np.testing.assert_allclose(np.asarray(jax.vmap(lr)(np.arange(205))), expected, atol=1e-9)


P = {
  'norm': {'bias': np.array([0.5, -1.0], np.float32)},
  'conv': {'kernel': np.array([2.0, 3.0], np.float32)},
}
G = [
  {
    'norm': {'bias': np.array([0.1, 0.2], np.float32)},
    'conv': {'kernel': np.array([-0.3, 0.4], np.float32)},
  }
] * 3


def _apply(tx, grads, params=P):
  params = jax.tree.map(jnp.asarray, params)
  state = tx.init(params)
  update = jax.jit(tx.update)
  out = []
  for g in grads:
    u, state = update(jax.tree.map(jnp.asarray, g), state, params)
    params = optax.apply_updates(params, u)
    out.append(jax.tree.map(np.asarray, params))
  return out


def test_lr_scale_is_a_pytorch_param_group_with_lr_times_s_and_decay_over_s():
  # PyTorch airbench: group lr_b = s lr with weight_decay wd / s (so lr_b x decay = lr wd);
  # SGD nesterov: d = g + wd_g p; buf = m buf + d; p -= lr_g (d + m buf).
  lr, m, wd, s = 0.1, 0.85, 0.01, 64.0
  config = _config(**{
    'optim.learning_rate': lr, 'optim.momentum': m, 'optim.nesterov': True,
    'optim.weight_decay': wd, 'optim.lr_scales': (('^norm/', s),),
  })  # fmt: skip
  got = _apply(make_optimizer(config, 10, 10), G)
  for name, lr_g, wd_g in (('norm', lr * s, wd / s), ('conv', lr, wd)):
    leaf = 'bias' if name == 'norm' else 'kernel'
    p, buf = P[name][leaf].astype(np.float64), None
    for i, g in enumerate(G):
      d = g[name][leaf] + wd_g * p
      buf = d if buf is None else m * buf + d
      p = p - lr_g * (d + m * buf)
      np.testing.assert_allclose(got[i][name][leaf], p, rtol=1e-5)


def test_freeze_stops_updates_and_decay_from_its_epoch():
  config = _config(**{
    'optim.learning_rate': 0.1, 'optim.weight_decay': 0.5,
    'optim.freeze': (('^conv/', 0.0), ('^norm/', 0.2)),  # 0.2 epochs of 10 steps: 2 steps.
  })  # fmt: skip
  got = _apply(make_optimizer(config, 10, 10), G)
  free = _apply(
    make_optimizer(_config(**{'optim.learning_rate': 0.1, 'optim.weight_decay': 0.5}), 10, 10), G
  )
  for out in got:
    np.testing.assert_array_equal(out['conv']['kernel'], P['conv']['kernel'])
  np.testing.assert_array_equal(got[1]['norm']['bias'], free[1]['norm']['bias'])
  np.testing.assert_array_equal(got[2]['norm']['bias'], got[1]['norm']['bias'])


def _airbench_lookahead(params, grads, lr, every, start_epochs, spe, total, base, power):
  """A transcription of airbench94's loop: SGD steps, LookaheadState every `every` steps from
  epoch `start_epochs`, and a copy back at each epoch's end."""
  net, ema, out, step = params.copy(), None, [], 0
  for epoch in range(-(-total // spe)):
    for _ in range(spe):
      net = net - lr * grads[step]
      step += 1
      if epoch >= start_epochs and step % every == 0:
        if ema is None:
          ema = net.copy()
        else:
          rho = base**every * (step / total) ** power
          ema = ema + (1 - rho) * (net - ema)  # lerp_(net, 1 - rho)
          net = ema.copy()
      out.append(net.copy())
      if step >= total:
        break
    if ema is not None:
      net = ema.copy()
      out[-1] = net.copy()
  return out


def test_lookahead_matches_airbenchs_loop():
  spe, total, every, lr = 7, 40, 5, 0.1
  grads = RNG.normal(size=(total, 3)).astype(np.float32)
  expected = _airbench_lookahead(np.ones(3), grads, lr, every, 2, spe, total, 0.95, 3.0)
  tx = groups.lookahead(
    optax.sgd(lr), every=every, start=2 * spe, total=total, steps_per_epoch=spe,
    decay_base=0.95, decay_pow=3.0,
  )  # fmt: skip
  params = jnp.ones(3, jnp.float32)
  state = tx.init(params)
  update = jax.jit(tx.update)
  for i in range(total):
    u, state = update(jnp.asarray(grads[i]), state, params)
    params = optax.apply_updates(params, u)
    np.testing.assert_allclose(np.asarray(params), expected[i], rtol=2e-5, atol=2e-6, err_msg=i)


def test_alternating_flip_inverts_every_other_epoch():
  key, ids = jax.random.PRNGKey(3), jnp.asarray(RNG.permutation(1000)[:500])
  e0, e1, e2 = (np.asarray(pipeline.alternating_flips(key, ids, e, 1000)) for e in (0, 1, 2))
  np.testing.assert_array_equal(e1, ~e0)
  np.testing.assert_array_equal(e2, e0)
  assert 0.4 < e0.mean() < 0.6
  images = jnp.asarray(RNG.integers(0, 255, size=(4, 5, 5, 1)), jnp.uint8)
  flips = jnp.asarray([True, False, True, False])
  out = np.asarray(
    pipeline.augment(images, key, pipeline.Augment(flip=True, flip_mode='alternating'), flips)
  )
  np.testing.assert_array_equal(out[0], np.asarray(images)[0, :, ::-1])
  np.testing.assert_array_equal(out[1], np.asarray(images)[1])


def test_reflect_translate_is_a_window_of_numpys_reflect_pad():
  images = RNG.integers(0, 255, size=(16, 6, 6, 2)).astype(np.uint8)
  aug = pipeline.Augment(crop=True, pad=2, pad_mode='reflect')
  out = np.asarray(pipeline.augment(jnp.asarray(images), jax.random.PRNGKey(0), aug))
  for img, got in zip(images, out, strict=True):
    padded = np.pad(img, ((2, 2), (2, 2), (0, 0)), mode='reflect')
    windows = [padded[dy : dy + 6, dx : dx + 6] for dy in range(5) for dx in range(5)]
    assert any(np.array_equal(got, w) for w in windows)


def test_tta_levels_average_the_published_views():
  x = RNG.normal(size=(3, 6, 6, 2)).astype(np.float32)
  w = RNG.normal(size=(72, 4)).astype(np.float32)

  def f(v):
    return np.asarray(v, np.float64).reshape(len(v), -1) @ w

  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
  views = [x, padded[:, :6, :6], padded[:, 2:, 2:]]
  mirror = [0.5 * f(v) + 0.5 * f(v[:, :, ::-1]) for v in views]
  expected = {0: f(x), 1: mirror[0], 2: 0.5 * mirror[0] + 0.25 * (mirror[1] + mirror[2])}
  apply = lambda v: v.reshape(v.shape[0], -1) @ jnp.asarray(w)
  for level, e in expected.items():
    np.testing.assert_allclose(
      np.asarray(steps.tta_logits(apply, jnp.asarray(x), level)), e, rtol=1e-4, atol=1e-5
    )


def smoke_config(arg='smoke', **overrides):
  config = cifar_fast.get_config(arg)
  config.data.name = 'synthetic'
  config.data.synthetic.num_train = 256
  config.data.synthetic.num_test = 128
  config.data.train_subset = config.data.test_subset = 0
  config.data.batch_size = 128  # 2 steps an epoch: 4 epochs, so the epoch-3 switches act.
  config.data.eval_batch_size = 128
  config.optim.lookahead.every_steps = 1  # Its EMA starts at step 7 and copies back at 8.
  return set_keys(config, overrides)


@pytest.mark.parametrize(
  'key, value, message',
  [
    ('optim.lr_scales', (('no_such_layer', 2.0),), r'optim.lr_scales .*no_such_layer.*matches no'),
    ('optim.muon.pattern', 'no_such_layer', r'optim.muon.pattern .*matches no'),
    ('optim.muon.pattern', '_norm1/bias', r'optim.muon.pattern .*needs matrices.*group0_norm1'),
  ],
)
def test_a_pattern_that_matches_no_parameter_is_one_line_before_anything_is_written(
  tmp_path, key, value, message
):
  config = smoke_config(**{key: value})
  with pytest.raises(validation.ConfigError, match=message):
    tasks.run(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_a_schedule_too_short_for_its_peak_is_one_line_before_anything_is_written(tmp_path):
  config = smoke_config(**{'train.max_steps': 2})  # The triangle's peak: int(0.23 x 2) = step 0.
  with pytest.raises(validation.ConfigError, match=r'optim.schedule.pct_start = 0.23 .*2 steps'):
    tasks.run(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('arg', ['smoke', 'smoke,muon'])
def test_cifar_fast_smoke_trains_through_the_loop_with_frozen_groups_and_clock(tmp_path, arg):
  overrides = {'train.target_accuracy': 0.01, 'train.trajectory_every_steps': 2}
  config = smoke_config(arg, **overrides, **{'train.checkpoint_every_epochs': 4})
  summary = tasks.run(config, str(tmp_path))
  assert summary['status'] == 'done' and summary['step'] == 8
  assert 0 < summary['compile_seconds'] < summary['seconds']
  assert summary['seconds_to_target'] is not None
  assert summary['seconds_to_target_without_compile'] < summary['seconds_to_target']
  rows = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  elapsed = [r['elapsed_time'] for r in rows if 'elapsed_time' in r]
  assert len(elapsed) == 4 and elapsed == sorted(elapsed)
  params = {s: artifacts.load_trajectory(str(tmp_path), s) for s in (0, 4, 6, 8)}
  for s in (4, 6, 8):  # The whitening kernel never moves; its bias stops after epoch 3.
    np.testing.assert_array_equal(params[s]['whiten']['kernel'], params[0]['whiten']['kernel'])
  assert not np.array_equal(params[4]['whiten']['bias'], params[0]['whiten']['bias'])
  np.testing.assert_array_equal(params[8]['whiten']['bias'], params[6]['whiten']['bias'])
  assert not np.array_equal(params[8]['head']['kernel'], params[6]['head']['kernel'])


# The research lines on configs/cifar_fast.py:smoke, unchanged: nothing in the recipe is special to
# the loop. 8 steps of 64, anchor at epoch 1; no TTA (the smoke test above covers it; here it would
# only add compilation). Three tests, so that xdist's workers share them.
SHORT = {'train.num_epochs': 2, 'train.max_steps': 0, 'data.batch_size': 64, 'train.tta': 0}


def test_anchors_snapshots_and_the_spectrum_callback_run_on_the_fast_smoke(tmp_path):
  config = smoke_config('smoke,lines=repulsion-spectrum', **SHORT)  # As on the command line.
  research = {'repulsion.enabled': True, 'repulsion.strength': 1.0}
  research |= {'repulsion.anchor_epochs': (1,), 'repulsion.snapshot_epochs': (1, 2)}
  research |= {'spectrum.every_steps': 8, 'spectrum.num_examples': 128, 'spectrum.top_k': 2}
  research |= {'spectrum.bottom_k': 0, 'spectrum.lanczos_steps': 4, 'spectrum.slq_probes': 0}
  research |= {'spectrum.trace_probes': 0}
  summary = tasks.run(set_keys(config, research), str(tmp_path / 'anchored'))
  assert summary['status'] == 'done' and summary['step'] == 8
  rows = [json.loads(line) for line in open(tmp_path / 'anchored' / 'metrics.jsonl')]
  logged = set().union(*rows)
  assert {'anchor/0/distance', 'ensemble/accuracy', 'spectrum/top_0'} <= logged, logged
  assert [e for e, _ in artifacts.list_snapshots(str(tmp_path / 'anchored'))] == [1, 2]


def test_an_lr_range_test_runs_on_the_fast_smoke(tmp_path):
  config = smoke_config('smoke,lines=lr_range', **{'task': 'lr_range', 'train.tta': 0})
  ranges = {'lr_range.start': 1e-3, 'lr_range.end': 10.0, 'lr_range.num_steps': 6}
  ranges |= {'lr_range.eval_every': 3, 'lr_range.eval_size': 128}
  summary = tasks.run(set_keys(config, ranges), str(tmp_path / 'range'))
  assert summary['status'] == 'done' and summary['tests'], summary


def test_a_sweep_of_seeds_trains_the_fast_smoke_as_one_population(tmp_path, capsys):
  import ml_collections

  from jaxland import sweep
  from jaxland.sweep import run as sweep_run

  seeds = ml_collections.ConfigDict()
  seeds.name = 'fast_seeds'
  seeds.base = smoke_config(**SHORT)
  seeds.space = sweep.values('seed', [0, 1])
  results = sweep_run.run(seeds, str(tmp_path / 'sweep'), vectorize=2)
  assert results == {'seed=0': 'done', 'seed=1': 'done'}, results
  assert '2 points in 1 population(s)' in capsys.readouterr().out
