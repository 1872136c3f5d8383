"""Repulsion from anchors (the thesis' distance function, seed 002 sec. 2.1) as an optax transform.

An anchor θc is a saved copy of the parameters. With the squared distance (eq. 2.2)
    d(θ, θc) = Σ_i (θ_i − θc_i)²       over the leaves the `mask` selects (default: all params)
the loss gains a penalty P(θ), and this transform adds ∇θ P to the incoming gradient, so the
optimizer descends L + P and is pushed away from the anchors. `mode` chooses P over the active
anchors c (s = strength, σ = width):
  sum     P = s Σ_c exp(−d_c / (2σ²))           one RBF hill per anchor (eq. 2.4 / 2.8 / 2.9)
  merged  P = s exp(−Σ_c d_c / (2σ²))           all anchors as one larger anchor (section 3.3.2)
  l2      P = −s Σ_c d_c                        unbounded quadratic push, for comparison
so ∇θ P = Σ_c w_c (θ − θc) with w_c = −s k_c / σ² (sum), −s K / σ² (merged, K = exp(−Σ d_c/2σ²))
or −2 s (l2). With no active anchor, or s = 0 ("virtual" anchors: kept to log the drift), the
transform returns the updates untouched: a static s = 0 skips it at trace time; a traced s = 0
(virtual anchors keep the strength injectable, so the force can be switched on later) or an empty
buffer skips it on CPU; on other platforms, where a conditional costs more than the force itself
(a GPU run of bench/repulsion.py), adds a force whose weights are exactly 0.

Cost on CPU follows the anchors, not the slots: a lax.switch on the highest active slot runs a
branch compiled for exactly that many slots (slots fill from 0, so that is the anchor count), and
each branch reads each of its anchors twice, once for the distances and once inside the fused
optimizer update for the force (the second read hits the cache for MLP-sized anchors).

Anchors live in the state in a fixed-capacity buffer (each selected leaf gets a leading axis of
size `capacity`, excluded leaves hold `optax.MaskedNode()`), with an `active` mask and a `count`,
so adding an anchor is a traced write that never recompiles. The buffer is a ring: when it is
full, `add_anchor` overwrites the oldest anchor (slot count % capacity).

Place it after coupled L2 and before momentum (jaxland.optim.build does), so its gradient is
treated exactly like the loss gradient, as in the thesis' PyTorch code.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax._src.base import NO_PARAMS_MSG  # Not re-exported by optax; the standard message.

from jaxland.validation import ConfigError

MODES = ('sum', 'merged', 'l2')


class RepulsionState(NamedTuple):
  """Anchors and what `anchor_metrics` needs to describe them."""

  anchors: Any  # params-like; leaf [capacity, *shape], or MaskedNode for leaves outside the mask.
  active: jax.Array  # bool [capacity]
  count: jax.Array  # int32: anchors added so far; the next goes to slot count % capacity.
  strength: jax.Array  # float32: the strength of the last update (0 = virtual anchors).
  width: jax.Array  # float32: sigma.
  mode: jax.Array  # int32 index into MODES.


def _is_masked(x):
  return isinstance(x, optax.MaskedNode)


def kernel_mask(params):
  """True for leaves named 'kernel' (Dense/Conv weights), False for biases, BatchNorm scales..."""
  return jax.tree_util.tree_map_with_path(
    lambda path, _: getattr(path[-1], 'key', None) == 'kernel', params
  )


def _full_mask(mask, params):
  """None | pytree (or prefix) of Python bools | callable(params) -> bool per params leaf."""
  if mask is None:
    return jax.tree.map(lambda _: True, params)
  if callable(mask):
    mask = mask(params)
  return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), mask, params)


def _pairs(params, anchors):
  """[(param leaf, anchor leaf)] for the leaves inside the mask."""
  anchor_leaves = jax.tree.leaves(anchors, is_leaf=_is_masked)
  param_leaves = jax.tree.leaves(params)
  if len(anchor_leaves) != len(param_leaves):
    raise ValueError(
      f'params have {len(param_leaves)} leaves but the anchors {len(anchor_leaves)}: '
      'the repulsion state was built for a different parameter tree'
    )
  return [(p, a) for p, a in zip(param_leaves, anchor_leaves, strict=True) if not _is_masked(a)]


def _sq_distances(params, anchors, capacity):
  """d(θ, θc) for every slot: float32 [capacity].

  Each is one pass over params and anchors that never materialises θ − θc. XLA:CPU fuses a sum of
  squares per leaf (concatenating first made it write the differences: 2-3x slower for the MLP);
  on a GPU all leaves' differences are concatenated into one reduction, one kernel instead of one
  per leaf (kernel launches dominate small models' steps there: bench/repulsion.py).
  """
  pairs = _pairs(params, anchors)
  if not pairs:
    return jnp.zeros([capacity], jnp.float32)
  return jax.lax.platform_dependent(pairs, cpu=_per_leaf, default=_concatenated)


def _diff(p, a):
  return (p[None] - a).astype(jnp.float32)


def _per_leaf(pairs):
  return sum(jnp.sum(jnp.square(_diff(p, a)), axis=tuple(range(1, a.ndim))) for p, a in pairs)


def _concatenated(pairs):
  capacity = pairs[0][1].shape[0]
  flat = jnp.concatenate([_diff(p, a).reshape(capacity, -1) for p, a in pairs], axis=1)
  return jnp.sum(jnp.square(flat), axis=1)


def _weights(d, active, strength, width, mode):
  """w_c with ∇θ P = Σ_c w_c (θ − θc), and the penalty P, for a static mode name."""
  a = active.astype(jnp.float32)
  inv = 1.0 / (2.0 * width**2)
  if mode == 'sum':
    k = jnp.exp(-d * inv)
    return -strength * a * k / width**2, strength * jnp.sum(a * k)
  if mode == 'merged':
    big_k = jnp.exp(-jnp.sum(a * d) * inv)
    return -strength * a * big_k / width**2, strength * big_k * jnp.any(active)
  return -2.0 * strength * a, -strength * jnp.sum(a * d)


def _penalty_grad(params, anchors, w):
  """Σ_c w_c (θ − θc) leaf by leaf; zeros for leaves outside the mask.

  Written as (Σ_c w_c) θ − Σ_c w_c θc, the anchor sum unrolled over the (static, small) slots: a
  purely elementwise expression that XLA fuses with the optimizer's own update, reading each
  anchor once and never materialising the [capacity, *shape] differences.
  """

  total = jnp.sum(w)

  def leaf(a, p):
    if _is_masked(a):
      return jnp.zeros_like(p)
    pull = sum(w[k].astype(p.dtype) * a[k] for k in range(a.shape[0]))
    return total.astype(p.dtype) * p - pull

  return jax.tree.map(leaf, anchors, params, is_leaf=_is_masked)


def _push(params, state, width, mode, updates):
  """updates + ∇θ P; exactly the updates when no slot is active or the strength is 0."""
  d = _sq_distances(params, state.anchors, state.active.shape[0])
  w, _ = _weights(d, state.active, state.strength, width, mode)
  grad = _penalty_grad(params, state.anchors, w)
  return jax.tree.map(lambda g, r: g + r.astype(g.dtype), updates, grad)


def _used_slots(active):
  """1 + the highest active slot (0 when none is active): the slots a push must read."""
  slots = jnp.arange(1, active.shape[0] + 1, dtype=jnp.int32)
  return jnp.max(jnp.where(active, slots, 0))


def _first(state, k):
  """The state with only its first k anchor slots (a static slice, fused into its readers)."""
  anchors = jax.tree.map(lambda a: a if _is_masked(a) else a[:k], state.anchors, is_leaf=_is_masked)
  return state._replace(anchors=anchors, active=state.active[:k])


def _pull_used(params, state, width, mode):
  """(Σ_c w_c, Σ_c w_c θc per leaf) over only the used slots: a lax.switch on their number (CPU,
  where a conditional is cheap); branch 0 (no active anchor, or strength 0) gives zeros.

  Only this pull crosses the conditional: the rest of the force, (Σ_c w_c) θ, stays outside,
  where XLA fuses it with the optimizer's own update instead of materialising the updates twice.
  """
  capacity = state.active.shape[0]
  leaves = [p for p, _ in _pairs(params, state.anchors)]

  def branch(k):
    if k == 0:
      return jnp.zeros([], jnp.float32), [jnp.zeros_like(p) for p in leaves]
    first = _first(state, k)
    d = _sq_distances(params, first.anchors, k)
    w, _ = _weights(d, first.active, first.strength, width, mode)
    pulls = [
      sum(w[j].astype(p.dtype) * a[j] for j in range(k)) for p, a in _pairs(params, first.anchors)
    ]
    return jnp.sum(w), pulls

  used = jnp.where(state.strength != 0, _used_slots(state.active), 0)
  return jax.lax.switch(used, [functools.partial(branch, k) for k in range(capacity + 1)])


def _push_used(params, state, width, mode, updates):
  """updates + ∇θ P as _push computes it, reading only the used slots (see _pull_used)."""
  total, pulls = _pull_used(params, state, width, mode)
  pulls = iter(pulls)

  def leaf(a, p):
    if _is_masked(a):
      return jnp.zeros_like(p)
    return total.astype(p.dtype) * p - next(pulls)

  grad = jax.tree.map(leaf, state.anchors, params, is_leaf=_is_masked)
  return jax.tree.map(lambda g, r: g + r.astype(g.dtype), updates, grad)


def repulsion(
  strength: float | jax.Array,
  width: float | jax.Array,
  capacity: int,
  mode: str = 'sum',
  mask: Any | Callable[[Any], Any] | None = None,
  conditional: bool = True,
) -> optax.GradientTransformation:
  """Adds ∇θ of the anchor penalty (module docstring) to the updates.

  Args:
    strength: s >= 0; may be a traced value (inject_hyperparams). 0 leaves updates untouched.
    width: σ > 0 of the RBF kernel (the thesis' σ² = 100 is width 10); may be traced too.
    capacity: anchor slots kept in the state (fixed so adding an anchor never recompiles).
    mode: 'sum' | 'merged' | 'l2'.
    mask: None (all leaves), a pytree (or prefix) of bools, or a callable params -> such a pytree;
      only True leaves count in the distance and receive the force (e.g. `kernel_mask`).
    conditional: on CPU, read only the used slots through a lax.switch. False always pushes
      all slots: for a chain that is vmapped (populations), where a switch on a batched index
      runs every branch (1 + 2 + ... + capacity slot reads instead of capacity).
  """
  if mode not in MODES:
    raise ConfigError('repulsion.mode', mode, f'choose from {list(MODES)}')
  if isinstance(width, (int, float)) and not width > 0:
    raise ConfigError('repulsion.width', width, 'must be > 0')
  if int(capacity) != capacity or capacity < 1:
    raise ConfigError('repulsion.capacity', capacity, 'must be an int >= 1')
  capacity = int(capacity)

  def init_fn(params):
    anchors = jax.tree.map(
      lambda p, m: jnp.zeros((capacity,) + p.shape, p.dtype) if m else optax.MaskedNode(),
      params,
      _full_mask(mask, params),
    )
    return RepulsionState(
      anchors=anchors,
      active=jnp.zeros([capacity], bool),
      count=jnp.zeros([], jnp.int32),
      strength=jnp.asarray(strength, jnp.float32),
      width=jnp.asarray(width, jnp.float32),
      mode=jnp.asarray(MODES.index(mode), jnp.int32),
    )

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(NO_PARAMS_MSG)
    state = _with_kernel(state, strength, width)
    if isinstance(strength, (int, float)) and strength == 0:
      return updates, state

    # CPU: a switch is cheap and reads only the used slots. Elsewhere always push all slots: the
    # weights are exactly 0 while off, and a GPU conditional costs more than the force.
    push = functools.partial(_push, params, state, width, mode)
    if not conditional:
      return push(updates), state
    cpu = functools.partial(_push_used, params, state, width, mode)
    return jax.lax.platform_dependent(updates, cpu=cpu, default=push), state

  return optax.GradientTransformation(init_fn, update_fn)


def _states(opt_state):
  return [
    s
    for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, RepulsionState))
    if isinstance(s, RepulsionState)
  ]


def repulsion_state(opt_state) -> RepulsionState:
  """The one RepulsionState inside an optimizer state (any depth of chains/wrappers)."""
  found = _states(opt_state)
  if len(found) != 1:
    raise ValueError(
      f'expected one repulsion transform in the optimizer state, found {len(found)}; '
      'build the optimizer with repulsion (config.repulsion.enabled or anchor settings)'
    )
  return found[0]


def _replace_state(opt_state, fn):
  repulsion_state(opt_state)  # Fails loudly when absent.
  return jax.tree.map(
    lambda x: fn(x) if isinstance(x, RepulsionState) else x,
    opt_state,
    is_leaf=lambda x: isinstance(x, RepulsionState),
  )


def _with_kernel(state: RepulsionState, strength, width) -> RepulsionState:
  """The state reporting `strength` and `width` (what anchor_metrics reads)."""
  return state._replace(
    strength=jnp.asarray(strength, jnp.float32), width=jnp.asarray(width, jnp.float32)
  )


def set_kernel(opt_state, strength, width):
  """The strength and width the state reports before its first update (each update writes the
  values it applied): for tabled chains, whose init reads 0."""
  return _replace_state(opt_state, lambda st: _with_kernel(st, strength, width))


def add_anchor(opt_state, params):
  """Writes `params` into the next anchor slot (ring buffer: overwrites the oldest when full).

  Jit-friendly: the slot is a traced value, so repeated calls reuse one compilation.
  """

  def write(st):
    capacity = st.active.shape[0]
    slot = jnp.mod(st.count, capacity)

    def put(a, p):
      if _is_masked(a):
        return a
      return jax.lax.dynamic_update_index_in_dim(a, p.astype(a.dtype), slot, 0)

    anchors = jax.tree.map(put, st.anchors, params, is_leaf=_is_masked)
    return st._replace(
      anchors=anchors, active=st.active.at[slot].set(True), count=optax.safe_increment(st.count)
    )

  return _replace_state(opt_state, write)


def clear_anchors(opt_state):
  """Deactivates every anchor (the buffer keeps its values; the next anchor goes to slot 0)."""
  return _replace_state(
    opt_state,
    lambda st: st._replace(active=jnp.zeros_like(st.active), count=jnp.zeros_like(st.count)),
  )


def get_anchors(opt_state):
  """(anchors, active): the stacked anchor buffer (leading axis = slot) and its bool mask."""
  st = repulsion_state(opt_state)
  return st.anchors, st.active


def anchor_metrics(params, opt_state, loss_grad=None):
  """Per-slot drift and force, as a flat dict of device scalars, for logging.

  Keys: anchor/<i>/distance (L2 distance sqrt(d) over the masked leaves), anchor/<i>/kernel
  (exp(−d/2σ²)), anchor/<i>/active (0/1; inactive slots' values are meaningless, see
  `active_anchor_metrics`), anchor/count, anchor/penalty (P), anchor/grad_norm (‖∇θ P‖ at the
  strength of the last update) and, with `loss_grad`, anchor/grad_ratio = ‖∇θ P‖ / ‖loss_grad‖.
  """
  st = repulsion_state(opt_state)
  capacity = st.active.shape[0]
  d = _sq_distances(params, st.anchors, capacity)
  per_mode = [_weights(d, st.active, st.strength, st.width, m) for m in MODES]
  pick = lambda j: jnp.select([st.mode == i for i in range(len(MODES))], [x[j] for x in per_mode])
  w, penalty = pick(0), pick(1)
  grad_norm = optax.global_norm(_penalty_grad(params, st.anchors, w))
  kernel = jnp.exp(-d / (2.0 * st.width**2))
  out = {}
  for i in range(capacity):
    out[f'anchor/{i}/distance'] = jnp.sqrt(d[i])
    out[f'anchor/{i}/kernel'] = kernel[i]
    out[f'anchor/{i}/active'] = st.active[i].astype(jnp.float32)
  out['anchor/count'] = jnp.sum(st.active.astype(jnp.int32))
  out['anchor/penalty'] = penalty
  out['anchor/grad_norm'] = grad_norm
  if loss_grad is not None:
    loss_norm = optax.global_norm(loss_grad)
    out['anchor/grad_ratio'] = grad_norm / jnp.maximum(loss_norm, jnp.finfo(jnp.float32).tiny)
  return out


def active_anchor_metrics(metrics):
  """Host side: drops inactive slots' entries and the active flags from `anchor_metrics` output."""
  inactive = {
    k.split('/')[1] for k, v in metrics.items() if k.endswith('/active') and float(v) == 0.0
  }
  return {
    k: v
    for k, v in metrics.items()
    if not k.endswith('/active') and not (k.count('/') == 2 and k.split('/')[1] in inactive)
  }
