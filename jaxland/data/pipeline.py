"""Device side: uint8 splits on device; batches gathered, augmented and normalised inside jit.

Everything here has static shapes. The order of epoch e is a pure function of (seed, e), so a run's
batch sequence can be recomputed (or saved) anywhere: on the host for replay studies, or inside jit.
The global batch is sharded over a ('data',) mesh; the splits are replicated on every device. A
population (train.population) may add a 'member' axis: members over it, each one's batch over
'data'.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = 'data'
MEMBER_AXIS = 'member'


class Augment(NamedTuple):
  """Static (hashable) augmentation settings, from config.data.augment."""

  crop: bool = False  # Random crop after padding by `pad` pixels on each side ...
  pad: int = 4
  flip: bool = False  # Horizontal flip ...
  pad_mode: str = 'zeros'  # ... with zeros (torchvision RandomCrop) or 'reflect' (airbench).
  flip_mode: str = 'random'  # ... of each example at random, or 'alternating' (see below).


PAD_MODES = {'zeros': 'constant', 'reflect': 'reflect'}
FLIP_MODES = ('random', 'alternating')


def augment_settings(cfg) -> Augment:
  """config.data.augment (ConfigDict, dict, Augment or None) -> Augment."""
  if cfg is None:
    return Augment()
  if isinstance(cfg, Augment):
    return cfg
  get = cfg.get if hasattr(cfg, 'get') else lambda k, d: getattr(cfg, k, d)
  aug = Augment(
    bool(get('crop', False)), int(get('pad', 4)), bool(get('flip', False)),
    str(get('pad_mode', 'zeros')), str(get('flip_mode', 'random')),
  )  # fmt: skip
  if aug.crop and aug.pad < 0:
    raise ValueError(f'config.data.augment.pad={aug.pad} must be >= 0')
  if aug.pad_mode not in PAD_MODES:
    raise ValueError(
      f'config.data.augment.pad_mode={aug.pad_mode!r}; choose from {list(PAD_MODES)}'
    )
  if aug.flip_mode not in FLIP_MODES:
    raise ValueError(f'config.data.augment.flip_mode={aug.flip_mode!r}; choose from {FLIP_MODES}')
  return aug


# --- Mesh and shardings ---------------------------------------------------------------------------


def make_mesh(devices=None) -> Mesh:
  """A 1-D ('data',) mesh over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def make_member_mesh(member_devices: int, devices=None) -> Mesh:
  """A 2-D ('member', 'data') mesh: population members split over `member_devices` rows of it,
  each member's batch over the devices of a row."""
  devices = np.asarray(jax.devices() if devices is None else list(devices))
  return Mesh(devices.reshape(member_devices, -1), (MEMBER_AXIS, DATA_AXIS))


def member_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (member) axis split over 'member' (a make_member_mesh mesh)."""
  return NamedSharding(mesh, P(MEMBER_AXIS))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data'."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """A full copy on every device."""
  return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, key: str = 'data.batch_size') -> None:
  """Raises ValueError, naming config key `key`, unless batch_size splits evenly over the mesh."""
  n = mesh.shape[DATA_AXIS]
  if batch_size <= 0 or batch_size % n:
    raise ValueError(
      f'config.{key}={batch_size} must be a positive multiple of the data-parallel device count '
      f'{n} (the global batch is split evenly across devices)'
    )


def put_global(tree, sharding: jax.sharding.Sharding):
  """jax.device_put of a host-identical pytree that also works when `sharding` spans processes.

  Across processes, device_put compares values between hosts (and NaN sentinels never compare
  equal); building each array from the local copy skips that check. Every process must pass the
  same values.
  """
  if sharding.is_fully_addressable:
    return jax.device_put(tree, sharding)

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(put, tree)


# --- Orders ---------------------------------------------------------------------------------------


def epoch_order(seed, epoch, num_examples: int) -> jax.Array:
  """int32 permutation of range(num_examples) for this (seed, epoch); seed/epoch may be traced."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), epoch)
  return jax.random.permutation(key, num_examples).astype(jnp.int32)


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch (the remainder is dropped; it differs each epoch)."""
  if not 0 < batch_size <= num_examples:
    raise ValueError(
      f'config.data.batch_size={batch_size} must be in [1, {num_examples}] (training examples)'
    )
  return num_examples // batch_size


def epoch_batches(seed, epoch, num_examples: int, batch_size: int) -> jax.Array:
  """int32 [steps_per_epoch, batch_size]: row i holds the example indices of step i."""
  steps = steps_per_epoch(num_examples, batch_size)
  order = epoch_order(seed, epoch, num_examples)
  return order[: steps * batch_size].reshape(steps, batch_size)


def eval_batches(num_examples: int, eval_batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Indices int32 [n, eval_batch_size] covering every example once, and a bool mask [n, bs].

  The last batch is padded with index 0 and mask False, so every batch has one static shape.
  """
  if eval_batch_size <= 0:
    raise ValueError(f'config.data.eval_batch_size={eval_batch_size} must be positive')
  n = -(-num_examples // eval_batch_size)
  flat = np.arange(n * eval_batch_size)
  mask = flat < num_examples
  indices = np.where(mask, flat, 0).astype(np.int32)
  return indices.reshape(n, eval_batch_size), mask.reshape(n, eval_batch_size)


# --- Batches inside jit ---------------------------------------------------------------------------


def _crop(image, key, pad, mode='constant'):
  h, w, c = image.shape
  padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode=mode)
  dy, dx = jax.random.randint(key, (2,), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, c))


def _flip(image, key):
  return jnp.where(jax.random.bernoulli(key), image[:, ::-1], image)


def alternating_flips(key, example_ids, epoch, num_examples: int) -> jax.Array:
  """airbench's alternating flip: each example draws one flip bit for the whole run (from `key`),
  used as is in even epochs and inverted in odd ones, so every example is seen both ways in every
  two epochs. bool [len(example_ids)]; epoch is 0-based and may be traced."""
  bits = jax.random.bernoulli(key, 0.5, (num_examples,))[example_ids]
  return bits ^ (epoch % 2 == 1)


def augment(images, rng, aug: Augment, flips=None):
  """Per-example random pad-and-crop and/or horizontal flip of [B, H, W, C] images (any dtype).

  Padding is with zeros (black, as torchvision's RandomCrop(padding=pad)) or reflected
  (aug.pad_mode); each example draws its own offsets and, unless `flips` (bool [B], e.g.
  alternating_flips) says which to flip, its own flip from rng.
  """
  crop_key, flip_key = jax.random.split(rng)
  batch = images.shape[0]
  if aug.crop and aug.pad > 0:
    crop = functools.partial(_crop, pad=aug.pad, mode=PAD_MODES[aug.pad_mode])
    images = jax.vmap(crop)(images, jax.random.split(crop_key, batch))
  if aug.flip and flips is None:
    images = jax.vmap(_flip)(images, jax.random.split(flip_key, batch))
  elif aug.flip:
    images = jnp.where(flips[:, None, None, None], images[:, :, ::-1], images)
  return images


def normalize(images, mean, std):
  """uint8 [..., C] -> float32 (x / 255 - mean) / std, mean and std per channel in [0, 1] units."""
  x = images.astype(jnp.float32) / 255.0
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def _constrain(x, sharding):
  return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def train_batch(images, labels, indices, rng, augment_cfg, mean, std, sharding=None, flips=None):
  """Gathers `indices` from device-resident uint8 splits, augments, normalises: (x f32, y i32).

  augment_cfg must be static (an Augment or config.data.augment; bind it with functools.partial).
  rng gives the batch's randomness (e.g. fold_in(data_key, step)). `sharding` (e.g.
  batch_sharding(mesh)) constrains the outputs' batch axis inside jit.
  """
  x = _constrain(images[indices], sharding)
  y = _constrain(labels[indices], sharding)
  x = augment(x, rng, augment_settings(augment_cfg), flips)
  return _constrain(normalize(x, mean, std), sharding), y


def eval_batch(images, labels, indices, mean, std, sharding=None):
  """As train_batch without augmentation; pair with eval_batches' mask to skip the padding."""
  x = _constrain(images[indices], sharding)
  y = _constrain(labels[indices], sharding)
  return _constrain(normalize(x, mean, std), sharding), y
