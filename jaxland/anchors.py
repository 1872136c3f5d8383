"""Anchors for repulsion during training: when they are set, model snapshots, and the drift logged.

A loop callback (`anchor_callback`, registered in jaxland.tasks.CALLBACKS) that, driven by
config.repulsion:
  * sets an anchor (the current params) after the epochs in `anchor_epochs`, every `anchor_every`
    epochs (epochs k, 2k, ... before the last; the thesis' 600 epochs with k = 150 give 3), and
    once at the start from `anchor_from` ('<run dir>[:step]', any run's Orbax checkpoint; with
    `start_from_anchor` training also starts at those weights, with fresh momentum). Anchors live
    in the optimizer state (jaxland.optim.repulsion), so they are checkpointed and restored with
    it; the write is jitted once, so setting an anchor never recompiles anything;
  * saves a snapshot (params + batch_stats) at every anchor epoch and at `snapshot_epochs` /
    every `snapshot_every` epochs, as workdir/snapshots/epoch_XXXX.npz (flat '/'-joined keys under
    'params/' and 'batch_stats/', plus '__epoch__' and '__step__'), for jaxland.ensemble;
  * logs every epoch (and at step 0), from one jitted probe:
      anchor/<i>/distance, anchor/<i>/kernel   L2 distance to anchor slot i (over the repulsion
                                               mask's leaves) and exp(-d^2 / 2 sigma^2)
      anchor/count, anchor/penalty             active anchors, penalty P
      anchor/grad_norm, anchor/grad_ratio      ||grad P|| (at the strength in use; 0 for virtual
                                               anchors) and its ratio to ||grad CE|| on a fixed
                                               train batch (the first batch_size examples, train-
                                               mode BatchNorm, fixed dropout key, no L2 term)
      anchor/init_distance                     L2 distance of all params to the initial weights
      ensemble/accuracy, ensemble/size         with snapshots (log_ensemble): accuracy of the
                                               equal-weight softmax average of the snapshots of
                                               earlier epochs and the current model on the test
                                               split (val if none)
Runs without repulsion but with anchor settings keep "virtual" anchors (strength 0): the same
numbers are logged and training is unchanged, giving the baseline's drift (the thesis' blue
curves). With more anchors than `capacity`, slot i holds anchor i mod capacity (ring buffer).
"""

import collections
import glob
import os
import re

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxland import checkpoints
from jaxland.data import pipeline
from jaxland.optim import active_anchor_metrics, add_anchor, anchor_metrics, build
from jaxland.train import loop, steps
from jaxland.train import state as state_lib

SNAPSHOT_DIR = 'snapshots'
_SNAPSHOT_RE = re.compile(r'^epoch_(\d{4,})\.npz$')


def anchor_schedule(config) -> tuple[int, ...]:
  """Epochs (1-based) after which an anchor is set: anchor_epochs, plus k, 2k, ... < num_epochs."""
  r, n = config.repulsion, config.train.num_epochs
  every = _count_key('repulsion.anchor_every', r.anchor_every)
  epochs = set(_epochs_key('repulsion.anchor_epochs', r.anchor_epochs, n))
  if every:
    epochs.update(range(every, n, every))
  return tuple(sorted(epochs))


def snapshot_schedule(config) -> tuple[int, ...]:
  """Epochs after which a snapshot is saved: every anchor epoch, snapshot_epochs, k, 2k, ... < n."""
  r, n = config.repulsion, config.train.num_epochs
  every = _count_key('repulsion.snapshot_every', r.snapshot_every)
  epochs = set(anchor_schedule(config))
  epochs.update(_epochs_key('repulsion.snapshot_epochs', r.snapshot_epochs, n))
  if every:
    epochs.update(range(every, n, every))
  return tuple(sorted(epochs))


def _count_key(key, value) -> int:
  if isinstance(value, bool) or int(value) != value or value < 0:
    raise ValueError(f'{key}={value!r} is invalid; allowed: an int >= 0 (0 = off)')
  return int(value)


def _epochs_key(key, value, num_epochs) -> tuple[int, ...]:
  epochs = tuple(value)
  if any(int(e) != e or not 1 <= e <= num_epochs for e in epochs):
    raise ValueError(f'{key}={epochs!r} is invalid; allowed: epochs in 1..{num_epochs}')
  return tuple(int(e) for e in epochs)


# --- Snapshots ------------------------------------------------------------------------------------


def snapshot_path(workdir: str, epoch: int) -> str:
  return os.path.join(workdir, SNAPSHOT_DIR, f'epoch_{epoch:04d}.npz')


def save_snapshot(workdir: str, epoch: int, step: int, params, batch_stats) -> str:
  """Writes params and batch_stats after `epoch` (at `step`) as one flat npz; returns its path."""
  flat = {'__epoch__': np.int64(epoch), '__step__': np.int64(step)}
  for name, tree in (('params', params), ('batch_stats', batch_stats)):
    tree = flax.core.unfreeze(jax.device_get(tree))
    for key, value in flax.traverse_util.flatten_dict(tree, sep='/').items():
      flat[f'{name}/{key}'] = np.asarray(value)
  path = snapshot_path(workdir, epoch)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.tmp', 'wb') as f:
    np.savez(f, **flat)
  os.replace(path + '.tmp', path)
  return path


def load_snapshot(path: str) -> tuple[dict, dict, dict]:
  """(params, batch_stats, {'epoch', 'step'}) of a snapshot file, as nested dicts of numpy."""
  with np.load(path) as data:
    trees = {'params': {}, 'batch_stats': {}}
    for key in data.files:
      name, _, rest = key.partition('/')
      if name in trees:
        trees[name][rest] = data[key]
    info = {'epoch': int(data['__epoch__']), 'step': int(data['__step__'])}
  unflat = {k: flax.traverse_util.unflatten_dict(v, sep='/') for k, v in trees.items()}
  return unflat['params'], unflat['batch_stats'], info


def list_snapshots(run_dir: str) -> list[tuple[int, str]]:
  """[(epoch, path)] of a run directory's snapshots, by epoch."""
  found = []
  for path in glob.glob(os.path.join(run_dir, SNAPSHOT_DIR, 'epoch_*.npz')):
    match = _SNAPSHOT_RE.match(os.path.basename(path))
    if match:
      found.append((int(match.group(1)), path))
  return sorted(found)


# --- The callback ---------------------------------------------------------------------------------


def _softmax(logits: np.ndarray) -> np.ndarray:
  z = logits - logits.max(axis=-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=-1, keepdims=True)


def _tree_distance(a, b):
  pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  return jnp.sqrt(sum(jnp.sum(jnp.square(x - y)) for x, y in pairs))


class AnchorCallback(loop.Callback):
  """Sets anchors, saves snapshots and logs distances (module docstring). `traces` counts traces."""

  def __init__(self, config):
    self.config = config
    self.anchor_epochs = anchor_schedule(config)
    self.snapshot_epochs = snapshot_schedule(config)
    self.repulsion = build.uses_repulsion(config)
    r = config.repulsion
    if r.start_from_anchor and not r.anchor_from:
      raise ValueError('repulsion.start_from_anchor=True needs repulsion.anchor_from (a run dir)')
    n_anchors = len(self.anchor_epochs) + bool(r.anchor_from)
    if n_anchors > r.capacity:
      logging.warning(
        'repulsion: %d anchors but capacity %d: the oldest are overwritten (ring buffer)',
        n_anchors,
        r.capacity,
      )
    self.traces = collections.Counter()
    self.split = None
    self._probs_sum, self._num_snapshots = None, 0

  def on_start(self, run):
    self._build(run)
    self.split = 'test' if 'test' in run.eval_fns else ('val' if 'val' in run.eval_fns else None)
    done_epochs = run.step // run.steps_per_epoch
    if run.step == 0 and self.config.repulsion.anchor_from:
      self._anchor_from(run)
    for epoch, path in list_snapshots(run.workdir):
      if epoch <= done_epochs and epoch in self.snapshot_epochs:
        params, batch_stats, _ = load_snapshot(path)
        self._add_member(run, *pipeline.put_global((params, batch_stats), self._replicated))
    if run.step == 0 and run.writer is not None:
      run.writer.write_scalars(0, {'epoch': 0, **self._scalars(run)})

  def on_epoch_end(self, run, epoch):
    if epoch in self.anchor_epochs:
      run.state = run.state.replace(opt_state=self._add(run.state.opt_state, run.state.params))
    scalars = self._scalars(run)  # The ensemble: earlier snapshots + this model (not twice).
    if epoch in self.snapshot_epochs:
      save_snapshot(run.workdir, epoch, run.step, run.state.params, run.state.batch_stats)
      self._add_member(run, run.state.params, run.state.batch_stats)
    return scalars

  def _build(self, run):
    """Jits the anchor write and the probe once (replicated outputs, so nothing recompiles)."""
    self._replicated = pipeline.replicated(run.mesh)
    if run.step == 0:  # A fresh state holds the initial weights (copied: steps donate them).
      self._init_params = jax.tree.map(jnp.copy, run.state.params)
    else:  # Resumed: rebuild them from the init seed (what create_train_state did).
      seed = self.config.seed if self.config.init_seed < 0 else self.config.init_seed
      init, _ = state_lib.init_variables(run.model, run.dataset.train[0].shape[1:], seed)
      self._init_params = pipeline.put_global(init, self._replicated)
    self._train_data = run.device_data['train']
    model, mean, std = run.model, run.dataset.mean, run.dataset.std
    idx = jnp.arange(min(self.config.data.batch_size, len(run.dataset.train[1])))
    with_anchors = self.repulsion

    def add(opt_state, params):
      self.traces['add_anchor'] += 1
      return add_anchor(opt_state, params)

    def probe(state, images, labels, init_params):
      self.traces['probe'] += 1
      out = {'anchor/init_distance': _tree_distance(state.params, init_params)}
      if with_anchors:
        x, y = pipeline.eval_batch(images, labels, idx, mean, std)

        def loss(params):
          logits, _ = steps.apply_train(model, params, state.batch_stats, x, jax.random.PRNGKey(0))
          return steps.cross_entropy(logits, y).mean()

        out.update(anchor_metrics(state.params, state.opt_state, jax.grad(loss)(state.params)))
      return out

    self._add = jax.jit(add, out_shardings=self._replicated)
    self._probe = jax.jit(probe)

  def _anchor_from(self, run):
    """Adds anchor_from's params as an anchor (and starts there with start_from_anchor)."""
    r = self.config.repulsion
    params, batch_stats, step = checkpoints.load_params(r.anchor_from)
    for name, mine, theirs in (
      ('params', run.state.params, params),
      ('batch_stats', run.state.batch_stats, batch_stats),
    ):
      same = jax.tree.structure(mine) == jax.tree.structure(theirs) and all(
        np.shape(a) == np.shape(b)
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True)
      )
      if not same:
        raise ValueError(
          f'repulsion.anchor_from={r.anchor_from!r}: its {name} do not match this model '
          f'({self.config.model.name}); allowed: a checkpoint of the same architecture'
        )
    params, batch_stats = pipeline.put_global((params, batch_stats), self._replicated)
    print(f'[jaxland] anchor from {r.anchor_from} (step {step})', flush=True)
    if r.start_from_anchor:
      run.state = run.state.replace(params=params, batch_stats=batch_stats)
    if self.repulsion:
      run.state = run.state.replace(opt_state=self._add(run.state.opt_state, params))

  def _add_member(self, run, params, batch_stats):
    """Keeps the sum of the snapshots' test probabilities for ensemble/accuracy."""
    if not (self.config.repulsion.log_ensemble and self.split):
      return
    probs = _softmax(run.predict(self.split, params, batch_stats).astype(np.float64))
    self._probs_sum = probs if self._probs_sum is None else self._probs_sum + probs
    self._num_snapshots += 1

  def _scalars(self, run) -> dict:
    out = jax.device_get(self._probe(run.state, *self._train_data, self._init_params))
    out = {k: float(v) for k, v in out.items()}
    if self.repulsion:
      out = active_anchor_metrics(out)
    if self._num_snapshots:
      probs = _softmax(run.predict(self.split, run.state.params, run.state.batch_stats))
      labels = np.asarray(run.dataset.test[1] if self.split == 'test' else run.dataset.val[1])
      mean = (self._probs_sum + probs) / (self._num_snapshots + 1)
      out['ensemble/accuracy'] = float(np.mean(np.argmax(mean, -1) == labels))
      out['ensemble/size'] = float(self._num_snapshots + 1)
    return out


def anchor_callback(config) -> AnchorCallback | None:
  """The callback when config.repulsion sets anchors or snapshots; None otherwise."""
  r = config.repulsion
  wanted = build.uses_repulsion(config) or tuple(r.snapshot_epochs) or r.snapshot_every
  return AnchorCallback(config) if wanted else None
