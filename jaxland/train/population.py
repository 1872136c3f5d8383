"""Populations: P runs that differ only in values, trained as one state with a leading member axis.

`config.population` names the values that vary (seeds, learning rate and any schedule knob,
momentum, weight decay, repulsion strength and width, label smoothing, dropout rates), zipped or
crossed. The members share model, data, shapes and schedule form, so one jitted `jax.vmap` of the
loop's own train step trains them all: each member has its own weights, optimizer state and
hyperparameters (tables of the values its own schedule gives at every step), BatchNorm
statistics, dropout and augmentation keys, batch order (a per-member gather from the one
device-resident dataset) and repulsion anchors. On several devices the member axis may be split
over the rows of a ('member', 'data') mesh (`member_devices`). A member that diverges or stops
early is frozen (its updates masked) while the others go on. Each member keeps an ordinary run
directory (config.json with its own values, status, summary, metrics.jsonl, checkpoints), so every
task reads it like a sequential run, and a stopped population resumes from its members'
checkpoints.
"""

import copy
import dataclasses
import functools
import itertools
import json
import math
import os
import string
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxland import models, optim, runtime, validation
from jaxland.data import pipeline
from jaxland.optim import build
from jaxland.output import progress as progress_lib
from jaxland.output import tables
from jaxland.output.metrics import RunWriter
from jaxland.rundir import artifacts, checkpoints
from jaxland.rundir import workdir as workdir_lib
from jaxland.train import loop
from jaxland.train import state as state_lib

MODES = ('zip', 'product')
FINAL = ('done', 'diverged')  # A member's statuses that end its training for good.
SETTINGS = ('mode', 'names', 'member_root', 'member_devices')  # config.population's non-axes.
# The values a member may change: dotted config keys (schedule knobs: any float of optim.schedule).
VARYING = (
  'seed',
  'init_seed',
  'data_seed',
  'optim.learning_rate',
  'optim.momentum',
  'optim.weight_decay',
  'optim.decoupled_weight_decay',
  'repulsion.strength',
  'repulsion.width',
  'train.label_smoothing',
  'model.dropout',
  'model.dropout2d',
)
# The values the train step takes as arguments (the optimizer's are tables in its state).
STEP_VALUES = ('train.label_smoothing', 'model.dropout', 'model.dropout2d')
SCHEDULE_KNOBS = (
  'eta_min',
  'gamma',
  'div_factor',
  'final_div_factor',
  'pct_start',
  'base_lr',
  'base_momentum',
  'max_momentum',
  'warmup_epochs',
)
ALL_VARYING = (*VARYING, *(f'optim.schedule.{k}' for k in SCHEDULE_KNOBS))


def defaults() -> ml_collections.ConfigDict:
  """config.population: each key, a tuple of values its members take ('' / () = not varied)."""
  p = ml_collections.ConfigDict()
  p.mode = 'zip'  # zip: the i-th value of every axis together | product: every combination.
  # Member run-dir names: one per member, in members() order; or one template keyed by the
  # values, e.g. ('lr{learning_rate:g}_s{seed}',) (fields: dotted axis keys or their last part),
  # which no axis order can mislabel; () = made of the varied values, as sweep points.
  p.names = ()
  p.member_root = ''  # Folder of the member run dirs ('' = the population's workdir).
  # Devices the member axis is split over: a ('member', 'data') mesh of member_devices rows, each
  # member's batch split over a row (1: every device holds every member, as a plain run's mesh).
  p.member_devices = 1
  for key in VARYING:
    *sections, leaf = key.split('.')
    node = p
    for section in sections:
      if section not in node:
        node[section] = ml_collections.ConfigDict()
      node = node[section]
    node[leaf] = ()
  p.optim.schedule = ml_collections.ConfigDict({k: () for k in SCHEDULE_KNOBS})
  return p


def axes(config) -> dict:
  """{dotted key: values} of the population's non-empty axes ({} for a plain run)."""
  if 'population' not in config:
    return {}
  flat = {}

  def walk(node, prefix):
    for k, v in node.items():
      if isinstance(v, ml_collections.ConfigDict):
        walk(v, f'{prefix}{k}.')
      elif k not in SETTINGS and tuple(v):
        flat[f'{prefix}{k}'] = tuple(v)

  walk(config.population, '')
  return flat


def validate_section(config, num_devices: int = 1) -> None:
  """ConfigError for a population that cannot train as one state (jaxland.config then checks
  each member as a run of its own)."""
  found = axes(config)
  if not found:
    return
  v = validation
  v.choice(config, 'population.mode', MODES)
  lengths = {len(vals) for vals in found.values()}
  if config.population.mode == 'zip' and len(lengths) > 1:
    v.fail('population', {k: len(x) for k, x in found.items()}, 'zipped axes need equal lengths')
  for key, values in found.items():
    if not _settable(config, key):
      v.fail(f'population.{key}', values, f'the config (model {config.model.name!r}) has no {key}')
  count = len(members(config))
  v.integer(config, 'population.member_devices', 1)
  split = config.population.member_devices
  if num_devices % split or count % split:
    v.fail(
      'population.member_devices',
      split,
      f'must divide the device count ({num_devices}) and the member count ({count})',
    )
  names = tuple(config.population.names)
  if _template(config) is not None:
    for field in _fields(names[0]):
      if _lookup(members(config)[0], field) is None:
        v.fail('population.names', names, f'template fields among the axes {sorted(found)}')
  elif names and len(names) != count:
    v.fail('population.names', names, f'one name per member ({count}), or one template')
  try:
    made = member_names(config)
  except (ValueError, TypeError) as e:
    v.fail('population.names', names, f'a template whose format specs fit the values ({e})')
  if len(set(made)) != len(made) or any('/' in n or n in ('', '.', '..') for n in made):
    v.fail('population.names', tuple(made), 'distinct names, each a folder name')


def _settable(config, key: str) -> bool:
  """Whether a member can set `key`: a key of the config, or a field of its model (a model
  default the config leaves unspelled, e.g. a ConvNet's dropout2d)."""
  section, _, leaf = key.rpartition('.')
  if section == 'model':
    return leaf in models.allowed_kwargs(config.model.name)
  try:
    value(config, key)
  except (KeyError, AttributeError):
    return False
  return True


def may_vary(key: str) -> bool:
  """Whether dotted config key `key` may differ between members of one population."""
  return key in ALL_VARYING


def value(config, key: str):
  node = config
  for part in key.split('.'):
    node = node[part]
  return node


def set_axis(config, key: str, values) -> None:
  """config.population.<key> = tuple(values) (config unlocked)."""
  *sections, leaf = key.split('.')
  node = config.population
  for section in sections:
    node = node[section]
  node[leaf] = tuple(values)


def without(config, keys) -> dict:
  """config as JSON data less `keys` and the population section: what members must share."""
  d = workdir_lib.config_dict(config)
  d.pop('population', None)
  for key in keys:
    *sections, leaf = key.split('.')
    node = d
    for section in sections:
      node = node.get(section, {})
    node.pop(leaf, None)
  return d


def members(config) -> list[dict]:
  """[{dotted key: value}] of every member, in order: the axes in sorted key order (ConfigDicts
  iterate sorted), so under `product` the last key in that order varies fastest."""
  found = axes(config)
  if not found:
    return []
  keys = list(found)
  if config.population.mode == 'zip':
    combos = zip(*(found[k] for k in keys), strict=True)
  else:
    combos = itertools.product(*(found[k] for k in keys))
  return [dict(zip(keys, combo, strict=True)) for combo in combos]


def member_names(config) -> list[str]:
  """Run-dir names: population.names (a list, or one template filled with each member's
  values), else the varied values ('learning_rate=0.1,seed=1')."""
  template = _template(config)
  if template is not None:
    return [_fill(template, m) for m in members(config)]
  if tuple(config.population.names):
    return list(config.population.names)
  return [
    ','.join(f'{k.rsplit(".", 1)[-1]}={_label(val)}' for k, val in m.items())
    for m in members(config)
  ]


def _template(config) -> str | None:
  """population.names' one template ('{seed}' fields), or None for a list or no names."""
  names = tuple(config.population.names)
  return names[0] if len(names) == 1 and _fields(names[0]) else None


def _fields(template: str) -> list[str]:
  return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def _lookup(member: dict, field: str):
  """A member's value of `field`: a dotted axis key, or the last part of exactly one."""
  if field in member:
    return member[field]
  found = [v for k, v in member.items() if k.rsplit('.', 1)[-1] == field]
  return found[0] if len(found) == 1 else None


def _fill(template: str, member: dict) -> str:
  parts = string.Formatter().parse(template)
  return ''.join(
    text + (format(_lookup(member, field), spec) if field else '') for text, field, spec, _ in parts
  )


def _label(value) -> str:
  return f'{value:g}' if isinstance(value, float) else str(value)


def member_config(config, overrides: dict):
  """The plain run config of one member: the population's config with its values set."""
  member = copy.deepcopy(config)
  member.unlock()
  member.population = defaults()
  for key, value in overrides.items():
    *sections, leaf = key.split('.')
    node = member
    for section in sections:
      node = node[section]
    node[leaf] = type(node[leaf])(value) if isinstance(node.get(leaf), float) else value
  member.lock()
  return member


def member_dir(config, workdir: str, name: str) -> str:
  """A member's run dir: `name` in population.member_root (relative to `workdir`), else in
  `workdir` itself."""
  return os.path.join(workdir, config.population.member_root, name)


# --- One optimizer for all: hyperparameters as per-member tables ----------------------------


def _tables(configs, steps_per_epoch: int, total_steps: int) -> dict:
  """{hyperparameter: float32 [P, total_steps + 1]}: each member's value at every update count."""
  counts = jnp.arange(total_steps + 1)
  rows = [build.hyperparameter_fns(c, steps_per_epoch, total_steps) for c in configs]
  return {name: jnp.stack([fns[name](counts) for fns in rows]) for name in rows[0]}


# --- The population run -----------------------------------------------------------------------


@dataclasses.dataclass
class Member:
  """One member's record: its config, run dir, writer, checkpoints and bookkeeping."""

  index: int
  name: str
  config: object
  workdir: str
  writer: RunWriter = None
  manager: object = None
  callbacks: list = dataclasses.field(default_factory=list)
  meta: dict = dataclasses.field(default_factory=loop._initial_meta)
  status: str = 'running'
  message: str = ''
  end_step: int = 0  # The step at which it stopped (diverged, early stopping, interrupted).
  summary: dict = None
  finished: dict = None  # Its summary.json when an earlier start finished it (frozen, kept as is).


def _finished_before(mdir: str) -> dict | None:
  """A member's summary.json when an earlier start finished it (done, diverged), read before this
  start marks the member running: a frozen member must resume frozen, with its record intact."""
  path = os.path.join(mdir, 'summary.json')
  if workdir_lib.read_status(mdir)['status'] not in FINAL or not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def train(config, workdir: str, callbacks_for=lambda config: []) -> dict:
  """Trains the population of `config` in `workdir` (resuming members when it can); a summary
  with every member's status. `callbacks_for(member_config)` gives each member its callbacks."""
  configs = [member_config(config, m) for m in members(config)]
  names = member_names(config)
  people = []
  for i, (name, cfg) in enumerate(zip(names, configs, strict=True)):
    mdir = member_dir(config, workdir, name)
    os.makedirs(mdir, exist_ok=True)
    workdir_lib.prepare(mdir, cfg)
    finished = _finished_before(mdir)
    people.append(Member(i, name, cfg, mdir, callbacks=list(callbacks_for(cfg)), finished=finished))
  if all(m.finished for m in people):
    print('[jaxland] every member finished before: nothing to train', flush=True)
    return {
      'status': 'done',
      'step': max(m.finished['step'] for m in people),
      'members': {m.name: m.finished['status'] for m in people},
    }
  for m in people:
    if not m.finished:
      workdir_lib.write_status(m.workdir, 'running')
  try:
    summary = _train(config, workdir, people)
  except BaseException as e:
    status = 'interrupted' if isinstance(e, KeyboardInterrupt) else 'failed'
    for m in people:
      if m.status == 'running':
        m.status, m.message = status, f'{type(e).__name__}: {e}'.splitlines()[0]
    raise
  finally:
    for m in [m for m in people if not m.finished]:
      info = {'message': m.message} | ({'step': m.summary['step']} if m.summary else {})
      workdir_lib.write_status(m.workdir, m.status, **info)
      if m.summary is not None:
        tables.write_json(os.path.join(m.workdir, 'summary.json'), m.summary)
      if m.writer is not None:
        m.writer.close()
  return summary


def _build(config, people):
  """The shared run (data, model, mesh, eval functions), the population tx and stacked state."""
  base = people[0].config
  mesh = pipeline.make_member_mesh(config.population.member_devices)
  run = loop.build_run(base, '', writer=None, mesh=mesh, fresh_state=False)
  spe, total = run.steps_per_epoch, run.total_steps
  tables = _tables([m.config for m in people], spe, total)
  tx = build.make_optimizer(base, spe, total, tabled=True, vmapped=len(people) > 1)
  input_shape = run.dataset.train[0].shape[1:]
  seeds = np.asarray([artifacts.seeds(m.config) for m in people], np.int32)
  create = functools.partial(
    state_lib.create_train_state, run.model, tx, input_shape, train_data=loop.init_data(run.dataset)
  )
  if len(people) == 1:  # The plain run's own initialisation.
    stacked = _expanded(create(*(int(x) for x in seeds[0])))
  else:  # One compiled initialisation for every member.
    stacked = runtime.run_once(jax.vmap(create), seeds[:, 0], seeds[:, 1])
  opt_state = stacked.opt_state
  for name, table in tables.items():
    opt_state = build.set_table(opt_state, name, table)
  if 'repulsion_width' in tables:
    first = {k: tables[f'repulsion_{k}'][:, 0] for k in ('strength', 'width')}
    opt_state = optim.set_kernel(opt_state, **first)
  stacked = stacked.replace(opt_state=opt_state)
  run.tx = tx
  run.state = pipeline.put_global(stacked, pipeline.member_sharding(run.mesh))
  return run


@jax.jit
def _slice(tree, i):
  """Member i of a stacked tree: one dispatch for every leaf (eager, a leaf costs one each)."""
  return jax.tree.map(lambda x: x[i], tree)


@functools.partial(jax.jit, donate_argnums=(0,))
def _put(tree, i, value):
  """The stacked tree with member i replaced by `value`, in place."""
  return jax.tree.map(lambda x, v: x.at[i].set(v), tree, value)


def _step_values(config) -> dict:
  """{key: float32 [P]} of the STEP_VALUES the members vary (the others stay static)."""
  found = axes(config)
  return {
    k: jnp.asarray([m[k] for m in members(config)], jnp.float32) for k in STEP_VALUES if k in found
  }


def _step_kwargs(run, values: dict) -> dict:
  """The train step's keyword arguments for one member's (traced) step values."""
  kwargs = {}
  if 'train.label_smoothing' in values:
    kwargs['label_smoothing'] = values['train.label_smoothing']
  fields = {k.split('.', 1)[1]: x for k, x in values.items() if k.startswith('model.')}
  if fields:  # The one model, with this member's traced dropout rates.
    kwargs['model'] = run.model.clone(**fields)
  return kwargs


def _population_step(run, config):
  """jit(vmap(the loop's train step)) over members, updates masked for frozen members."""
  values = _step_values(config)
  step_fn = loop.train_step_fn(run)

  if len(members(config)) == 1:  # The plain run's own compiled step, on the one member (a lone
    return _LoneTake(loop.make_train_step(run))  # member never trains frozen: the population
    #                                              ends with it).

  def member(state, images, labels, epoch_idx, alive, values):
    new, metrics = step_fn(state, images, labels, epoch_idx, **_step_kwargs(run, values))
    return jax.tree.map(lambda n, o: jnp.where(alive, n, o), new, state), metrics

  def free(state, images, labels, epoch_idx, alive, values):
    del alive  # Every member trains: no masking (it costs a copy of the state per step).
    return step_fn(state, images, labels, epoch_idx, **_step_kwargs(run, values))

  in_axes = (0, None, None, 0, 0, 0)
  over_members = _member_map(run)
  masked, unmasked = (
    jax.jit(
      over_members(fn, in_axes),
      donate_argnums=(0,),
      out_shardings=pipeline.member_sharding(run.mesh),
    )
    for fn in (member, free)
  )

  return _Take(masked, unmasked, values)


class _Take:
  """The population's step: the unmasked program while every member trains, else the masked
  one. `compile` builds the unmasked one ahead of the first step (the masked one compiles when a
  member first freezes, inside that epoch's time) and returns the seconds it took."""

  def __init__(self, masked, unmasked, values):
    self.masked, self.unmasked, self.values = masked, unmasked, values

  def compile(self, state, images, labels, idx, alive) -> float:
    self.unmasked = loop.AheadOfTime(self.unmasked, state, images, labels, idx, alive, self.values)
    return self.unmasked.seconds

  def __call__(self, state, images, labels, idx, alive):
    fn = self.unmasked if bool(np.all(alive)) else self.masked
    return fn(state, images, labels, idx, alive, self.values)


class _LoneTake:
  """A population of one member: the plain run's step on it, compiled ahead like `_Take`'s."""

  def __init__(self, plain):
    self.plain = plain

  def compile(self, state, images, labels, idx, alive) -> float:
    del alive
    self.plain = loop.AheadOfTime(self.plain, _slice(state, 0), images, labels, idx[0])
    return self.plain.seconds

  def __call__(self, state, images, labels, idx, alive):
    del alive
    return _expanded(self.plain(_slice(state, 0), images, labels, idx[0]))


def _member_map(run):
  """How a function of one member runs over the member axis: `_unrolled` on the CPU for a model
  with convolutions, else `_vmapped`. vmap turns a conv whose input and kernel both carry the
  member axis into one grouped convolution, which XLA:CPU runs about 7x slower than the members'
  own convolutions one after another (bench/member_conv.py; a ResNet-20 grid trained at 0.49x of
  its sequential runs). Unrolled, each member runs exactly the plain run's step."""
  has_conv = any(x.ndim == 5 for x in jax.tree.leaves(run.state.params))  # [P, H, W, I, O]
  unroll = has_conv and jax.default_backend() == 'cpu' and run.mesh.shape['member'] == 1
  return _unrolled if unroll else _vmapped


def _vmapped(fn, in_axes):
  return jax.vmap(fn, in_axes=in_axes, spmd_axis_name=pipeline.MEMBER_AXIS)


def _unrolled(fn, in_axes):
  """fn over the leading member axis of the in_axes == 0 arguments, one member at a time."""

  def member(args, i):
    pairs = zip(args, in_axes, strict=True)
    return fn(*(a if ax is None else jax.tree.map(lambda x: x[i], a) for a, ax in pairs))

  def over(*args):
    size = next(len(jax.tree.leaves(a)[0]) for a, ax in zip(args, in_axes, strict=True) if ax == 0)
    outs = [member(args, i) for i in range(size)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return over


def _expanded(tree):
  return jax.tree.map(lambda x: x[None], tree)


def _orders(run, people):
  """(epoch) -> int32 [P, steps_per_epoch, batch]: each member's batch order of that epoch."""
  seeds = jnp.asarray([artifacts.seeds(m.config)[1] for m in people], jnp.int32)
  n, batch = len(run.dataset.train[1]), run.config.data.batch_size
  fn = jax.jit(
    jax.vmap(pipeline.epoch_batches, in_axes=(0, None, None, None)),
    static_argnums=(2, 3),
    out_shardings=pipeline.member_sharding(run.mesh),
  )
  compiled = runtime.compiled_cold(fn, seeds, 0, n, batch)  # Compiles once, runs once an epoch.
  return lambda epoch: compiled(seeds, int(epoch))


def _evaluate_all(run):
  """(params [P, ...], batch_stats [P, ...]) -> {split: {'loss': [P], 'accuracy': [P]}}, its
  programs compiled ahead of the first evaluation; and the seconds that took."""
  fns, size, seconds = {}, len(run.state.step), 0.0
  params, stats = run.state.params, run.state.batch_stats
  for split, (images, labels) in run.device_data.items():
    if split == 'train':
      continue
    if size == 1:  # The plain run's own compiled evaluation, on the one member.
      plain = loop.AheadOfTime(run.eval_fns[split], _slice(params, 0), _slice(stats, 0))
      fns[split] = lambda p, b, plain=plain: _expanded(plain(_slice(p, 0), _slice(b, 0)))
    else:
      sums = loop.split_eval_fns(run, images, labels)[0]
      plain = loop.AheadOfTime(jax.jit(_member_map(run)(sums, (0, 0))), params, stats)
      fns[split] = plain
    seconds += plain.seconds

  def evaluate(params, batch_stats):
    out = {}
    for split, fn in fns.items():
      s = jax.device_get(fn(params, batch_stats))
      out[split] = {'loss': s['loss_sum'] / s['count'], 'accuracy': s['correct'] / s['count']}
    return out

  return evaluate, seconds


def _member_view(run, m: Member, state):
  """The Run a member's callbacks see: its own state, config, writer and run dir."""
  return dataclasses.replace(run, config=m.config, workdir=m.workdir, writer=m.writer, state=state)


def _restore(run, people) -> int:
  """Restores the members from their checkpoints; the step the population goes on from (0 for a
  fresh start). Finished members (done, diverged) come back frozen at their last checkpoint;
  the others must share their newest good step."""
  if not people[0].config.resume or not any(m.manager.latest_step() for m in people):
    return 0
  template = _slice(run.state, 0)
  states, steps_of = [], {}
  for m in people:
    if m.finished:
      m.status, m.message = m.finished['status'], m.finished.get('message', '')
    if m.manager.latest_step() is None:
      states.append(_slice(run.state, m.index))
      if not m.finished:
        raise checkpoints.CheckpointError(f'population member {m.name} has no checkpoint')
      continue
    state, meta, step = checkpoints.restore(m.manager, template, m.workdir)
    states.append(state)
    m.meta = meta
    if not m.finished:
      steps_of[m.name] = step
  if len(set(steps_of.values())) > 1:
    raise checkpoints.CheckpointError(
      f'population members stopped at different steps {steps_of}; rerun with '
      '--config.overwrite=True'
    )
  common = next(iter(steps_of.values()), 0)
  stacked = jax.tree.map(lambda *xs: np.stack(xs), *jax.device_get(states))
  run.state = pipeline.put_global(stacked, pipeline.member_sharding(run.mesh))
  for m in people:
    if m.status == 'running':
      m.writer.resume(common)
  print(f'[jaxland] population resumed from step {common}', flush=True)
  return common


def _train(config, workdir: str, people) -> dict:
  run = _build(config, people)
  best_key = loop.best_metric_key(run.config, has_val='val' in run.eval_fns)
  for m in people:
    m.writer = RunWriter(m.workdir)
    m.manager = checkpoints.make_manager(
      m.workdir, m.config.train.keep_checkpoints, best_key, loop._mode(best_key)
    )
  try:
    with loop._stop_on_signals(run):
      return _epochs(config, run, people, best_key)
  finally:
    for m in people:
      m.manager.close()


def _with_view(run, m: Member, fn):
  """fn(the member's Run view): the result; a state the callback replaced, and a stop it asked
  for, go back to the population."""
  view = _member_view(run, m, _slice(run.state, m.index))
  before = view.state
  out = fn(view)
  if view.state is not before:
    run.state = _put(run.state, m.index, view.state)
  run.stop_requested = run.stop_requested or view.stop_requested
  return out


def _epochs(config, run, people, best_key) -> dict:
  """The epochs of a population: the plain loop's (train.loop._train_epochs), kept per member."""
  step = _restore(run, people)
  # Per-step metric dicts of [P] arrays since the last log / in this epoch (sliced per member
  # only on the host, when they are logged: a device slice per member and step is slow).
  pending = _stacked(people, [m.meta.pop('pending', []) for m in people])
  epoch_metrics = _stacked(people, [m.meta.pop('epoch_metrics', []) for m in people])
  for m in people:
    m.meta.setdefault('first_loss', None)
  running = [m for m in people if m.status == 'running']
  for m in running:
    for cb in m.callbacks:
      _with_view(run, m, cb.on_start)
  clocks = {m.name: loop._Clock(m.meta, float(m.config.train.target_accuracy)) for m in people}
  take = _population_step(run, config)
  orders = _orders(run, people)
  evaluate, compile_seconds = _evaluate_all(run)
  images, labels = run.device_data['train']
  compile_seconds += take.compile(
    run.state, images, labels, orders(step // run.steps_per_epoch), alive_mask(people)
  )
  for m in running:  # Each member's clock reads the population's wall time (the members train
    #                   together) and carries its compile, as the plain loop's does.
    clocks[m.name].clock['compile'] += compile_seconds
  spe, total = run.steps_per_epoch, run.total_steps
  log_every = run.config.train.log_every_steps or spe
  progress = progress_lib.Progress('population epoch', -(-(total - step) // spe))
  in_flight = []

  def alive():
    return alive_mask(people)

  def stop(m, status, message):
    m.status, m.message, m.end_step = status, message, step
    clocks[m.name].mark()
    m.meta['message'] = message

  def save(m, metric=None):
    meta = dict(m.meta, pending=_member_rows(pending, m.index))
    meta['epoch_metrics'] = _member_rows(epoch_metrics, m.index)
    metrics = None if metric is None else {best_key: float(metric)}
    checkpoints.save(m.manager, step, _slice(run.state, m.index), meta, metrics=metrics)

  while step < total and any(m.status == 'running' for m in people):
    epoch = step // spe
    idx, mask = orders(epoch), alive()
    t0 = time.time()
    epoch_end = min((epoch + 1) * spe, total)
    while step < epoch_end:
      images, labels = run.device_data['train']
      run.state, metrics = take(run.state, images, labels, idx, mask)
      step += 1
      in_flight.append(metrics['loss'])
      if len(in_flight) > loop.MAX_STEPS_IN_FLIGHT:
        in_flight.pop(0).block_until_ready()
      pending.append(metrics)
      epoch_metrics.append(metrics)
      if step % log_every == 0:
        host = jax.device_get(pending)
        hparams = jax.device_get(build.current_hparams(run.state.opt_state))
        for m in [m for m in people if m.status == 'running']:
          scalars = loop._mean_metrics(_member_rows(host, m.index, floats=False), 'train/')
          scalars.update({f'optim/{k}': v[m.index] for k, v in hparams.items()})
          m.writer.write_scalars(step, scalars)
          status, message = loop._check_loss(m.config, m.meta, float(scalars['train/loss']), step)
          if status != 'done':
            stop(m, status, message)
            print(f'[jaxland] member {m.name} {status}: {message}; frozen', flush=True)
        pending, mask = [], alive()
      for m in [m for m in people if m.status == 'running']:
        for cb in m.callbacks:
          if cb.every_steps and step % cb.every_steps == 0:
            scalars = _with_view(run, m, cb.on_step)
            if scalars:
              m.writer.write_scalars(step, scalars)
      if run.stop_requested and step < epoch_end:
        break
    if run.stop_requested and step < epoch_end:  # Mid-epoch: save every running member.
      for m in [m for m in people if m.status == 'running']:
        m.meta['epoch'] = epoch
        save(m)
        stop(m, 'interrupted', f'stopped by a signal at step {step}; rerun to resume')
      break
    jax.block_until_ready(run.state.params)
    epoch_time = time.time() - t0
    evals = {}
    if (epoch + 1) % run.config.train.eval_every_epochs == 0 or step == total:
      evals = evaluate(run.state.params, run.state.batch_stats)
    stopping = run.stop_requested and step < total  # A signal on the epoch's last step.
    host, epoch_metrics = jax.device_get(epoch_metrics), []
    for m in [m for m in people if m.status == 'running']:
      scalars = {'epoch': epoch + 1, 'epoch_time': epoch_time}
      scalars.update(loop._mean_metrics(_member_rows(host, m.index, floats=False), 'train_epoch/'))
      for split, values in evals.items():
        scalars.update({f'{split}/{k}': float(v[m.index]) for k, v in values.items()})
      for cb in m.callbacks:
        at_end = functools.partial(_epoch_end, cb, epoch + 1)
        scalars.update(_with_view(run, m, at_end) or {})
      clocks[m.name].tick(scalars, epoch_time)
      m.writer.write_scalars(step, scalars)
      bad = [
        k
        for k, v in scalars.items()
        if isinstance(v, float)
        and not math.isfinite(v)
        and k.split('/')[-1] in ('loss', 'accuracy')
      ]
      if bad:
        stop(m, 'diverged', f'non-finite {bad[0]} ({scalars[bad[0]]}) after epoch {epoch + 1}')
        continue
      m.meta['epoch'] = epoch + 1
      stop_early = loop._update_best(m.config, best_key, m.meta, scalars, step)
      if (
        (epoch + 1) % m.config.train.checkpoint_every_epochs == 0
        or step == total
        or stop_early
        or stopping
      ):
        save(m, scalars.get(best_key))
      if stop_early:
        patience = m.config.train.early_stopping_patience
        stop(
          m, 'done', f'early stopping after epoch {epoch + 1}: no improvement for {patience} epochs'
        )
      elif stopping:
        stop(m, 'interrupted', f'stopped by a signal at step {step}; rerun to resume')
    progress.tick(f'(step {step})', f'{sum(m.status == "running" for m in people)} running')
    if stopping:
      break
  final = evaluate(run.state.params, run.state.batch_stats)
  for m in people:
    if m.status == 'running':
      m.status, m.end_step = 'done', step
    if m.finished:
      m.summary = m.finished
      continue
    m.summary = _member_summary(run, m, final) | clocks[m.name].summary()
    print(f'[jaxland] member {m.name} {m.status}: {loop.summary_line(m.summary)}', flush=True)
  interrupted = any(m.status == 'interrupted' for m in people)
  return {
    'status': 'interrupted' if interrupted else 'done',
    'step': step,
    'members': {m.name: m.status for m in people},
  }


def alive_mask(people) -> np.ndarray:
  """bool [P]: which members still train."""
  return np.asarray([m.status == 'running' for m in people])


def _stacked(people, per_member: list[list[dict]]) -> list[dict]:
  """The running members' restored per-step rows (equal in number) as per-step dicts of [P]
  float32; frozen members, which log nothing more, get zeros."""
  running = [rows for m, rows in zip(people, per_member, strict=True) if m.status == 'running']
  if not running or not running[0]:
    return []
  n, keys = len(running[0]), list(running[0][0])
  zeros = [dict.fromkeys(keys, 0.0)] * n
  per_member = [rows if len(rows) == n else zeros for rows in per_member]
  return [
    {k: np.asarray([rows[i][k] for rows in per_member], np.float32) for k in keys} for i in range(n)
  ]


def _member_rows(stacked: list[dict], index: int, floats: bool = True) -> list[dict]:
  """One member's per-step rows of stacked metric dicts: JSON floats, or float32 scalars."""
  host = jax.device_get(stacked)
  cast = float if floats else np.float32
  return [{k: cast(np.asarray(v)[index]) for k, v in row.items()} for row in host]


def _epoch_end(callback, epoch: int, view) -> dict:
  return callback.on_epoch_end(view, epoch)


def _member_summary(run, m: Member, final: dict) -> dict:
  """The member's summary.json: what the plain loop writes for a run that ended like this one."""
  summary = {
    'status': m.status,
    'step': m.end_step,
    'epoch': m.meta['epoch'],
    'message': m.message,
    'dataset': run.dataset.name,
    'best': m.meta.get('best'),
    'best_key': m.meta.get('best_key'),
    'best_epoch': m.meta.get('best_epoch'),
  }
  if m.status == 'done':
    for split, values in final.items():
      summary.update({f'final_{split}_{k}': float(v[m.index]) for k, v in values.items()})
  return summary


def enabled(config) -> bool:
  """Whether `config` describes a population (any population axis set)."""
  return bool(axes(config))
