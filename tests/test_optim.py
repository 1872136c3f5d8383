"""The optax chain against numpy loops of PyTorch's documented SGD / Adam / AdamW updates."""

import importlib.util
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxland import config as config_lib
from jaxland import distance
from jaxland.optim import current_hparams, make_optimizer, set_hparam


def _config(**overrides):
  path = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'default.py'
  spec = importlib.util.spec_from_file_location('jaxland_default_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  if any(k.startswith('repulsion.') for k in overrides):
    config.repulsion = distance.defaults()
  for dotted, value in overrides.items():
    *parents, last = dotted.split('.')
    node = config
    for p in parents:
      node = node[p]
    node[last] = value
  return config


RNG = np.random.default_rng(0)
P0 = {
  'w': RNG.normal(size=(3, 2)).astype(np.float32),
  'b': RNG.normal(size=(2,)).astype(np.float32),
}
GRADS = [{k: RNG.normal(size=v.shape).astype(np.float32) for k, v in P0.items()} for _ in range(3)]


def _run(tx, steps=3, grads=GRADS):
  """Applies `grads` through jax.jit(tx.update); returns the params after each step."""
  params = jax.tree.map(jnp.asarray, P0)
  state = tx.init(params)
  update = jax.jit(tx.update)
  out = []
  for g in grads[:steps]:
    updates, state = update(jax.tree.map(jnp.asarray, g), state, params)
    params = optax.apply_updates(params, updates)
    out.append(jax.tree.map(np.asarray, params))
  return out, state


def _assert_close(actual, expected, rtol=1e-5):
  for a, e in zip(actual, expected, strict=True):
    for k in P0:
      np.testing.assert_allclose(a[k], e[k], rtol=rtol, atol=1e-6)


def _np_sgd(lr, mu, wd, nesterov, grads=GRADS, dwd=0.0):
  """torch.optim.SGD (dampening 0): d = g + wd p; buf = mu buf + d; d = d + mu buf | buf."""
  p = {k: v.astype(np.float64) for k, v in P0.items()}
  buf = {k: np.zeros_like(v) for k, v in p.items()}
  out = []
  for g in grads:
    for k in p:
      d = g[k] + wd * p[k]
      buf[k] = mu * buf[k] + d
      d = d + mu * buf[k] if nesterov else buf[k]
      p[k] = p[k] - lr * d - lr * dwd * p[k]
    out.append({k: v.copy() for k, v in p.items()})
  return out


def _np_adam(lr, b1, b2, eps, wd, decoupled_wd, grads=GRADS):
  """torch.optim.Adam (wd: g += wd p) and AdamW (p *= 1 - lr wd) from their documented updates."""
  p = {k: v.astype(np.float64) for k, v in P0.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(x) for k, x in p.items()}
  out = []
  for t, g in enumerate(grads, start=1):
    for k in p:
      grad = g[k] + wd * p[k]
      p[k] = p[k] * (1 - lr * decoupled_wd)
      m[k] = b1 * m[k] + (1 - b1) * grad
      v[k] = b2 * v[k] + (1 - b2) * grad**2
      m_hat, v_hat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
      p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    out.append({k: x.copy() for k, x in p.items()})
  return out


def test_sgd_momentum_coupled_l2_matches_pytorch():
  config = _config(
    **{'optim.learning_rate': 0.1, 'optim.momentum': 0.9, 'optim.weight_decay': 0.01}
  )
  actual, _ = _run(make_optimizer(config, 10, 100))
  _assert_close(actual, _np_sgd(0.1, 0.9, 0.01, nesterov=False))


def test_sgd_first_step_by_hand():
  """Step 1 of SGD momentum with L2 is p - lr (g + wd p): buf starts at the first gradient."""
  config = _config(**{'optim.learning_rate': 0.5, 'optim.momentum': 0.9, 'optim.weight_decay': 0.1})
  actual, _ = _run(make_optimizer(config, 10, 100), steps=1)
  for k in P0:
    np.testing.assert_allclose(actual[0][k], P0[k] - 0.5 * (GRADS[0][k] + 0.1 * P0[k]), rtol=1e-6)


def test_nesterov_matches_pytorch():
  config = _config(
    **{
      'optim.learning_rate': 0.1,
      'optim.momentum': 0.9,
      'optim.weight_decay': 0.01,
      'optim.nesterov': True,
    }
  )
  actual, _ = _run(make_optimizer(config, 10, 100))
  _assert_close(actual, _np_sgd(0.1, 0.9, 0.01, nesterov=True))


def test_momentum_zero_is_plain_sgd():
  config = _config(
    **{'optim.learning_rate': 0.1, 'optim.momentum': 0.0, 'optim.weight_decay': 0.01}
  )
  actual, _ = _run(make_optimizer(config, 10, 100))
  _assert_close(actual, _np_sgd(0.1, 0.0, 0.01, nesterov=False))


def test_sgd_decoupled_weight_decay_is_lr_scaled():
  config = _config(
    **{'optim.learning_rate': 0.1, 'optim.momentum': 0.9, 'optim.decoupled_weight_decay': 0.05}
  )
  actual, _ = _run(make_optimizer(config, 10, 100))
  _assert_close(actual, _np_sgd(0.1, 0.9, 0.0, nesterov=False, dwd=0.05))


def test_adam_coupled_l2_matches_pytorch_adam():
  config = _config(**{'optim.name': 'adam', 'optim.learning_rate': 0.01, 'optim.weight_decay': 0.1})
  actual, _ = _run(make_optimizer(config, 10, 100))
  _assert_close(actual, _np_adam(0.01, 0.9, 0.999, 1e-8, wd=0.1, decoupled_wd=0.0))


def test_adamw_decoupled_matches_pytorch_adamw():
  config = _config(
    **{'optim.name': 'adamw', 'optim.learning_rate': 0.01, 'optim.decoupled_weight_decay': 0.1}
  )
  actual, _ = _run(make_optimizer(config, 10, 100))
  _assert_close(actual, _np_adam(0.01, 0.9, 0.999, 1e-8, wd=0.0, decoupled_wd=0.1))
  coupled = _np_adam(0.01, 0.9, 0.999, 1e-8, wd=0.1, decoupled_wd=0.0)
  assert not np.allclose(actual[-1]['w'], coupled[-1]['w'], rtol=1e-5)  # The two differ.


def test_grad_clip_applies_to_the_raw_gradient():
  norm = np.sqrt(sum(np.sum(v**2) for v in GRADS[0].values()))
  clip = float(norm) / 4
  config = _config(
    **{
      'optim.learning_rate': 0.1,
      'optim.momentum': 0.0,
      'optim.weight_decay': 0.01,
      'optim.grad_clip_norm': clip,
    }
  )
  actual, _ = _run(make_optimizer(config, 10, 100), steps=1)
  for k in P0:
    clipped = GRADS[0][k] * clip / norm
    np.testing.assert_allclose(actual[0][k], P0[k] - 0.1 * (clipped + 0.01 * P0[k]), rtol=1e-5)


def test_cyclic_lr_and_momentum_are_applied():
  """CyclicLR triangular, step_size_up 2: lr 0.01, 0.055, 0.1, 0.055; momentum 0.9 .. 0.8."""
  config = _config(
    **{
      'optim.learning_rate': 0.1,
      'optim.weight_decay': 0.01,
      'optim.schedule.name': 'cyclic',
      'optim.schedule.base_lr': 0.01,
      'optim.schedule.step_size_up': 2,
      'optim.schedule.cycle_momentum': True,
      'optim.schedule.base_momentum': 0.8,
      'optim.schedule.max_momentum': 0.9,
    }
  )
  grads = GRADS + GRADS[:1]
  actual, state = _run(make_optimizer(config, 10, 100), steps=4, grads=grads)
  lrs, mus = [0.01, 0.055, 0.1, 0.055], [0.9, 0.85, 0.8, 0.85]
  p = {k: v.astype(np.float64) for k, v in P0.items()}
  buf = {k: np.zeros_like(v) for k, v in p.items()}
  expected = []
  for g, lr, mu in zip(grads, lrs, mus, strict=True):
    for k in p:
      buf[k] = mu * buf[k] + g[k] + 0.01 * p[k]
      p[k] = p[k] - lr * buf[k]
    expected.append({k: v.copy() for k, v in p.items()})
  _assert_close(actual, expected)
  hp = current_hparams(state)  # The values the last (4th) update applied.
  np.testing.assert_allclose(float(hp['learning_rate']), 0.055, rtol=1e-6)
  np.testing.assert_allclose(float(hp['momentum']), 0.85, rtol=1e-6)


def test_current_hparams_follow_the_schedule():
  config = _config(
    **{
      'optim.learning_rate': 0.1,
      'optim.weight_decay': 5e-4,
      'optim.schedule.name': 'step',
      'optim.schedule.decay_every_epochs': 1,
      'optim.schedule.gamma': 0.5,
    }
  )
  tx = make_optimizer(config, 2, 100)
  params = jax.tree.map(jnp.asarray, P0)
  state = tx.init(params)
  hp = current_hparams(state)
  assert set(hp) == {'learning_rate', 'momentum', 'weight_decay', 'decoupled_weight_decay'}
  np.testing.assert_allclose(float(hp['learning_rate']), 0.1, rtol=1e-6)
  update = jax.jit(tx.update)
  lrs = []
  for _ in range(5):
    _, state = update(jax.tree.map(jnp.zeros_like, params), state, params)
    lrs.append(float(current_hparams(state)['learning_rate']))
  np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)
  np.testing.assert_allclose(float(current_hparams(state)['weight_decay']), 5e-4, rtol=1e-6)
  np.testing.assert_allclose(float(current_hparams(state)['momentum']), 0.9, rtol=1e-6)


def test_set_hparam_inside_jit_drives_the_update_without_retracing():
  config = _config(**{'optim.learning_rate': 0.1, 'optim.momentum': 0.0})
  tx = make_optimizer(config, 10, 100)
  params = jax.tree.map(jnp.asarray, P0)
  grads = jax.tree.map(jnp.asarray, GRADS[0])

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(state, lr, mu, wd):
    state = set_hparam(state, 'learning_rate', lr)
    state = set_hparam(state, 'momentum', mu)
    state = set_hparam(state, 'weight_decay', wd)
    return tx.update(grads, state, params)

  state = tx.init(params)
  for lr in (1e-3, 1e-2, 3.0):
    updates, state = step(state, lr, 0.0, 0.25)
    for k in P0:
      np.testing.assert_allclose(
        updates[k], -lr * (GRADS[0][k] + 0.25 * P0[k]), rtol=1e-5, atol=1e-7
      )
    np.testing.assert_allclose(float(current_hparams(state)['learning_rate']), lr, rtol=1e-6)


def test_set_hparam_none_returns_to_the_schedule():
  config = _config(**{'optim.learning_rate': 0.1, 'optim.momentum': 0.0})
  tx = make_optimizer(config, 10, 100)
  params = jax.tree.map(jnp.asarray, P0)
  grads = jax.tree.map(jnp.asarray, GRADS[0])
  state = set_hparam(tx.init(params), 'learning_rate', 0.7)
  updates, state = tx.update(grads, state, params)
  np.testing.assert_allclose(updates['b'], -0.7 * GRADS[0]['b'], rtol=1e-6)
  updates, state = tx.update(grads, set_hparam(state, 'learning_rate', None), params)
  np.testing.assert_allclose(updates['b'], -0.1 * GRADS[0]['b'], rtol=1e-6)


def test_set_hparam_unknown_name():
  tx = make_optimizer(_config(), 10, 100)
  state = tx.init(jax.tree.map(jnp.asarray, P0))
  with pytest.raises(ValueError, match='learning_rate'):
    set_hparam(state, 'lr', 0.1)


@pytest.mark.parametrize(
  'overrides, key',
  [
    ({'optim.name': 'rmsprop'}, 'optim.name'),
    ({'optim.momentum': 1.5}, 'optim.momentum'),
    ({'optim.weight_decay': -1.0}, 'optim.weight_decay'),
    ({'optim.name': 'adamw', 'optim.weight_decay': 0.01}, 'optim.decoupled_weight_decay'),
    ({'optim.momentum': 0.0, 'optim.nesterov': True}, 'optim.nesterov'),
    ({'optim.name': 'adam', 'optim.nesterov': True}, 'optim.nesterov'),
    ({'repulsion.enabled': True, 'repulsion.mode': 'max'}, 'repulsion.mode'),
    ({'repulsion.enabled': True, 'repulsion.mask': 'biases'}, 'repulsion.mask'),
    ({'optim.schedule.name': 'linear'}, 'optim.schedule.name'),
  ],
)
def test_bad_config_names_the_key(overrides, key):
  with pytest.raises(ValueError, match=key.replace('.', r'\.')):
    config_lib.validate(_config(**overrides), num_devices=1)
