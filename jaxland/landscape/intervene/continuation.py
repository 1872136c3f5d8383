"""Training on from a point of the landscape with the run's own jitted step (seed 004's
continuations): the run's optimizer at a constant LR, optionally chained with an extra transform,
the batch order continuing the run's. Used by the `intervene` task's precond and batch1 experiments.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxland.data import pipeline
from jaxland.landscape.problem import Problem, training_config
from jaxland.optim import build
from jaxland.train import loop


def continuation_config(config, lr, batch_size, epochs):
  """The run's config at a constant `lr`, `batch_size` and length `epochs`."""
  cfg = training_config(config)
  cfg.optim.learning_rate = float(lr)
  cfg.optim.schedule.name = 'constant'
  cfg.data.batch_size = int(batch_size)
  cfg.train.num_epochs = int(epochs)
  cfg.train.max_steps = 0
  return cfg


def continue_training(
  config,
  problem: Problem,
  flat,
  *,
  lr,
  batch_size,
  epochs=1,
  max_steps=0,
  extra_tx=None,
  snapshots=0,
  track=None,
  epoch_offset=0,
  runs=None,
) -> dict:
  """Trains on from `flat` with the run's optimizer at constant `lr` (plus `extra_tx` chained
  after it), taking steps from the loop's Stepper; the batch order continues the run's (its data
  seed, epochs epoch_offset, epoch_offset + 1, ...). Returns the final flat params, test metrics
  per epoch, the logits of `snapshots` evenly spaced iterates on test, and, for `track` [k, P],
  the projections of every iterate on its rows. `runs` caches the built runs by batch size."""
  cfg = continuation_config(config, lr, batch_size, epochs)
  runs = {} if runs is None else runs
  if batch_size not in runs:  # Data on device and eval functions are reused across calls.
    devices = jax.devices()
    mesh = pipeline.make_mesh(devices if batch_size % len(devices) == 0 else devices[:1])
    runs[batch_size] = loop.build_run(cfg, '', writer=None, mesh=mesh)
  run = runs[batch_size]
  mesh = run.mesh
  run.tx = build.make_optimizer(cfg, run.steps_per_epoch, run.steps_per_epoch * epochs)
  if extra_tx is not None:
    run.tx = optax.chain(run.tx, extra_tx)
  params = problem.unravel(jnp.asarray(flat, jnp.float32))
  rep = pipeline.replicated(mesh)
  state = run.state.replace(
    step=jnp.zeros((), jnp.int32), params=params, batch_stats=problem.batch_stats
  )
  state = state.replace(opt_state=run.tx.init(state.params))
  run.state = pipeline.put_global(state, rep)
  take_step = loop.Stepper(run, first_epoch=epoch_offset)
  spe = run.steps_per_epoch
  total = spe * epochs if not max_steps else min(max_steps, spe * epochs)
  snap_at = set(np.linspace(total / max(snapshots, 1), total, snapshots).round().astype(int))
  vectors = None if track is None else jax.device_put(jnp.asarray(track, jnp.float32), rep)
  project = jax.jit(lambda p, v: v @ ravel_pytree(p)[0])
  tracked, snaps, per_epoch = [], [], []
  for step in range(1, total + 1):
    run.state, _ = take_step(run.state)
    if vectors is not None:
      tracked.append(project(run.state.params, vectors))
    if step in snap_at:
      snaps.append(run.predict('test', run.state.params, run.state.batch_stats))
    if step % spe == 0 or step == total:
      per_epoch.append({'step': step, **run.evaluate('test')})
  final = np.asarray(ravel_pytree(jax.device_get(run.state.params))[0], np.float32)
  out = {'flat': final, 'per_epoch': per_epoch, 'steps': total, 'snapshot_logits': snaps}
  if vectors is not None:
    out['tracked'] = np.asarray(jax.device_get(tracked), np.float64)
  return out
