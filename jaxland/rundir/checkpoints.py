"""Orbax checkpoints: the full train state plus loop metadata, last-K and best retention, resume.

A checkpoint holds two items: `state` (the TrainState pytree: step, params, batch_stats, opt_state
with any repulsion anchors, rng) and `meta` (JSON: epoch, best metric, patience, the running
epoch's per-step metrics). Saves are synchronous, so a failed write raises in the caller instead
of hanging the process at exit in Orbax's writer threads. Every finished step is sealed with a
SHA-256 of each of its files (CHECKSUM_FILE in the step's folder); a restore verifies them, and a
step that fails (flipped bytes, truncated or missing files, no seal) is skipped with a warning
naming it, in favour of the newest good one.
"""

import hashlib
import json
import os
import pathlib
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint import checkpoint_managers

CHECKPOINT_DIR = 'checkpoints'
CHECKSUM_FILE = 'jaxland_sha256.json'
ITEMS = ('state', 'meta')


# Arrays replicated over devices are written from one replica. Orbax's default (replica-parallel:
# each replica writes a slice) slices every array on every device eagerly, compiling a tiny slice
# program per shape and device at the first save that touches it: recompilation inside a run
# (tests/test_train.py's log_compiles test), for no gain on one host.
ocp.type_handlers.register_type_handler(
  jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True
)


class CheckpointError(RuntimeError):
  """No usable checkpoint (every step failed its check), or a checkpoint could not be written."""


def _directory(run_dir: str) -> pathlib.Path:
  return pathlib.Path(run_dir).absolute() / CHECKPOINT_DIR


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
    enable_async_checkpointing=False,
  )
  return ocp.CheckpointManager(_directory(workdir), options=options, item_names=ITEMS)


def save(manager, step: int, state, meta: dict, metrics: dict | None = None) -> None:
  """Saves state and metadata at `step` and seals it; CheckpointError when the write fails."""
  try:
    manager.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
      metrics=metrics,
      force=True,
    )
    manager.wait_until_finished()
    if jax.process_index() == 0:
      _seal(pathlib.Path(str(manager.directory)) / str(step))
  except Exception as e:
    raise CheckpointError(f'writing checkpoint {step} failed: {type(e).__name__}: {e}') from e


def _files(step_dir: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in step_dir.rglob('*') if p.is_file() and p.name != CHECKSUM_FILE)


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _seal(step_dir: pathlib.Path) -> None:
  """Writes the SHA-256 of every file of a finished step (atomically)."""
  sums = {str(p.relative_to(step_dir)): _sha256(p) for p in _files(step_dir)}
  tmp = step_dir / (CHECKSUM_FILE + '.tmp')
  tmp.write_text(json.dumps(sums, indent=1, sort_keys=True))
  os.replace(tmp, step_dir / CHECKSUM_FILE)


def check(run_dir: str, step: int) -> str:
  """'' when step's files match their seal, else what is wrong (one line)."""
  step_dir = _directory(run_dir) / str(step)
  seal = step_dir / CHECKSUM_FILE
  if not seal.exists():
    return f'checkpoint {step} has no {CHECKSUM_FILE} (unfinished or written by an older jaxland)'
  try:
    sums = json.loads(seal.read_text())
  except ValueError:
    return f'checkpoint {step}: {CHECKSUM_FILE} is unreadable'
  present = {str(p.relative_to(step_dir)) for p in _files(step_dir)}
  missing, extra = sorted(set(sums) - present), sorted(present - set(sums))
  if missing or extra:
    return f'checkpoint {step}: missing files {missing[:3]}, unexpected files {extra[:3]}'
  bad = [name for name, digest in sums.items() if _sha256(step_dir / name) != digest]
  return f'checkpoint {step}: checksum mismatch in {bad[:3]}' if bad else ''


def _restore_newest_good(run_dir: str, steps, restore_fn, what: str):
  """restore_fn(step) for the newest of `steps` that passes its check and restores."""
  problems = []
  for step in sorted(steps, reverse=True):
    problem = check(run_dir, step)
    if not problem:
      try:
        return restore_fn(step), step
      except Exception as e:  # Orbax raises many kinds for truncated or half-written steps.
        problem = f'checkpoint {step} does not restore: {type(e).__name__}: {str(e)[:200]}'
    logging.warning('Skipping %s', problem)
    print(f'[jaxland] warning: skipping {problem}', flush=True)
    problems.append(problem)
  raise CheckpointError(
    f'no good checkpoint to {what} in {_directory(run_dir)}: '
    + ('; '.join(problems) or 'there are none')
  )


def restore(manager, target_state, run_dir: str):
  """(state, meta, step) of the newest good step, onto the structure and sharding of target.

  Newer steps that failed their check are moved to checkpoints_corrupt/ (kept for a look, out
  of the way of the steps the resumed run writes again).
  """
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
  args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
  restored, step = _restore_newest_good(
    run_dir, manager.all_steps(), lambda s: manager.restore(s, args=args), 'resume from'
  )
  newer = [s for s in manager.all_steps() if s > step]
  if newer and jax.process_index() == 0:
    aside = pathlib.Path(run_dir).absolute() / 'checkpoints_corrupt'
    aside.mkdir(exist_ok=True)
    for s in newer:
      os.replace(_directory(run_dir) / str(s), aside / f'{s}-{int(time.time())}')
  manager.reload()
  return restored['state'], dict(restored['meta']), step


def parse_checkpoint_ref(ref: str) -> tuple[str, int | None]:
  """Splits '<run dir>[:step]' into the run dir and the step (None = latest)."""
  path, sep, step = ref.rpartition(':')
  if sep and step.isdigit():
    return path, int(step)
  return ref, None


def list_steps(run_dir: str) -> list[int]:
  """The checkpointed steps of a run directory, ascending."""
  directory = _directory(run_dir)
  if not directory.is_dir():
    raise FileNotFoundError(f'No checkpoints under {directory}')
  with ocp.CheckpointManager(
    directory, options=ocp.CheckpointManagerOptions(read_only=True), item_names=ITEMS
  ) as manager:
    return sorted(manager.all_steps())


def load_state_tree(ref: str) -> tuple[dict[str, Any], int]:
  """Loads the raw state tree (nested dicts of numpy arrays) of '<run dir>[:step]'.

  Used to read anchors, spectra and landscapes from any run, whatever its optimizer: no target
  structure is needed. The latest good step when none is named; a named step must pass its
  check. Returns (tree, step).
  """
  run_dir, step = parse_checkpoint_ref(ref)
  steps = list_steps(run_dir)
  if step is not None and step not in steps:
    raise FileNotFoundError(f'Step {step} not in {_directory(run_dir)}; have {steps}')
  options = ocp.CheckpointManagerOptions(read_only=True)
  with ocp.CheckpointManager(_directory(run_dir), options=options, item_names=ITEMS) as manager:
    args = ocp.args.Composite(state=ocp.args.StandardRestore())
    wanted = [step] if step is not None else steps
    restored, step = _restore_newest_good(
      run_dir, wanted, lambda s: manager.restore(s, args=args), 'read'
    )
  return restored['state'], step


def load_params(ref: str) -> tuple[Any, Any, int]:
  """(params, batch_stats, step) of the checkpoint '<run dir>[:step]' as numpy pytrees."""
  tree, step = load_state_tree(ref)
  return tree['params'], tree.get('batch_stats', {}), step


def relative_param_difference(ref_a: str, ref_b: str) -> float:
  """|θa - θb| / |θb| of two checkpoints' params ('<run dir>[:step]'): how far two runs that
  should agree (a population member and the same run alone) drifted apart."""
  flat_a, flat_b = (
    np.concatenate([np.ravel(x) for x in jax.tree.leaves(load_params(ref)[0])])
    for ref in (ref_a, ref_b)
  )
  return float(np.linalg.norm(flat_a - flat_b) / np.linalg.norm(flat_b))


def exists(workdir: str) -> bool:
  """Whether the workdir holds at least one finished checkpoint."""
  directory = os.path.join(workdir, CHECKPOINT_DIR)
  return os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))
