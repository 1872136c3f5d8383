"""Parameter groups by path, and lookahead / EMA of the weights: the optimizer pieces of airbench.

Parameters are picked by a regular expression searched in their '/'-joined path
('group0_norm1/bias', 'whiten/kernel').

  scale_gradients(((pattern, s), ...))  the gradient of matching leaves x s, first in the chain:
      with coupled weight decay after it, this is PyTorch's param group lr x s with weight_decay /
      s (airbench's bias_scaler), i.e. the learning rate scaled and the decay not.
  freeze(((pattern, steps), ...))       the update of matching leaves is zero from update count
      `steps` on (0: always), as PyTorch's requires_grad=False: no decay, no momentum step.
  lookahead(...)                        every `every` updates from `start` on, an EMA of the
      weights is moved toward them and copied back into them, with a decay that grows over the
      run, and the weights are set to the EMA again at each epoch's end (hlb-cifar10 / airbench).
"""

import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


def path_name(path) -> str:
  """'a/b/c' of a jax tree path of dict keys."""
  return '/'.join(str(getattr(k, 'key', getattr(k, 'idx', k))) for k in path)


def _per_leaf(params, rules, default):
  """A pytree of params' structure: the value of the first rule whose pattern matches the leaf's
  path, else `default`."""
  compiled = [(re.compile(p), v) for p, v in rules]

  def pick(path, _):
    name = path_name(path)
    return next((v for p, v in compiled if p.search(name)), default)

  return jax.tree_util.tree_map_with_path(pick, params)


def labels(params, pattern: str, match: str, other: str):
  """A pytree of params' structure: `match` where the leaf's path matches `pattern`, else
  `other` (optax.multi_transform's labels)."""
  return _per_leaf(params, ((pattern, match),), other)


def matched(params, patterns) -> dict:
  """{pattern: [paths it matches]} (configs are checked with it: a pattern matching nothing is a
  typo)."""
  names = [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  return {p: [n for n in names if re.search(p, n)] for p in patterns}


def scale_gradients(rules) -> optax.GradientTransformation:
  """Updates of leaves matching a rule's pattern times its scale (first match wins)."""

  def update(updates, state, params=None):
    scales = _per_leaf(updates, rules, None)
    out = jax.tree.map(
      lambda u, s: u if s is None else u * jnp.asarray(s, u.dtype), updates, scales
    )
    return out, state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class FreezeState(NamedTuple):
  count: jax.Array  # int32 updates so far.


def freeze(rules) -> optax.GradientTransformation:
  """Zero updates for leaves matching a rule's pattern once `count >= steps` (first match wins)."""

  def init(params):
    return FreezeState(jnp.zeros([], jnp.int32))

  def update(updates, state, params=None):
    until = _per_leaf(updates, rules, None)

    def gate(u, steps):
      return u if steps is None else jnp.where(state.count < steps, u, jnp.zeros_like(u))

    return jax.tree.map(gate, updates, until), FreezeState(optax.safe_increment(state.count))

  return optax.GradientTransformation(init, update)


class LookaheadState(NamedTuple):
  count: jax.Array  # int32 updates so far.
  started: jax.Array  # bool: the EMA holds weights (its first update copies them in).
  ema: optax.Params
  inner: optax.OptState


def lookahead(
  inner: optax.GradientTransformation,
  *,
  every: int,
  start: int,
  total: int,
  steps_per_epoch: int,
  decay_base: float,
  decay_pow: float,
) -> optax.GradientTransformationExtraArgs:
  """`inner`, then lookahead on the weights it produces (w = params + inner update). With s the
  update count after this update (1-based):
    s >= start + 1 and s % every == 0: the first time, ema = w; afterwards
        rho = decay_base ** every * (s / total) ** decay_pow, ema = rho ema + (1 - rho) w, w = ema;
    s % steps_per_epoch == 0 or s == total, once started: w = ema.
  The update returned is ema - params where w = ema, else inner's own (bit for bit). `start` is in
  updates (airbench: 3 epochs). The EMA covers the params only, not BatchNorm's running
  statistics (airbench averages those too; with its fast BN momentum they track the weights)."""
  inner = optax.with_extra_args_support(inner)
  base = decay_base**every

  def init(params):
    return LookaheadState(
      jnp.zeros([], jnp.int32), jnp.zeros([], bool), jax.tree.map(jnp.copy, params),
      inner.init(params),
    )  # fmt: skip

  def update(updates, state, params=None, **extra):
    if params is None:
      raise ValueError(optax.NO_PARAMS_MSG)
    updates, inner_state = inner.update(updates, state.inner, params, **extra)
    s = state.count + 1
    w = optax.apply_updates(params, updates)
    ema_step = (s > start) & (s % every == 0)
    first = ema_step & ~state.started
    rho = base * (s.astype(jnp.float32) / total) ** decay_pow
    blend = jnp.where(first, 0.0, rho)
    ema = jax.tree.map(
      lambda e, x: jnp.where(ema_step, blend * e + (1 - blend) * x, e), state.ema, w
    )
    started = state.started | ema_step
    copy_back = (ema_step & ~first) | (started & ((s % steps_per_epoch == 0) | (s == total)))
    out = jax.tree.map(lambda e, p, u: jnp.where(copy_back, e - p, u), ema, params, updates)
    return out, LookaheadState(s, started, ema, inner_state)

  return optax.GradientTransformationExtraArgs(init, update)
