"""Orbax checkpoints: the full train state plus loop metadata, last-K and best retention, resume.

A checkpoint holds two items: `state` (the TrainState pytree: step, params, batch_stats, opt_state
with any repulsion anchors, rng) and `meta` (JSON: epoch, best metric, patience, data position).
"""

import os
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

CHECKPOINT_DIR = 'checkpoints'


def make_manager(
  workdir: str, keep: int, best_metric: str | None = None, best_mode: str = 'max'
) -> ocp.CheckpointManager:
  """A manager keeping the last `keep` checkpoints plus the best by `best_metric`."""
  policies = [checkpoint_managers.LatestN(keep)]
  if best_metric:
    sign = 1.0 if best_mode == 'max' else -1.0
    policies.append(
      checkpoint_managers.BestN(
        get_metric_fn=lambda m: sign * m[best_metric],
        n=1,
        keep_checkpoints_without_metrics=False,
      )
    )
  options = ocp.CheckpointManagerOptions(
    preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
    create=True,
    cleanup_tmp_directories=True,
  )
  directory = pathlib.Path(workdir).absolute() / CHECKPOINT_DIR
  return ocp.CheckpointManager(directory, options=options, item_names=('state', 'meta'))


def save(manager, step: int, state, meta: dict, metrics: dict | None = None) -> None:
  """Saves state and metadata at `step` (asynchronously; call `manager.wait_until_finished`)."""
  manager.save(
    step,
    args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
    metrics=metrics,
    force=True,
  )


def restore(manager, target_state, step: int | None = None):
  """Restores (state, meta) at `step` (default latest) onto the structure and sharding of target."""
  step = manager.latest_step() if step is None else step
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
  restored = manager.restore(
    step,
    args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
  )
  return restored['state'], dict(restored['meta'])


def parse_checkpoint_ref(ref: str) -> tuple[str, int | None]:
  """Splits '<run dir>[:step]' into the run dir and the step (None = latest)."""
  path, sep, step = ref.rpartition(':')
  if sep and step.isdigit():
    return path, int(step)
  return ref, None


def list_steps(run_dir: str) -> list[int]:
  """The checkpointed steps of a run directory, ascending."""
  directory = pathlib.Path(run_dir).absolute() / CHECKPOINT_DIR
  if not directory.is_dir():
    raise FileNotFoundError(f'No checkpoints under {directory}')
  with ocp.CheckpointManager(
    directory, options=ocp.CheckpointManagerOptions(read_only=True), item_names=('state', 'meta')
  ) as manager:
    return sorted(manager.all_steps())


def load_state_tree(ref: str) -> tuple[dict[str, Any], int]:
  """Loads the raw state tree (nested dicts of numpy arrays) of '<run dir>[:step]'.

  Used to read anchors, spectra and landscapes from any run, whatever its optimizer: no target
  structure is needed. Returns (tree, step).
  """
  run_dir, step = parse_checkpoint_ref(ref)
  directory = pathlib.Path(run_dir).absolute() / CHECKPOINT_DIR
  if not directory.is_dir():
    raise FileNotFoundError(f'No checkpoints under {directory} (from {ref!r})')
  options = ocp.CheckpointManagerOptions(read_only=True)
  with ocp.CheckpointManager(directory, options=options, item_names=('state', 'meta')) as manager:
    step = manager.latest_step() if step is None else step
    if step not in manager.all_steps():
      raise FileNotFoundError(f'Step {step} not in {directory}; have {sorted(manager.all_steps())}')
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return restored['state'], step


def load_params(ref: str) -> tuple[Any, Any, int]:
  """(params, batch_stats, step) of the checkpoint '<run dir>[:step]' as numpy pytrees."""
  tree, step = load_state_tree(ref)
  return tree['params'], tree.get('batch_stats', {}), step


def exists(workdir: str) -> bool:
  """Whether the workdir holds at least one finished checkpoint."""
  directory = os.path.join(workdir, CHECKPOINT_DIR)
  return os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))
