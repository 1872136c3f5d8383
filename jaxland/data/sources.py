"""Host side: any supported dataset -> uint8 numpy arrays, decoded once and cached.

`load_dataset(config.data)` returns a `Dataset` of train / val / test arrays plus the facts a run
reports (name, classes, per-channel mean / std, and `source`: which files, download or fallback).
TFDS datasets are found, in order: jaxland's array cache, a prepared TFDS folder, the original
files (config.data.manual_dir or known places; see offline.py), a TFDS download (only after a 2 s
network probe), else DataUnavailableError saying which files to put where. Image folders and
archives decode without TensorFlow, to TFDS ImageFolder's pixels (folder.py).

The array cache is the source of truth once written: <data_dir>/jaxland_arrays/<key>-<split>.npz
(images, labels, class_names, source), read in about a second. Keys: <name>-<TFDS version> for
TFDS datasets (a hit needs no TFDS import: TFDS_VERSIONS); <name>-folder<fingerprint> for image
folders (the arrays TFDS ImageFolder made before are the same pixels, so they are reused).
TensorFlow and TFDS are imported only while a TFDS dataset is prepared or read from TFDS files.

Splits: `val_size` examples are held out of train -- the last val_size indices of
numpy.random.RandomState(0).permutation(num_train) (legacy RandomState: a frozen stream), fixed
whatever the run's seed; train keeps the rest in stored order. Then train_subset / test_subset keep
the first N examples. mean / std are per channel, in [0, 1] units, over the final train split.
"""

import contextlib
import dataclasses
import fcntl
import os
import time

import numpy as np
from absl import logging

from jaxland import runtime
from jaxland.data import folder as folder_lib

# jaxland.data is what every entry point imports first (before clu): skip clu's TensorFlow import.
runtime.clu_without_tensorflow()

TFDS_DATASETS = ('mnist', 'fashion_mnist', 'cifar10', 'cifar100')
DATASETS = (*TFDS_DATASETS, 'image_folder', 'digits', 'synthetic')
DIGITS_NUM_TRAIN = 1500  # digits: the first 1500 of sklearn's 1797 are train, the last 297 test.
VAL_SEED = 0
SYNTHETIC_SEED = 0
# The TFDS version whose cached arrays are read without importing TFDS (0.9 s of start-up). On a
# miss TFDS is imported and its builder's version names the cache (if TFDS moves on, arrays cached
# under these versions are still read first: they are what these versions hold).
TFDS_VERSIONS = {
  'mnist': '3.0.1',
  'fashion_mnist': '3.0.1',
  'cifar10': '3.0.2',
  'cifar100': '3.0.2',
}


class DataUnavailableError(FileNotFoundError):
  """The dataset's files are not here and cannot be downloaded; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Splits as (uint8 images [N, H, W, C], int32 labels [N]); val is None without val_size."""

  name: str  # The name results report (e.g. 'cifar10_jpeg75', or the fallback's name).
  train: tuple[np.ndarray, np.ndarray]
  val: tuple[np.ndarray, np.ndarray] | None
  test: tuple[np.ndarray, np.ndarray]
  num_classes: int
  class_names: tuple[str, ...]
  mean: np.ndarray  # float32 [C], train split, [0, 1] units.
  std: np.ndarray  # float32 [C]
  source: str  # A sentence saying where the data came from; the training run prints it.

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.train[0].shape[1:])


def resolve_data_dir(data_config) -> str:
  """config.data.data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (TFDS's default)."""
  d = data_config.data_dir or os.environ.get('TFDS_DATA_DIR') or '~/tensorflow_datasets'
  return os.path.expanduser(d)


def load_dataset(data_config) -> Dataset:
  """Loads config.data.name (or, when it can't be had and config.data.fallback is set, that)."""
  name, fallback = data_config.name, data_config.fallback
  if name not in DATASETS:
    raise ValueError(f'Unknown config.data.name={name!r}; choose from {list(DATASETS)}')
  if fallback and (fallback not in DATASETS or fallback == name):
    raise ValueError(
      f'config.data.fallback={fallback!r} must be another dataset of {list(DATASETS)} or empty'
    )
  try:
    raw = _load_raw(name, data_config)
  except DataUnavailableError as e:
    if not fallback:
      raise
    banner = f'FALLBACK: using {fallback!r} instead of {name!r} because: {e}'
    logging.warning('%s\n%s\n%s', '!' * 80, banner, '!' * 80)
    raw = _load_raw(fallback, data_config)
    raw = dataclasses.replace(raw, source=f'{banner} -- {fallback}: {raw.source}')
  return _make_dataset(raw, data_config)


@dataclasses.dataclass(frozen=True)
class _Raw:
  name: str
  splits: dict  # {'train': (images, labels), 'test': (images, labels)}
  class_names: tuple[str, ...]
  source: str


def _load_raw(name, data_config) -> _Raw:
  if name == 'digits':
    return _digits()
  if name == 'synthetic':
    return _synthetic(data_config.synthetic)
  data_dir = resolve_data_dir(data_config)
  with _exclusive(data_dir, name):
    if name == 'image_folder':
      return _image_folder(data_config, data_dir)
    return _tfds(name, data_config, data_dir)


@contextlib.contextmanager
def _exclusive(data_dir: str, name: str):
  """Holds a lock file so that concurrent processes (parallel tests, sweeps) prepare data once."""
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, f'.jaxland-{name}.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _make_dataset(raw: _Raw, data_config) -> Dataset:
  train, test = raw.splits['train'], raw.splits['test']
  train, val = _hold_out(train, data_config.val_size)
  train = _subset(train, data_config.train_subset, 'train_subset')
  test = _subset(test, data_config.test_subset, 'test_subset')
  mean, std = channel_mean_std(train[0])
  return Dataset(
    name=raw.name,
    train=train,
    val=val,
    test=test,
    num_classes=len(raw.class_names),
    class_names=raw.class_names,
    mean=mean,
    std=std,
    source=raw.source,
  )


def _hold_out(train, val_size):
  n = len(train[1])
  if val_size == 0:
    return train, None
  if not 0 < val_size < n:
    raise ValueError(f'config.data.val_size={val_size} must be in [0, {n}) (training examples)')
  perm = np.random.RandomState(VAL_SEED).permutation(n)
  val_idx, train_idx = np.sort(perm[n - val_size :]), np.sort(perm[: n - val_size])
  return (train[0][train_idx], train[1][train_idx]), (train[0][val_idx], train[1][val_idx])


def _subset(split, n, key):
  available = len(split[1])
  if n == 0:
    return split
  if not 0 < n <= available:
    raise ValueError(f'config.data.{key}={n} must be in [0, {available}] (examples available)')
  return split[0][:n], split[1][:n]


def channel_mean_std(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Exact per-channel mean and std (population) of uint8 images, in [0, 1] units."""
  channels = images.shape[-1]
  flat = images.reshape(-1, channels)
  mean, std = np.zeros(channels), np.zeros(channels)
  values = np.arange(256, dtype=np.float64) / 255.0
  for c in range(channels):  # A 256-bin histogram: exact and no float copy of the images.
    counts = np.bincount(flat[:, c], minlength=256).astype(np.float64)
    mean[c] = counts @ values / counts.sum()
    std[c] = np.sqrt(counts @ (values - mean[c]) ** 2 / counts.sum())
  return mean.astype(np.float32), std.astype(np.float32)


def _digits() -> _Raw:
  from sklearn import datasets as sk_datasets

  digits = sk_datasets.load_digits()
  pixels = digits.images.astype(np.int64)  # Values 0..16.
  images = ((pixels * 255 + 8) // 16).astype(np.uint8)[..., None]  # round(v * 255 / 16)
  labels = digits.target.astype(np.int32)
  k = DIGITS_NUM_TRAIN
  return _Raw(
    name='digits',
    splits={'train': (images[:k], labels[:k]), 'test': (images[k:], labels[k:])},
    class_names=tuple(str(i) for i in range(10)),
    source=(
      f"scikit-learn's 8x8 digits (bundled, no download): first {k} train, last "
      f'{len(labels) - k} test; pixels 0..16 mapped to 0..255'
    ),
  )


def _synthetic(cfg) -> _Raw:
  rng = np.random.default_rng(SYNTHETIC_SEED)
  shape, k = tuple(cfg.image_shape), cfg.num_classes

  def split(n):
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, k, n, dtype=np.int32)

  return _Raw(
    name='synthetic',
    splits={'train': split(cfg.num_train), 'test': split(cfg.num_test)},
    class_names=tuple(str(i) for i in range(k)),
    source=(
      f'synthetic: uniform random uint8 images {shape} and labels over {k} classes '
      f'(seed {SYNTHETIC_SEED}; for speed benchmarks, nothing to learn)'
    ),
  )


# --- Array cache ----------------------------------------------------------------------------------


def _cache_paths(data_dir, key):
  folder = os.path.join(data_dir, 'jaxland_arrays')
  return {split: os.path.join(folder, f'{key}-{split}.npz') for split in ('train', 'test')}


def _read_cache(data_dir, name, key) -> _Raw | None:
  paths = _cache_paths(data_dir, key)
  if not all(os.path.isfile(p) for p in paths.values()):
    return None
  splits = {}
  for split, path in paths.items():
    with np.load(path) as f:
      splits[split] = (f['images'], f['labels'])
      class_names, source = tuple(str(c) for c in f['class_names']), str(f['source'])
  cached = os.path.join(os.path.dirname(paths['train']), f'{key}-*.npz')
  return _Raw(name, splits, class_names, f'{source} [decoded arrays read from {cached}]')


def _write_cache(data_dir, key, raw: _Raw) -> None:
  for split, path in _cache_paths(data_dir, key).items():
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    images, labels = raw.splits[split]
    with open(tmp, 'wb') as f:
      np.savez(f, images=images, labels=labels, class_names=np.array(raw.class_names),
               source=np.array(raw.source))  # fmt: skip
    os.replace(tmp, path)  # Atomic: readers never see a half-written file.


def _cached(data_dir, name, key, make) -> _Raw:
  """The cached arrays for `key`, else make() them (timed, logged) and cache them."""
  raw = _read_cache(data_dir, name, key)
  if raw is not None:
    return raw
  start = time.time()
  raw = make()
  _write_cache(data_dir, key, raw)
  logging.info('%s: decoded and cached in %.1f s (%s)', name, time.time() - start, raw.source)
  return raw


# --- TFDS and image folders -----------------------------------------------------------------------


def _tf_without_gpus():
  """Imports TensorFlow with GPUs hidden, so tf.data never takes memory JAX needs."""
  import tensorflow as tf

  tf.config.set_visible_devices([], 'GPU')
  return tf


def _to_numpy(tfds_builder, split) -> tuple[np.ndarray, np.ndarray]:
  import tensorflow_datasets as tfds

  _tf_without_gpus()
  ds = tfds_builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
  images, labels = [], []
  try:
    for x, y in tfds.as_numpy(ds.batch(4096)):
      images.append(x)
      labels.append(y)
  except Exception as e:  # tf.data reports ragged images as an opaque InvalidArgumentError.
    raise ValueError(f'{tfds_builder.name} {split}: images must all have one shape ({e})') from e
  return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int32)


def _from_builder(builder, name, source) -> _Raw:
  splits = {split: _to_numpy(builder, split) for split in ('train', 'test')}
  return _Raw(name, splits, tuple(builder.info.features['label'].names), source)


def _tfds(name, data_config, data_dir) -> _Raw:
  cached = _read_cache(data_dir, name, f'{name}-{TFDS_VERSIONS[name]}')
  if cached is not None:
    return cached
  import tensorflow_datasets as tfds

  version = str(tfds.builder_cls(name).VERSION)
  return _cached(
    data_dir, name, f'{name}-{version}', lambda: _prepare_tfds(name, version, data_config, data_dir)
  )


def _prepare_tfds(name, version, data_config, data_dir) -> _Raw:
  import tensorflow_datasets as tfds

  from jaxland.data import offline  # needs TFDS: imported only where a TFDS path is taken

  builder = tfds.builder(name, data_dir=data_dir)
  label = f'TFDS {name!r} {version}'
  if builder.is_prepared():
    return _from_builder(builder, name, f'{label} read from prepared files in {builder.data_dir}')
  manual_dir = offline.find_manual_dir(name, data_config.manual_dir, data_dir)
  if manual_dir:
    offline.prepare_from_manual_dir(name, data_dir, manual_dir)
    files = ', '.join(offline.MANUAL_FILES[name])
    source = f'{label} prepared offline from {manual_dir} ({files}) into {builder.data_dir}'
    return _from_builder(tfds.builder(name, data_dir=data_dir), name, source)
  searched = offline.candidate_manual_dirs(name, data_config.manual_dir, data_dir)
  if data_config.manual_dir:
    raise DataUnavailableError(_missing_message(name, searched, data_dir, 'config.data.manual_dir'))
  if not offline.network_available():
    why = f'no network ({offline.NETWORK_PROBE} did not answer within 2 s)'
    raise DataUnavailableError(_missing_message(name, searched, data_dir, why))
  try:
    builder.download_and_prepare()
  except Exception as e:  # Any failed download means the data can't be had: allow the fallback.
    raise DataUnavailableError(f'cannot load {name!r}: the TFDS download failed: {e!r}') from e
  return _from_builder(builder, name, f'{label} downloaded by TFDS into {builder.data_dir}')


def _missing_message(name, searched, data_dir, why):
  from jaxland.data import offline  # needs TFDS: imported only where a TFDS path is taken

  files = ', '.join(offline.MANUAL_FILES[name])
  routes = [f'put {files} in a folder and pass --config.data.manual_dir=<that folder>']
  routes += OFFLINE_ROUTES.get(name, [])
  routes.append("set --config.data.fallback (e.g. 'digits')")
  return (
    f'cannot load {name!r}: no prepared TFDS data under {data_dir}, the original files ({files}) '
    f'are not in {searched}, and {why}. Offline routes: ' + '; or '.join(routes) + '.'
  )


# Datasets with a local copy beside the checkout (../shared/data): the route that works offline.
OFFLINE_ROUTES = {
  'cifar10': [
    'use the lossy JPEG copy: add :jpeg75 to the config (e.g. --config=configs/cifar_distance.py'
    ':jpeg75) with JAXLAND_DATA_DIR set to the folder holding cifar10/cifar10-jpeg75.tar.xz '
    '(reported as cifar10_jpeg75)'
  ],
  'mnist': ['with JAXLAND_DATA_DIR set, --config.data.manual_dir=$JAXLAND_DATA_DIR/mnist'],
}


def _image_folder(data_config, data_dir) -> _Raw:
  folder = os.path.expanduser(data_config.folder)
  if not folder:
    raise ValueError("config.data.folder must be set when config.data.name='image_folder'")
  if not os.path.exists(folder):
    raise DataUnavailableError(f'config.data.folder={folder!r} does not exist')
  if os.path.isfile(folder) and not folder_lib.is_archive(folder):
    raise ValueError(
      f'config.data.folder={folder!r} must be a folder or an archive {folder_lib.ARCHIVE_SUFFIXES}'
    )
  name = data_config.folder_name or os.path.basename(os.path.normpath(folder)).split('.')[0]
  key = f'{name}-folder{folder_lib.fingerprint(folder)}'
  return _cached(data_dir, name, key, lambda: _decode_folder(folder, name, data_dir))


def _decode_folder(folder, name, data_dir) -> _Raw:
  import PIL

  archive = folder_lib.is_archive(folder)
  unpacked = folder_lib.unpack_once(folder, data_dir) if archive else folder
  examples, class_names = folder_lib.list_examples(folder_lib.split_root(unpacked))
  splits = {
    split: folder_lib.decode_split(examples[split], class_names, f'{name} {split}')
    for split in ('train', 'test')
  }
  what = f'{folder} (unpacked to {unpacked})' if archive else folder
  source = (
    f'{name}: image folder {what}, decoded once (simplejpeg / Pillow {PIL.__version__}) to TFDS '
    "ImageFolder's order and pixels"
  )
  return _Raw(name, splits, class_names, source)
