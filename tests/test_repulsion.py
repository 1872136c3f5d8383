"""Repulsion transform against jax.grad of an independently written penalty (plain loops)."""

import importlib.util
import math
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from jaxland import distance
from jaxland.optim import (
  active_anchor_metrics,
  add_anchor,
  anchor_metrics,
  clear_anchors,
  current_hparams,
  get_anchors,
  kernel_mask,
  make_optimizer,
  repulsion,
  set_hparam,
)

RNG = np.random.default_rng(1)
SHAPES = {'dense': {'kernel': (3, 2), 'bias': (2,)}}


def _tree(scale=1.0):
  return jax.tree.map(
    lambda s: jnp.asarray(scale * RNG.normal(size=s), jnp.float32),
    SHAPES,
    is_leaf=lambda x: isinstance(x, tuple),
  )


PARAMS = _tree()
ANCHORS = [jax.tree.map(lambda p, n: p + n, PARAMS, _tree(0.5)) for _ in range(3)]
WIDTH = 1.5


def _oracle_penalty(params, anchors, strength, width, mode, names=('kernel', 'bias')):
  """The thesis' penalty, written out leaf by leaf with plain loops over the anchors."""
  dists = []
  for anchor in anchors:
    d = 0.0
    for name in names:
      d = d + jnp.sum((params['dense'][name] - anchor['dense'][name]) ** 2)
    dists.append(d)
  if mode == 'sum':
    return sum(strength * jnp.exp(-d / (2 * width**2)) for d in dists)
  if mode == 'merged':
    return strength * jnp.exp(-sum(dists) / (2 * width**2))
  return -strength * sum(dists)


def _state_with(tx, params, anchors):
  state = tx.init(params)
  for a in anchors:
    state = add_anchor(state, a)
  return state


@pytest.mark.parametrize('mode', ['sum', 'merged', 'l2'])
@pytest.mark.parametrize('masked', [False, True])
def test_update_is_grad_of_the_penalty(mode, masked):
  strength = 2.0
  tx = repulsion(strength, WIDTH, capacity=4, mode=mode, mask=kernel_mask if masked else None)
  anchors = ANCHORS[:2]
  state = _state_with(tx, PARAMS, anchors)
  incoming = _tree()
  out, _ = jax.jit(tx.update)(incoming, state, PARAMS)
  names = ('kernel',) if masked else ('kernel', 'bias')
  grad = jax.grad(_oracle_penalty)(PARAMS, anchors, strength, WIDTH, mode, names)
  expected = jax.tree.map(lambda u, g: u + g, incoming, grad)
  chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-6)
  if masked:  # Excluded leaves pass through untouched.
    np.testing.assert_array_equal(out['dense']['bias'], incoming['dense']['bias'])


def test_pytree_mask_equals_kernel_mask():
  mask = {'dense': {'kernel': True, 'bias': False}}
  outs = []
  for m in (mask, kernel_mask):
    tx = repulsion(1.0, WIDTH, capacity=2, mode='sum', mask=m)
    state = _state_with(tx, PARAMS, ANCHORS[:1])
    outs.append(tx.update(jax.tree.map(jnp.zeros_like, PARAMS), state, PARAMS)[0])
  chex.assert_trees_all_equal(outs[0], outs[1])
  assert kernel_mask(PARAMS) == mask


def _distance(params, anchor):
  flat_p = ravel_pytree(params)[0]
  flat_a = ravel_pytree(anchor)[0]
  return float(np.linalg.norm(np.asarray(flat_p) - np.asarray(flat_a)))


@pytest.mark.parametrize('mode', ['sum', 'merged', 'l2'])
def test_pushes_away_from_every_anchor(mode):
  tx = optax.chain(repulsion(1.0, WIDTH, capacity=4, mode=mode), optax.sgd(0.1))
  state = _state_with(tx, PARAMS, ANCHORS[:2])
  zero_loss_grad = jax.tree.map(jnp.zeros_like, PARAMS)
  updates, _ = tx.update(zero_loss_grad, state, PARAMS)
  moved = optax.apply_updates(PARAMS, updates)
  for anchor in ANCHORS[:2]:
    assert _distance(moved, anchor) > _distance(PARAMS, anchor)


def test_identity_without_active_anchor():
  tx = repulsion(5.0, WIDTH, capacity=3)
  state = tx.init(PARAMS)
  incoming = _tree()
  out, _ = jax.jit(tx.update)(incoming, state, PARAMS)
  chex.assert_trees_all_equal(out, incoming)
  out, _ = tx.update(incoming, clear_anchors(_state_with(tx, PARAMS, ANCHORS)), PARAMS)
  chex.assert_trees_all_equal(out, incoming)


@pytest.mark.parametrize('strength', [0.0, jnp.float32(0.0)])
def test_zero_strength_is_identity(strength):
  tx = repulsion(strength, WIDTH, capacity=3)
  state = _state_with(tx, PARAMS, ANCHORS)
  incoming = _tree()
  out, _ = jax.jit(tx.update)(incoming, state, PARAMS)
  chex.assert_trees_all_equal(out, incoming)


def test_unconditional_push_is_exact_when_off_and_equal_when_on():
  """Off CPU the transform skips its lax.cond (a GPU conditional costs more than the force): the
  always-computed force must leave updates bit-identical while off and match the CPU path on."""
  module = importlib.import_module('jaxland.optim.repulsion')
  incoming = _tree()
  for strength, anchors, clear in ((5.0, (), False), (0.0, ANCHORS, False), (5.0, ANCHORS, True)):
    state = _state_with(repulsion(strength, WIDTH, capacity=3), PARAMS, anchors)
    state = clear_anchors(state) if clear else state  # Inactive slots that still hold values.
    out = jax.jit(module._push, static_argnums=(2, 3))(PARAMS, state, WIDTH, 'sum', incoming)
    chex.assert_trees_all_equal(out, incoming)
  for mode in module.MODES:
    tx = repulsion(2.0, WIDTH, capacity=3, mode=mode)
    state = _state_with(tx, PARAMS, ANCHORS[:2])
    pushed = jax.jit(module._push, static_argnums=(2, 3))(PARAMS, state, WIDTH, mode, incoming)
    # Jitted and fused against eager op by op: the sums may round differently (an FMA), by an
    # ulp of the operands' unit scale, which is a large relative error on a near-zero result.
    expected = tx.update(incoming, state, PARAMS)[0]
    chex.assert_trees_all_close(pushed, expected, rtol=1e-6, atol=2e-7)


def test_both_distance_forms_equal_numpy():
  """The CPU form (a sum of squares per leaf) and the GPU form (one concatenated reduction)."""
  module = importlib.import_module('jaxland.optim.repulsion')
  state = _state_with(repulsion(1.0, WIDTH, capacity=3), PARAMS, ANCHORS)
  pairs = module._pairs(PARAMS, state.anchors)
  expected = [_distance(PARAMS, a) ** 2 for a in ANCHORS]
  for form in (module._per_leaf, module._concatenated):
    np.testing.assert_allclose(np.asarray(jax.jit(form)(pairs)), expected, rtol=1e-5)


def test_update_needs_params():
  tx = repulsion(1.0, WIDTH, capacity=2)
  with pytest.raises(ValueError, match='params'):
    tx.update(PARAMS, tx.init(PARAMS))


@pytest.mark.parametrize(
  'kwargs, key',
  [(dict(mode='max'), 'mode'), (dict(width=0.0), 'width'), (dict(capacity=0), 'capacity')],
)
def test_bad_arguments_name_the_key(kwargs, key):
  args = dict(strength=1.0, width=1.0, capacity=2, mode='sum') | kwargs
  with pytest.raises(ValueError, match=f'repulsion.{key}'):
    repulsion(**args)


def test_add_anchor_in_jit_does_not_retrace_and_rings():
  tx = repulsion(1.0, WIDTH, capacity=4)
  state = tx.init(PARAMS)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def anchor_step(state, params):
    return add_anchor(state, params)

  seq = [jax.tree.map(lambda p, i=i: p + i, PARAMS) for i in range(6)]
  for params in seq:
    state = anchor_step(state, params)
  anchors, active = get_anchors(state)
  assert np.asarray(active).tolist() == [True] * 4
  # Slots 0 and 1 were overwritten by the 5th and 6th anchors (ring buffer).
  for slot, idx in zip(range(4), [4, 5, 2, 3], strict=True):
    chex.assert_trees_all_equal(jax.tree.map(lambda a, s=slot: a[s], anchors), seq[idx])


def test_metrics_distance_kernel_and_grad_norm():
  strength = 3.0
  tx = repulsion(strength, WIDTH, capacity=3, mode='sum')
  state = _state_with(tx, PARAMS, ANCHORS[:2])
  loss_grad = _tree()
  m = jax.jit(anchor_metrics)(PARAMS, state, loss_grad)
  for i, anchor in enumerate(ANCHORS[:2]):
    dist = _distance(PARAMS, anchor)
    np.testing.assert_allclose(float(m[f'anchor/{i}/distance']), dist, rtol=1e-5)
    np.testing.assert_allclose(
      float(m[f'anchor/{i}/kernel']), math.exp(-(dist**2) / (2 * WIDTH**2)), rtol=1e-5
    )
    assert float(m[f'anchor/{i}/active']) == 1.0
  assert float(m['anchor/2/active']) == 0.0
  assert int(m['anchor/count']) == 2
  grad = jax.grad(_oracle_penalty)(PARAMS, ANCHORS[:2], strength, WIDTH, 'sum')
  gnorm = np.linalg.norm(np.asarray(ravel_pytree(grad)[0]))
  lnorm = np.linalg.norm(np.asarray(ravel_pytree(loss_grad)[0]))
  np.testing.assert_allclose(float(m['anchor/grad_norm']), gnorm, rtol=1e-5)
  np.testing.assert_allclose(float(m['anchor/grad_ratio']), gnorm / lnorm, rtol=1e-5)
  np.testing.assert_allclose(
    float(m['anchor/penalty']),
    float(_oracle_penalty(PARAMS, ANCHORS[:2], strength, WIDTH, 'sum')),
    rtol=1e-5,
  )
  shown = active_anchor_metrics(m)
  assert 'anchor/0/distance' in shown and 'anchor/2/distance' not in shown
  assert not any(k.endswith('/active') for k in shown)


def _default_config():
  path = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'default.py'
  spec = importlib.util.spec_from_file_location('jaxland_default_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _chain_config(enabled, mode='sum', mask='all'):
  config = _default_config()
  config.optim.learning_rate = 0.1
  config.optim.momentum = 0.9
  config.optim.weight_decay = 0.01
  config.repulsion = distance.defaults()
  config.repulsion.enabled = enabled
  config.repulsion.mode = mode
  config.repulsion.mask = mask
  config.repulsion.strength = 2.0
  config.repulsion.width = WIDTH
  config.repulsion.capacity = 2
  config.repulsion.anchor_every = 1
  return config


@pytest.mark.parametrize('mode, mask', [('sum', 'all'), ('merged', 'kernels')])
def test_inside_make_optimizer_chain(mode, mask):
  """First step: buf = g + wd p + ∇P, so the update is -lr (g + wd p + ∇P)."""
  tx = make_optimizer(_chain_config(True, mode, mask), 10, 100)
  state = _state_with(tx, PARAMS, ANCHORS[:1])
  loss_grad = _tree()
  updates, state = jax.jit(tx.update)(loss_grad, state, PARAMS)
  names = ('kernel',) if mask == 'kernels' else ('kernel', 'bias')
  rep = jax.grad(_oracle_penalty)(PARAMS, ANCHORS[:1], 2.0, WIDTH, mode, names)
  expected = jax.tree.map(lambda g, p, r: -0.1 * (g + 0.01 * p + r), loss_grad, PARAMS, rep)
  chex.assert_trees_all_close(updates, expected, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(float(current_hparams(state)['repulsion_strength']), 2.0)


def test_virtual_anchors_in_chain_until_strength_is_set():
  tx = make_optimizer(_chain_config(False), 10, 100)
  state = _state_with(tx, PARAMS, ANCHORS[:1])
  loss_grad = _tree()
  updates, state = tx.update(loss_grad, state, PARAMS)
  expected = jax.tree.map(lambda g, p: -0.1 * (g + 0.01 * p), loss_grad, PARAMS)
  chex.assert_trees_all_close(updates, expected, rtol=1e-6, atol=1e-8)
  assert float(current_hparams(state)['repulsion_strength']) == 0.0
  assert float(anchor_metrics(PARAMS, state)['anchor/grad_norm']) == 0.0
  np.testing.assert_allclose(
    float(anchor_metrics(PARAMS, state)['anchor/0/distance']),
    _distance(PARAMS, ANCHORS[0]),
    rtol=1e-5,
  )
  # Switching the force on through the injected hyperparameter.
  fresh = set_hparam(_state_with(tx, PARAMS, ANCHORS[:1]), 'repulsion_strength', 2.0)
  updates, _ = tx.update(loss_grad, fresh, PARAMS)
  rep = jax.grad(_oracle_penalty)(PARAMS, ANCHORS[:1], 2.0, WIDTH, 'sum')
  expected = jax.tree.map(lambda g, p, r: -0.1 * (g + 0.01 * p + r), loss_grad, PARAMS, rep)
  chex.assert_trees_all_close(updates, expected, rtol=1e-5, atol=1e-7)


def test_add_anchor_without_repulsion_in_chain_fails_loudly():
  config = _default_config()
  tx = make_optimizer(config, 10, 100)
  with pytest.raises(ValueError, match='repulsion'):
    add_anchor(tx.init(PARAMS), PARAMS)
