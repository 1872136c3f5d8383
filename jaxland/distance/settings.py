"""config.repulsion: its defaults, its checks, and the epochs where anchors and snapshots fall."""

import ml_collections

from jaxland import validation as v
from jaxland.optim import build
from jaxland.optim.repulsion import MODES
from jaxland.rundir import checkpoints


def defaults() -> ml_collections.ConfigDict:
  """The repulsion section: anchors, the push away from them, snapshots for ensembles."""
  r = ml_collections.ConfigDict()
  r.enabled = False  # Off: anchors are still kept ("virtual") to log the drift.
  r.mode = 'sum'  # sum | merged | l2
  r.strength = 1.0
  r.width = 10.0  # Kernel width sigma (the thesis' width^2 = 100).
  r.capacity = 4  # Anchor slots (fixed, so adding an anchor never recompiles).
  r.anchor_epochs = ()  # Set an anchor after these epochs ...
  r.anchor_every = 0  # ... or every k epochs ...
  r.anchor_from = ''  # ... or from an Orbax checkpoint: '<run dir>[:step]'.
  r.mask = 'all'  # Which params count in the distance: all | kernels.
  r.start_from_anchor = False  # Start at anchor_from's weights (fresh momentum).
  # Model snapshots (params + batch_stats, workdir/snapshots/epoch_XXXX.npz) for ensembles: at every
  # anchor, and after these epochs ... or every k epochs (e.g. the warm-restart period T_0).
  r.snapshot_epochs = ()
  r.snapshot_every = 0
  r.log_ensemble = True  # Log ensemble/* (snapshots + current model) each epoch.
  r.ensemble_weights = ()  # task ensemble: weights of (snapshots..., final).
  return r


def validate_section(config, num_devices: int = 1) -> None:
  """ConfigError for the first bad repulsion setting."""
  del num_devices
  v.choice(config, 'repulsion.mode', MODES)
  v.choice(config, 'repulsion.mask', build.MASKS)
  v.number(config, 'repulsion.strength')
  v.number(config, 'repulsion.width', strict=True)
  v.integer(config, 'repulsion.capacity', 1)
  v.integer(config, 'repulsion.anchor_every')
  v.integer(config, 'repulsion.snapshot_every')
  v.epochs(config, 'repulsion.anchor_epochs', config.train.num_epochs)
  v.epochs(config, 'repulsion.snapshot_epochs', config.train.num_epochs)
  r = config.repulsion
  if r.start_from_anchor and not r.anchor_from:
    v.fail('repulsion.start_from_anchor', True, 'needs repulsion.anchor_from (a run dir[:step])')
  weights = tuple(r.ensemble_weights)
  if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights):
    v.fail('repulsion.ensemble_weights', weights, 'numbers >= 0, one per ensemble member')


def check_anchor_from(config) -> None:
  """repulsion.anchor_from names a run dir with that checkpoint step (ConfigError otherwise)."""
  ref = config.repulsion.anchor_from
  if not ref:
    return
  run_dir, step = checkpoints.parse_checkpoint_ref(ref)
  if not checkpoints.exists(run_dir):
    v.fail('repulsion.anchor_from', ref, f'{run_dir} holds no checkpoints')
  steps = checkpoints.list_steps(run_dir)
  if step is not None and step not in steps:
    v.fail('repulsion.anchor_from', ref, f'choose a step from {steps}')


def anchor_schedule(config) -> tuple[int, ...]:
  """Epochs (1-based) after which an anchor is set: anchor_epochs, plus k, 2k, ... < num_epochs."""
  r, n = config.repulsion, config.train.num_epochs
  epochs = set(r.anchor_epochs)
  if r.anchor_every:
    epochs.update(range(r.anchor_every, n, r.anchor_every))
  return tuple(sorted(epochs))


def snapshot_schedule(config) -> tuple[int, ...]:
  """Epochs after which a snapshot is saved: every anchor epoch, snapshot_epochs, k, 2k, ... < n."""
  r, n = config.repulsion, config.train.num_epochs
  epochs = set(anchor_schedule(config)) | set(r.snapshot_epochs)
  if r.snapshot_every:
    epochs.update(range(r.snapshot_every, n, r.snapshot_every))
  return tuple(sorted(epochs))
