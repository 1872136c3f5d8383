"""config -> one optax chain, with the hyperparameters it applies kept (and settable) in its state.

The chain, in the order PyTorch applies the same pieces:
  clip_by_global_norm(grad_clip_norm)        if > 0 (torch clip_grad_norm_ on .grad)
  g x s for params matching optim.lr_scales  a param group's lr x s, its decay not (groups.py)
  g + weight_decay * θ                        coupled L2, torch SGD/Adam `weight_decay`
  + ∇ repulsion penalty                       if repulsion is used (see `uses_repulsion`)
  trace(momentum, nesterov)  | scale_by_adam(b1=momentum, b2, eps)
  + decoupled_weight_decay * θ                AdamW style; times lr below, like torch AdamW
  × (−learning_rate)
  0 for params matching optim.freeze          from their epoch on (requires_grad=False)
where the params matching optim.muon.pattern (when set) take muon.py's step instead of the
lines from the scaling to × (−learning_rate), at optim.muon.learning_rate times the schedule's
shape (learning_rate / its peak: an override of learning_rate scales both), as airbench94_muon
splits its filters from its biases and head;
and around it all, optim.lookahead (every_steps > 0): an EMA of the weights copied back into
them (groups.lookahead, airbench's lookahead).

optax.trace is PyTorch's SGD momentum (buf = μ buf + g; nesterov: g + μ buf; dampening 0), so
momentum 0 is plain SGD. For adam/adamw the injected `momentum` is β1, the parameter PyTorch's
OneCycleLR/CyclicLR cycle. `adam` and `adamw` build the same chain: both decays keep their
meaning (PyTorch AdamW's weight_decay is our decoupled_weight_decay).

Every hyperparameter below is injected (optax.inject_hyperparams) as a schedule with an override:
`current_hparams(opt_state)` reads the values the last update applied (schedule(0) before any),
`set_hparam(opt_state, name, value)` pins one from the next update on (None: back to the
schedule); both work inside jit without retracing. Names: learning_rate, momentum,
weight_decay, decoupled_weight_decay, and repulsion_strength and repulsion_width when repulsion
is used.
"""

import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxland.optim import groups, muon, schedules
from jaxland.optim import repulsion as repulsion_lib

OPTIMIZERS = ('sgd', 'adam', 'adamw')
MASKS = {'all': None, 'kernels': repulsion_lib.kernel_mask}


class HparamState(NamedTuple):
  count: jax.Array  # int32 updates so far.
  override: jax.Array  # float32; NaN follows the schedule.


class _Overridable:
  """An optax StatefulSchedule: fn(count), unless an override value has been set."""

  def __init__(self, fn):
    self.fn = fn

  def init(self):
    return HparamState(jnp.zeros([], jnp.int32), jnp.full([], jnp.nan, jnp.float32))

  def update(self, state, **extra_args):
    del extra_args
    return state._replace(count=optax.safe_increment(state.count))

  def __call__(self, state, **extra_args):
    del extra_args
    return jnp.where(jnp.isnan(state.override), self.fn(state.count), state.override)


class TableState(NamedTuple):
  count: jax.Array  # int32 updates so far.
  override: jax.Array  # float32; NaN follows the table.
  values: jax.Array  # float32 [total_steps + 1]: the value at each update count.


class _Tabled(_Overridable):
  """A StatefulSchedule reading its value at each count from a table in its state (set_table), so
  one chain serves members whose schedules differ in values (train.population)."""

  def __init__(self, length: int):
    self.length = length

  def init(self):
    nan = jnp.full([], jnp.nan, jnp.float32)
    return TableState(jnp.zeros([], jnp.int32), nan, jnp.zeros([self.length], jnp.float32))

  def __call__(self, state, **extra_args):
    del extra_args
    value = state.values[jnp.minimum(state.count, self.length - 1)]
    return jnp.where(jnp.isnan(state.override), value, state.override)


def _constant(value):
  value = float(value)
  return lambda count: jnp.full(jnp.shape(count), value, jnp.float32)


def uses_repulsion(config) -> bool:
  """Repulsion sits in the chain when the config's repulsion section (jaxland.distance) enables
  it or sets anchors (virtual ones, strength 0, when not enabled)."""
  r = config.get('repulsion')
  return r is not None and bool(
    r.enabled or tuple(r.anchor_epochs) or r.anchor_every or r.anchor_from
  )


def hyperparameter_fns(config, steps_per_epoch, total_steps) -> dict:
  """{name: fn(update count) -> value} of every injected hyperparameter of `config`."""
  o, r = config.optim, config.get('repulsion')
  sched = schedules.make_schedules(o, steps_per_epoch, total_steps)
  base_momentum = o.momentum if o.name == 'sgd' else o.b1
  fns = {
    'learning_rate': sched['learning_rate'],
    'momentum': sched['momentum'] or _constant(base_momentum),
    'weight_decay': _constant(o.weight_decay),
    'decoupled_weight_decay': _constant(o.decoupled_weight_decay),
  }
  if uses_repulsion(config):
    fns['repulsion_strength'] = _constant(r.strength if r.enabled else 0.0)
    fns['repulsion_width'] = _constant(r.width)
  return fns


def make_optimizer(
  config, steps_per_epoch, total_steps, tabled: bool = False, vmapped: bool = False
) -> optax.GradientTransformationExtraArgs:
  """The full optimizer of a validated `config` (config.optim, and config.repulsion when it is
  used); see the module doc. `tabled`: every hyperparameter is read from a table in the state
  (set_table), for populations whose members differ only in values; `vmapped`: the chain runs
  under jax.vmap (a population of several), so repulsion takes no conditional."""
  o, r = config.optim, config.get('repulsion')
  fns = hyperparameter_fns(config, steps_per_epoch, total_steps)
  use_rep = 'repulsion_strength' in fns

  def chain(**h):
    txs = []
    if o.grad_clip_norm > 0:
      txs.append(optax.clip_by_global_norm(o.grad_clip_norm))
    if o.lr_scales:
      txs.append(groups.scale_gradients(tuple((p, float(x)) for p, x in o.lr_scales)))
    txs.append(optax.add_decayed_weights(h['weight_decay']))
    if use_rep:
      txs.append(
        repulsion_lib.repulsion(
          h['repulsion_strength'],
          h['repulsion_width'],
          r.capacity,
          r.mode,
          MASKS[r.mask],
          conditional=not vmapped,  # No lax.switch on a batched index (it runs every branch).
        )
      )
    if o.name == 'sgd':
      txs.append(optax.trace(decay=h['momentum'], nesterov=bool(o.nesterov)))
    else:
      txs.append(optax.scale_by_adam(b1=h['momentum'], b2=o.b2, eps=o.eps))
    txs.append(optax.add_decayed_weights(h['decoupled_weight_decay']))
    txs.append(optax.scale_by_learning_rate(h['learning_rate']))
    if o.muon.pattern:  # Validated without clipping and repulsion, which see every leaf.
      txs = [with_muon(txs, h['learning_rate'])]
    if o.freeze:
      txs.append(
        groups.freeze(
          tuple((p, schedules.epochs_to_steps(e, steps_per_epoch)) for p, e in o.freeze)
        )
      )
    return optax.chain(*txs)

  def with_muon(txs, learning_rate):
    m = o.muon
    split = {
      'rest': optax.chain(*txs),
      'muon': muon.muon(
        learning_rate * (m.learning_rate / o.learning_rate), m.momentum, bool(m.nesterov),
        int(m.ns_steps), jnp.dtype(m.ns_dtype), bool(m.normalize),
      ),
    }  # fmt: skip
    return optax.multi_transform(split, lambda p: groups.labels(p, m.pattern, 'muon', 'rest'))

  # inject_hyperparams reads the hyperparameter names from the factory's signature.
  chain.__signature__ = inspect.Signature(
    [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY) for k in fns]
  )

  def schedule(fn):
    return _Tabled(int(total_steps) + 1) if tabled else _Overridable(fn)

  tx = optax.inject_hyperparams(chain)(**{k: schedule(f) for k, f in fns.items()})
  la = o.lookahead
  if la.every_steps <= 0:
    return tx
  return groups.lookahead(
    tx,
    every=int(la.every_steps),
    start=schedules.epochs_to_steps(la.start_epochs, steps_per_epoch),
    total=int(total_steps),
    steps_per_epoch=int(steps_per_epoch),
    decay_base=float(la.decay_base),
    decay_pow=float(la.decay_pow),
  )


def _inject_state(opt_state):
  cls = optax.InjectStatefulHyperparamsState
  found = [
    s
    for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, cls))
    if isinstance(s, cls)
  ]
  if len(found) != 1:
    raise ValueError(f'expected one inject_hyperparams state (make_optimizer), found {len(found)}')
  return found[0]


def current_hparams(opt_state) -> dict:
  """{name: scalar} of the hyperparameters the last update applied (schedule(0) before any)."""
  return dict(_inject_state(opt_state).hyperparams)


def set_table(opt_state, name, values):
  """The table of hyperparameter `name` of a tabled chain (make_optimizer(..., tabled=True));
  `values` [T] for one state, [members, T] for a population's stacked one."""
  cls = optax.InjectStatefulHyperparamsState

  def put(st):
    hs = dict(st.hyperparams_states)
    hs[name] = hs[name]._replace(values=jnp.asarray(values, jnp.float32))
    hp = dict(st.hyperparams)
    hp[name] = jnp.asarray(values[..., 0], jnp.asarray(hp[name]).dtype)
    return st._replace(hyperparams=hp, hyperparams_states=hs)

  return jax.tree.map(
    lambda x: put(x) if isinstance(x, cls) else x, opt_state, is_leaf=lambda x: isinstance(x, cls)
  )


def set_hparam(opt_state, name, value):
  """Pins hyperparameter `name` to `value` from the next update on; value None unpins it.

  Works with traced values inside jit (same structure and dtypes, so no retrace).
  """
  names = sorted(_inject_state(opt_state).hyperparams)
  if name not in names:
    raise ValueError(f'Unknown hyperparameter {name!r}; choose from {names}')
  cls = optax.InjectStatefulHyperparamsState

  def pin(st):
    v = jnp.asarray(jnp.nan if value is None else value, jnp.float32)
    hs = dict(st.hyperparams_states)
    hs[name] = hs[name]._replace(override=v)
    hp = dict(st.hyperparams)
    if value is not None:
      hp[name] = v.astype(jnp.asarray(hp[name]).dtype)
    return st._replace(hyperparams=hp, hyperparams_states=hs)

  return jax.tree.map(
    lambda x: pin(x) if isinstance(x, cls) else x,
    opt_state,
    is_leaf=lambda x: isinstance(x, cls),
  )
