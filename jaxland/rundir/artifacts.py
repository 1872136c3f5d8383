"""Every file a run leaves besides its record and checkpoints, and what is rebuilt from them.

The one reader and writer of: the saved config as a ConfigDict, the model built from a run,
its seeds, trajectory/params_<step>.npz, batch_order/epoch_<e>.npy and
snapshots/epoch_<e>.npz. Params files hold flat '/'-joined leaf paths ('Dense_0/kernel');
snapshots add 'params/' and 'batch_stats/' prefixes and '__epoch__', '__step__'.
"""

import glob
import os
import re

import flax
import jax
import ml_collections
import numpy as np
from absl import logging

from jaxland import models
from jaxland.rundir import checkpoints, workdir

TRAJECTORY_DIR = 'trajectory'
BATCH_ORDER_DIR = 'batch_order'
SNAPSHOT_DIR = 'snapshots'
_TRAJECTORY_RE = re.compile(r'^params_(\d+)\.npz$')
_SNAPSHOT_RE = re.compile(r'^epoch_(\d{4,})\.npz$')


# --- The run's config, model and seeds -------------------------------------------------------


def load_config(run_dir: str) -> ml_collections.ConfigDict:
  """The config a run saved in <run dir>/config.json."""
  saved = workdir.saved_config(run_dir)
  if saved is None:
    raise FileNotFoundError(f'{run_dir}/config.json not found: it must be a training run dir')
  return ml_collections.ConfigDict(saved)


def model_from_run(run_dir: str, num_classes: int):
  """The Flax model a run trained (its saved config.model)."""
  return models.from_config(load_config(run_dir).model, num_classes)


def seeds(config) -> tuple[int, int]:
  """(init_seed, data_seed): each falls back to config.seed when unset (-1)."""
  init_seed = config.seed if config.init_seed < 0 else config.init_seed
  data_seed = config.seed if config.data_seed < 0 else config.data_seed
  return int(init_seed), int(data_seed)


# --- Flat params files -----------------------------------------------------------------------


def flatten(tree) -> dict[str, np.ndarray]:
  """A (device) pytree of arrays as {'a/b/c': numpy array}."""
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
  return {'/'.join(str(getattr(k, 'key', k)) for k in path): np.asarray(v) for path, v in leaves}


def _save_npz(path: str, arrays: dict) -> str:
  """Writes an npz atomically (a reader never sees half a file)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.tmp', 'wb') as f:
    np.savez(f, **arrays)
  os.replace(path + '.tmp', path)
  return path


def _shaped_like(flat: dict, template, source: str):
  """The arrays of `flat` as a pytree with `template`'s structure (names and shapes checked)."""
  leaves = []
  paths, treedef = jax.tree_util.tree_flatten_with_path(template)
  for key_path, leaf in paths:
    key = '/'.join(str(getattr(k, 'key', k)) for k in key_path)
    if key not in flat or flat[key].shape != np.shape(leaf):
      raise ValueError(f'{source}: no parameter {key!r} of shape {np.shape(leaf)}')
    leaves.append(flat[key])
  return jax.tree.unflatten(treedef, leaves)


# --- Trajectory and batch order --------------------------------------------------------------


def trajectory_path(run_dir: str, step: int) -> str:
  return os.path.join(run_dir, TRAJECTORY_DIR, f'params_{step:08d}.npz')


def save_trajectory(workdir: str, step: int, params) -> str:
  """The params at `step` as trajectory/params_<step>.npz (train.trajectory_every_steps)."""
  return _save_npz(trajectory_path(workdir, step), flatten(params))


def trajectory_steps(run_dir: str) -> list[int]:
  """The steps of the run's trajectory files, ascending."""
  found = []
  for path in glob.glob(os.path.join(run_dir, TRAJECTORY_DIR, 'params_*.npz')):
    match = _TRAJECTORY_RE.match(os.path.basename(path))
    if match:
      found.append(int(match.group(1)))
  return sorted(found)


def load_trajectory(run_dir: str, step: int, template=None):
  """The params saved at `step`: nested dicts of numpy, or shaped like `template` (checked)."""
  path = trajectory_path(run_dir, step)
  with np.load(path) as f:
    flat = {k: f[k] for k in f.files}
  if template is None:
    return flax.traverse_util.unflatten_dict(flat, sep='/')
  return _shaped_like(flat, template, path)


def save_batch_order(workdir: str, epoch: int, epoch_idx) -> str:
  """Epoch `epoch`'s (1-based) [steps, batch] example indices as batch_order/epoch_<e>.npy."""
  path = os.path.join(workdir, BATCH_ORDER_DIR, f'epoch_{epoch:04d}.npy')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.save(path, np.asarray(epoch_idx))
  return path


def load_batch_order(run_dir: str, epoch: int) -> np.ndarray:
  return np.load(os.path.join(run_dir, BATCH_ORDER_DIR, f'epoch_{epoch:04d}.npy'))


# --- Snapshots -------------------------------------------------------------------------------


def snapshot_path(workdir: str, epoch: int) -> str:
  return os.path.join(workdir, SNAPSHOT_DIR, f'epoch_{epoch:04d}.npz')


def save_snapshot(workdir: str, epoch: int, step: int, params, batch_stats) -> str:
  """params and batch_stats after `epoch` (at `step`) as snapshots/epoch_<e>.npz; its path."""
  arrays = {'__epoch__': np.int64(epoch), '__step__': np.int64(step)}
  for name, tree in (('params', params), ('batch_stats', batch_stats)):
    arrays.update({f'{name}/{k}': v for k, v in flatten(flax.core.unfreeze(tree)).items()})
  return _save_npz(snapshot_path(workdir, epoch), arrays)


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


# --- Params of any step ----------------------------------------------------------------------


def checkpoint_steps(run_dir: str) -> list[int]:
  """The run's checkpointed steps, ascending ([] when it has none)."""
  return checkpoints.list_steps(run_dir) if checkpoints.exists(run_dir) else []


def load_step(run_dir: str, step: int, init_stats, bn_mode: str):
  """(params, batch_stats, info) of `step`: its checkpoint, else its trajectory file.

  Trajectory files hold params only; BatchNorm statistics then come from `init_stats` at step 0
  (exact) or with bn_mode='train' (unused), else from the nearest checkpoint (approximate).
  info says which ('source', 'batch_stats_source').
  """
  ckpt = checkpoint_steps(run_dir)
  if step in ckpt:
    params, stats, _ = checkpoints.load_params(f'{run_dir}:{step}')
    return params, stats, {'source': 'checkpoint', 'batch_stats_source': f'checkpoint {step}'}
  params = load_trajectory(run_dir, step)
  info = {'source': 'trajectory'}
  if not init_stats:
    return params, {}, info | {'batch_stats_source': 'none (no BatchNorm)'}
  if bn_mode == 'train' or step == 0:
    why = 'init (unused: bn_mode=train)' if bn_mode == 'train' else 'init (exact at step 0)'
    return params, init_stats, info | {'batch_stats_source': why}
  if not ckpt:
    raise ValueError(
      f'config.spectrum.steps: step {step} is a trajectory file (params only) and {run_dir} has '
      "no checkpoint to take BatchNorm statistics from; use bn_mode='train' or checkpoint steps"
    )
  nearest = min(ckpt, key=lambda s: (abs(s - step), s))
  _, stats, _ = checkpoints.load_params(f'{run_dir}:{nearest}')
  logging.warning('Step %d: BatchNorm statistics from the nearest checkpoint %d', step, nearest)
  return params, stats, info | {'batch_stats_source': f'checkpoint {nearest} (nearest)'}
