"""The repulsion loop callback: sets anchors, saves snapshots, logs the drift every epoch.

Anchors (the current params after config.repulsion's anchor epochs, or another run's checkpoint
`anchor_from`) go into the optimizer state through one jitted write, so setting one never
recompiles; runs without repulsion keep them "virtual" (strength 0) to log the baseline's drift.
Every epoch (and at step 0) one jitted probe logs anchor/<i>/distance, kernel, count, penalty,
grad_norm, grad_ratio and anchor/init_distance; with snapshots also ensemble/accuracy and size.
WORKSPACE.md defines each metric.
"""

import collections
import weakref

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxland import models
from jaxland.data import pipeline
from jaxland.distance.ensemble import softmax
from jaxland.distance.settings import anchor_schedule, snapshot_schedule
from jaxland.optim import active_anchor_metrics, add_anchor, anchor_metrics, build
from jaxland.rundir import artifacts, checkpoints
from jaxland.train import callbacks, loop, steps


def _tree_distance(a, b):
  pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  return jnp.sqrt(sum(jnp.sum(jnp.square(x - y)) for x, y in pairs))


class AnchorCallback(callbacks.Callback):
  """Sets anchors, saves snapshots and logs distances (module docstring). `traces` counts the
  traces of its jitted functions (shared by the members of a population)."""

  def __init__(self, config):
    self.config = config
    self.anchor_epochs = anchor_schedule(config)
    self.snapshot_epochs = snapshot_schedule(config)
    self.repulsion = build.uses_repulsion(config)
    r = config.repulsion
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
    for epoch, path in artifacts.list_snapshots(run.workdir):
      if epoch <= done_epochs and epoch in self.snapshot_epochs:
        params, batch_stats, _ = artifacts.load_snapshot(path)
        self._add_member(run, *pipeline.put_global((params, batch_stats), self._replicated))
    if run.step == 0 and run.writer is not None:
      run.writer.write_scalars(0, {'epoch': 0, **self._scalars(run)})

  def on_epoch_end(self, run, epoch):
    if epoch in self.anchor_epochs:
      run.state = run.state.replace(opt_state=self._add(run.state.opt_state, run.state.params))
    scalars = self._scalars(run)  # The ensemble: earlier snapshots + this model (not twice).
    if epoch in self.snapshot_epochs:
      artifacts.save_snapshot(run.workdir, epoch, run.step, run.state.params, run.state.batch_stats)
      self._add_member(run, run.state.params, run.state.batch_stats)
    return scalars

  def _build(self, run):
    """The initial params, and the anchor write and probe, jitted once (replicated outputs, so
    nothing recompiles)."""
    self._replicated = pipeline.replicated(run.mesh)
    if run.step == 0:  # A fresh state holds the initial weights (copied: steps donate them).
      self._init_params = jax.tree.map(jnp.copy, run.state.params)
    else:  # Resumed: rebuild them from the init seed (what create_train_state did).
      seed, _ = artifacts.seeds(self.config)
      init, _ = models.init_variables(
        run.model, run.dataset.train[0].shape[1:], seed, loop.init_data(run.dataset)
      )
      self._init_params = pipeline.put_global(init, self._replicated)
    self._train_data = run.device_data['train']
    batch = min(self.config.data.batch_size, len(run.dataset.train[1]))
    self._add, self._probe, self.traces = _jitted(
      run.dataset, run.model, batch, self.repulsion, self._replicated
    )

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
    probs = softmax(run.predict(self.split, params, batch_stats))
    self._probs_sum = probs if self._probs_sum is None else self._probs_sum + probs
    self._num_snapshots += 1

  def _scalars(self, run) -> dict:
    out = jax.device_get(self._probe(run.state, *self._train_data, self._init_params))
    out = {k: float(v) for k, v in out.items()}
    if self.repulsion:
      out = active_anchor_metrics(out)
    if self._num_snapshots:
      probs = softmax(run.predict(self.split, run.state.params, run.state.batch_stats))
      labels = np.asarray(run.dataset.test[1] if self.split == 'test' else run.dataset.val[1])
      mean = (self._probs_sum + probs) / (self._num_snapshots + 1)
      out['ensemble/accuracy'] = float(np.mean(np.argmax(mean, -1) == labels))
      out['ensemble/size'] = float(self._num_snapshots + 1)
    return out


_JITTED = {}  # id(run.dataset) -> {key: (add, probe, traces)}, dropped with the dataset.


def _jitted(dataset, model, batch: int, with_anchors: bool, replicated):
  """(add, probe, trace counts): the anchor write and the probe, jitted once per run's dataset
  (every member of a population shares its one; a plain run loads its own) and model, so a
  population compiles them once, not once per member."""
  if id(dataset) not in _JITTED:
    _JITTED[id(dataset)] = {}
    weakref.finalize(dataset, _JITTED.pop, id(dataset), None)
  shared = _JITTED[id(dataset)]
  key = (model, batch, with_anchors, replicated)
  if key in shared:
    return shared[key]
  mean, std = dataset.mean, dataset.std
  traces = collections.Counter()
  idx = jnp.arange(batch)

  def add(opt_state, params):
    traces['add_anchor'] += 1
    return add_anchor(opt_state, params)

  def probe(state, images, labels, init_params):
    traces['probe'] += 1
    out = {'anchor/init_distance': _tree_distance(state.params, init_params)}
    if with_anchors:
      x, y = pipeline.eval_batch(images, labels, idx, mean, std)

      def loss(params):
        logits, _ = steps.apply_train(model, params, state.batch_stats, x, jax.random.PRNGKey(0))
        return steps.cross_entropy(logits, y).mean()

      out.update(anchor_metrics(state.params, state.opt_state, jax.grad(loss)(state.params)))
    return out

  shared[key] = jax.jit(add, out_shardings=replicated), jax.jit(probe), traces
  return shared[key]


def anchor_callback(config) -> AnchorCallback | None:
  """The callback when the config's repulsion section sets anchors or snapshots; None otherwise."""
  r = config.get('repulsion')
  if r is None:
    return None
  wanted = build.uses_repulsion(config) or tuple(r.snapshot_epochs) or r.snapshot_every
  return AnchorCallback(config) if wanted else None
