"""Tests of jaxland.data: orders, eval coverage, augmentation, normalisation, sharding, and loading
of real (Fashion-MNIST, MNIST, CIFAR-10 JPEG), mock, bundled and synthetic data, offline."""

import functools
import gzip
import importlib.util
import os
import pathlib
import tarfile
import time
import zipfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from jax.sharding import PartitionSpec as P
from PIL import Image

from jaxland import data
from jaxland.data import folder as folder_lib
from jaxland.data import offline, pipeline
from jaxland.train import loop
from tests import helpers

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CIFAR10_CLASSES = (
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'
)  # fmt: skip


def _default_data_config():
  path = pathlib.Path(__file__).parents[1] / 'configs' / 'default.py'
  spec = importlib.util.spec_from_file_location('jaxland_default_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config().data


def _cfg(name, **overrides):
  cfg = _default_data_config()
  cfg.name = name
  for key, value in overrides.items():
    cfg[key] = value
  return cfg


@pytest.fixture
def offline_network(monkeypatch):
  """Simulates a machine without network; fails the test if a download is attempted."""
  monkeypatch.setattr(offline, 'network_available', lambda timeout=2.0: False)

  def no_download(*args, **kwargs):
    raise AssertionError('a download was attempted while offline')

  monkeypatch.setattr(tfds.download.DownloadManager, '_download', no_download)


# --- Orders ---------------------------------------------------------------------------------------


def test_epoch_order_is_a_seeded_permutation():
  n = 1000
  a = np.asarray(data.epoch_order(3, 5, n))
  assert a.dtype == np.int32
  np.testing.assert_array_equal(np.sort(a), np.arange(n))
  np.testing.assert_array_equal(a, np.asarray(data.epoch_order(3, 5, n)))  # Replay.
  assert not np.array_equal(a, np.asarray(data.epoch_order(3, 6, n)))  # Next epoch.
  assert not np.array_equal(a, np.asarray(data.epoch_order(4, 5, n)))  # Other seed.
  spec = jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(3), 5), n)
  np.testing.assert_array_equal(a, np.asarray(spec))  # The documented formula.


def test_epoch_batches_inside_jit_replays_the_host_sequence():
  n, bs = 103, 10

  @jax.jit
  @chex.assert_max_traces(n=1)
  def batches(seed, epoch):
    return data.epoch_batches(seed, epoch, n, bs)

  for epoch in range(3):
    host = np.asarray(data.epoch_batches(7, epoch, n, bs))
    assert host.shape == (10, 10)  # 103 // 10 steps; the remainder of 3 is dropped.
    np.testing.assert_array_equal(host, np.asarray(batches(7, epoch)))
    order = np.asarray(data.epoch_order(7, epoch, n))
    np.testing.assert_array_equal(host.ravel(), order[:100])
    assert len(set(host.ravel())) == 100
  with pytest.raises(ValueError, match='data.batch_size'):
    data.epoch_batches(0, 0, 5, 8)


def test_epoch_orders_compiled_at_o1_give_the_bits_of_xla_default_o3():
  """The loop compiles an epoch's batch order at LLVM -O1 (runtime.compiled_cold: it compiles
  once and runs once an epoch); the oracle is the same program at -O3, bit for bit, at
  Fashion-MNIST's and CIFAR-10's sizes."""
  from jaxland import runtime

  for n, bs in ((60000, 128), (50000, 1024)):
    jitted = jax.jit(data.epoch_batches, static_argnums=(2, 3))
    cold = runtime.compiled_cold(jitted, 0, 0, n, bs)
    o3 = jitted.lower(0, 0, n, bs).compile({'xla_backend_optimization_level': 3})
    for seed, epoch in ((0, 0), (1, 7), (12345, 99)):
      np.testing.assert_array_equal(np.asarray(cold(seed, epoch)), np.asarray(o3(seed, epoch)))


@pytest.mark.parametrize('n,bs', [(10, 3), (12, 4), (1, 5), (10000, 1000), (10001, 1000)])
def test_eval_batches_cover_every_example_exactly_once(n, bs):
  indices, mask = data.eval_batches(n, bs)
  assert indices.shape == mask.shape == (-(-n // bs), bs)
  assert indices.dtype == np.int32 and mask.dtype == bool
  np.testing.assert_array_equal(np.sort(indices[mask]), np.arange(n))
  assert (~mask).sum() == indices.size - n
  assert indices.min() >= 0 and indices.max() < n  # Padding gathers a valid example.


# --- Augmentation and normalisation ---------------------------------------------------------------


def _images(batch=64, h=12, w=10, c=3, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(1, 256, (batch, h, w, c), dtype=np.uint8)  # No zeros: padding shows.


def _shift(img, sy, sx):
  """Independent oracle: out[i, j] = img[i + sy, j + sx], zero outside the image."""
  h, w = img.shape[:2]
  out = np.zeros_like(img)
  out[max(0, -sy) : min(h, h - sy), max(0, -sx) : min(w, w - sx)] = img[
    max(0, sy) : min(h, h + sy), max(0, sx) : min(w, w + sx)
  ]
  return out


def test_crop_shifts_content_by_at_most_pad():
  pad = 3
  x = _images()
  out = np.asarray(
    data.augment(jnp.asarray(x), jax.random.PRNGKey(1), data.Augment(crop=True, pad=pad))
  )
  assert out.shape == x.shape and out.dtype == np.uint8
  shifts = []
  for img, o in zip(x, out, strict=True):
    found = [(sy, sx) for sy in range(-pad, pad + 1) for sx in range(-pad, pad + 1)
             if np.array_equal(_shift(img, sy, sx), o)]  # fmt: skip
    assert len(found) == 1
    shifts.append(found[0])
  assert len(set(shifts)) > 10  # Each example draws its own offset ...
  for axis in range(2):  # ... over the whole range [-pad, pad] on each axis.
    assert {s[axis] for s in shifts} == set(range(-pad, pad + 1))


def test_flip_is_a_true_mirror():
  x = _images()
  out = np.asarray(data.augment(jnp.asarray(x), jax.random.PRNGKey(2), data.Augment(flip=True)))
  flipped = [np.array_equal(o, img[:, ::-1]) for img, o in zip(x, out, strict=True)]
  kept = [np.array_equal(o, img) for img, o in zip(x, out, strict=True)]
  assert all(f != k for f, k in zip(flipped, kept, strict=True))  # Exactly one of the two.
  assert 10 < sum(flipped) < 54


def test_train_batch_without_augmentation_is_gather_and_normalize():
  x, y = _images(32), np.arange(32, dtype=np.int32)
  idx = np.array([5, 0, 31, 5], np.int32)
  mean, std = np.array([0.2, 0.4, 0.6], np.float32), np.array([0.5, 0.25, 0.1], np.float32)
  bx, by = data.train_batch(x, y, idx, jax.random.PRNGKey(0), data.Augment(), mean, std)
  want = (x[idx].astype(np.float64) / 255.0 - mean) / std
  assert bx.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(bx), want, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(by), idx)
  ex, ey = data.eval_batch(x, y, idx, mean, std)
  np.testing.assert_array_equal(np.asarray(ex), np.asarray(bx))
  np.testing.assert_array_equal(np.asarray(ey), idx)


def test_train_batch_with_augmentation_in_jit():
  x, y = _images(16, 8, 8, 1), np.arange(16, dtype=np.int32)
  aug = _default_data_config().augment
  aug.crop, aug.flip, aug.pad = True, True, 2
  step = jax.jit(functools.partial(data.train_batch, augment_cfg=aug))
  mean, std = np.float32([0.5]), np.float32([0.25])
  bx, by = step(x, y, jnp.arange(16), jax.random.PRNGKey(0), mean=mean, std=std)
  assert bx.shape == (16, 8, 8, 1) and bx.dtype == jnp.float32
  lo, hi = (0 - 0.5) / 0.25, (1 - 0.5) / 0.25
  assert float(bx.min()) >= lo - 1e-6 and float(bx.max()) <= hi + 1e-6
  np.testing.assert_array_equal(np.asarray(by), np.arange(16))
  bx2, _ = step(x, y, jnp.arange(16), jax.random.PRNGKey(1), mean=mean, std=std)
  assert not np.array_equal(np.asarray(bx), np.asarray(bx2))  # Randomness comes from rng.


# --- Mesh and sharding ----------------------------------------------------------------------------


def test_mesh_shardings_and_batch_size_check():
  mesh = data.make_mesh()
  assert mesh.axis_names == ('data',) and mesh.devices.size == jax.device_count() == 8
  data.check_batch_size(16, mesh)
  with pytest.raises(ValueError, match='data.batch_size=12'):
    data.check_batch_size(12, mesh)
  with pytest.raises(ValueError, match='data.eval_batch_size'):
    data.check_batch_size(100, mesh, key='data.eval_batch_size')
  x, y = _images(40), np.arange(40, dtype=np.int32)
  dx, dy = pipeline.put_global((x, y), data.replicated(mesh))
  assert (
    dx.dtype == jnp.uint8 and dx.sharding.is_fully_replicated and dy.sharding.is_fully_replicated
  )
  idx = jax.device_put(np.arange(16, dtype=np.int32), data.batch_sharding(mesh))
  step = jax.jit(
    functools.partial(
      data.train_batch, augment_cfg=data.Augment(flip=True), sharding=data.batch_sharding(mesh)
    )
  )
  bx, by = step(dx, dy, idx, jax.random.PRNGKey(0), mean=np.zeros(3), std=np.ones(3))
  assert bx.sharding.spec == P('data') and by.sharding.spec == P('data')
  ref, _ = data.train_batch(x, y, np.arange(16), jax.random.PRNGKey(0), data.Augment(flip=True),
                            np.zeros(3), np.ones(3))  # fmt: skip
  np.testing.assert_allclose(np.asarray(bx), np.asarray(ref))


def test_a_run_replicates_every_split_on_the_devices():
  config = helpers.digits_config({'data.val_size': 100})
  run = loop.build_run(config, '', writer=None)
  ds = data.load_dataset(config.data)
  assert sorted(run.device_data) == ['test', 'train', 'val']
  for name, (images, labels) in run.device_data.items():
    assert images.dtype == jnp.uint8 and labels.dtype == jnp.int32
    assert images.sharding.is_fully_replicated
    np.testing.assert_array_equal(np.asarray(images), getattr(ds, name)[0])
  no_val = loop.build_run(helpers.digits_config(), '', writer=None)
  assert sorted(no_val.device_data) == ['test', 'train']


# --- Bundled, synthetic, splits -------------------------------------------------------------------


def test_digits_split_and_pixel_mapping():
  from sklearn.datasets import load_digits

  ds = data.load_dataset(_cfg('digits'))
  raw = load_digits()
  want = np.round(raw.images * 255.0 / 16.0).astype(np.uint8)[..., None]
  assert ds.name == 'digits' and ds.num_classes == 10 and ds.val is None
  assert ds.train[0].shape == (1500, 8, 8, 1) and ds.test[0].shape == (297, 8, 8, 1)
  assert ds.train[0].dtype == np.uint8 and ds.train[1].dtype == np.int32
  np.testing.assert_array_equal(np.concatenate([ds.train[0], ds.test[0]]), want)
  np.testing.assert_array_equal(np.concatenate([ds.train[1], ds.test[1]]), raw.target)
  assert ds.train[0].max() == 255 and 'scikit-learn' in ds.source


def test_val_holdout_subsets_and_mean_std():
  full = data.load_dataset(_cfg('digits'))
  ds = data.load_dataset(_cfg('digits', val_size=200, train_subset=1000, test_subset=50))
  perm = np.random.RandomState(0).permutation(1500)  # The documented rule, written out.
  val_idx, rest = np.sort(perm[-200:]), np.sort(perm[:-200])
  np.testing.assert_array_equal(ds.val[0], full.train[0][val_idx])
  np.testing.assert_array_equal(ds.val[1], full.train[1][val_idx])
  np.testing.assert_array_equal(ds.train[0], full.train[0][rest[:1000]])
  np.testing.assert_array_equal(ds.test[1], full.test[1][:50])
  x = ds.train[0].astype(np.float64) / 255.0
  np.testing.assert_allclose(ds.mean, x.mean(axis=(0, 1, 2)), rtol=1e-6)
  np.testing.assert_allclose(ds.std, x.std(axis=(0, 1, 2)), rtol=1e-6)
  for key, value in [('val_size', 1500), ('train_subset', 1501), ('test_subset', -1)]:
    with pytest.raises(ValueError, match=f'config.data.{key}'):
      data.load_dataset(_cfg('digits', **{key: value}))


def test_synthetic_is_seeded_and_shaped_by_config():
  cfg = _cfg('synthetic')
  cfg.synthetic.num_train, cfg.synthetic.num_test = 64, 16
  cfg.synthetic.image_shape, cfg.synthetic.num_classes = (8, 6, 2), 5
  a, b = data.load_dataset(cfg), data.load_dataset(cfg)
  assert a.train[0].shape == (64, 8, 6, 2) and a.test[0].shape == (16, 8, 6, 2)
  assert a.num_classes == 5 and set(a.train[1]) <= set(range(5)) and a.mean.shape == (2,)
  np.testing.assert_array_equal(a.train[0], b.train[0])
  np.testing.assert_array_equal(a.test[1], b.test[1])


def test_bad_names_are_rejected():
  with pytest.raises(ValueError, match='config.data.name'):
    data.load_dataset(_cfg('imagenet'))
  with pytest.raises(ValueError, match='config.data.fallback'):
    data.load_dataset(_cfg('digits', fallback='digits'))
  with pytest.raises(ValueError, match='config.data.folder'):
    data.load_dataset(_cfg('image_folder'))


# --- Offline behaviour ----------------------------------------------------------------------------


def test_network_probe_fails_fast(monkeypatch):
  monkeypatch.setattr(offline, 'NETWORK_PROBE', 'https://10.255.255.1:9/')  # Would hang.
  start = time.time()
  assert not offline.network_available(timeout=0.5)
  assert time.time() - start < 1.5


@pytest.mark.parametrize('name', ['mnist', 'fashion_mnist', 'cifar10'])
def test_no_files_no_network_says_what_to_put_where(name, tmp_path, offline_network, monkeypatch):
  monkeypatch.setattr(offline, 'KNOWN_MANUAL_DIRS', {})  # Hide Debian's Fashion-MNIST.
  start = time.time()
  with pytest.raises(data.DataUnavailableError) as e:
    data.load_dataset(_cfg(name, data_dir=str(tmp_path)))
  assert time.time() - start < 10
  for f in offline.MANUAL_FILES[name]:
    assert f in str(e.value)
  assert 'config.data.manual_dir' in str(e.value) and 'no network' in str(e.value)
  with pytest.raises(data.DataUnavailableError, match='config.data.manual_dir'):
    data.load_dataset(_cfg(name, data_dir=str(tmp_path), manual_dir=str(tmp_path / 'empty')))


def test_fallback_loads_the_fallback_and_says_why(tmp_path, offline_network):
  ds = data.load_dataset(_cfg('mnist', data_dir=str(tmp_path), fallback='digits'))
  assert ds.name == 'digits' and ds.train[0].shape == (1500, 8, 8, 1)
  assert ds.source.startswith("FALLBACK: using 'digits' instead of 'mnist'")
  assert 'train-images-idx3-ubyte.gz' in ds.source and 'scikit-learn' in ds.source


def test_failed_download_also_falls_back(tmp_path, monkeypatch):
  monkeypatch.setattr(offline, 'network_available', lambda timeout=2.0: True)

  def failing_download(*args, **kwargs):
    raise ConnectionError('simulated: host unreachable')

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', failing_download)
  ds = data.load_dataset(_cfg('cifar10', data_dir=str(tmp_path), fallback='synthetic'))
  assert ds.name == 'synthetic' and 'download failed' in ds.source and 'simulated' in ds.source
  with pytest.raises(data.DataUnavailableError, match='simulated'):
    data.load_dataset(_cfg('cifar10', data_dir=str(tmp_path)))


def test_mock_cifar10_through_tfds(tmp_path, monkeypatch):
  monkeypatch.setattr(offline, 'network_available', lambda timeout=2.0: True)
  with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = data.load_dataset(_cfg('cifar10', data_dir=str(tmp_path), val_size=4))
  assert ds.name == 'cifar10' and ds.num_classes == 10
  assert ds.train[0].shape == (20, 32, 32, 3) and ds.val[0].shape == (4, 32, 32, 3)
  assert ds.test[0].shape == (24, 32, 32, 3) and ds.train[0].dtype == np.uint8
  assert ds.train[1].dtype == np.int32 and 0 <= ds.train[1].min() and ds.train[1].max() < 10
  assert "TFDS 'cifar10'" in ds.source


def _write_tree(root, split, sizes):
  """PNG (lossless) images of constant colour: class k, image i -> value 10 * k + i + 1."""
  for k, n in enumerate(sizes):
    folder = root / split / f'class{k}'
    folder.mkdir(parents=True)
    for i in range(n):
      Image.fromarray(np.full((5, 4, 3), 10 * k + i + 1, np.uint8)).save(folder / f'{i}.png')


@pytest.mark.parametrize('kind', ['tar.gz', 'zip', 'folder'])
def test_image_folder_unpacked_once_and_cached(kind, tmp_path, monkeypatch):
  tree = tmp_path / 'tree' / 'wrapper'  # A wrapper folder above train/ and test/ is skipped.
  _write_tree(tree, 'train', [3, 2])
  _write_tree(tree, 'test', [1, 2])
  if kind == 'tar.gz':
    folder = tmp_path / 'toy.tar.gz'
    with tarfile.open(folder, 'w:gz') as t:
      t.add(tree, arcname='wrapper')
  elif kind == 'zip':
    folder = tmp_path / 'toy.zip'
    with zipfile.ZipFile(folder, 'w') as z:
      for p in tree.rglob('*.png'):
        z.write(p, p.relative_to(tree.parent))
  else:
    folder = tree
  cfg = _cfg('image_folder', folder=str(folder), folder_name='toy', data_dir=str(tmp_path / 'd'))
  ds = data.load_dataset(cfg)
  assert ds.name == 'toy' and ds.class_names == ('class0', 'class1') and ds.image_shape == (5, 4, 3)
  pairs = sorted(zip(ds.train[0][:, 0, 0, 0].tolist(), ds.train[1].tolist(), strict=True))
  assert pairs == [(1, 0), (2, 0), (3, 0), (11, 1), (12, 1)]
  assert (ds.train[0] == ds.train[0][:, :1, :1, :1]).all()  # Pixels exact (PNG).
  assert sorted(ds.test[0][:, 0, 0, 0].tolist()) == [1, 11, 12]
  monkeypatch.setattr(folder_lib, 'tarfile', None)  # A second unpack would now fail.
  monkeypatch.setattr(folder_lib, 'zipfile', None)
  again = data.load_dataset(cfg)  # From the array cache.
  assert 'decoded arrays read from' in again.source
  np.testing.assert_array_equal(again.train[0], ds.train[0])
  for f in (tmp_path / 'd' / 'jaxland_arrays').iterdir():
    f.unlink()
  rebuilt = data.load_dataset(cfg)  # Decoded again from the folder unpacked the first time.
  np.testing.assert_array_equal(rebuilt.train[0], ds.train[0])


def _smooth_image(rng, shape):
  """A photo-like uint8 image: a random colour gradient plus mild noise."""
  h, w = shape
  ramp = np.linspace(0, 1, h)[:, None, None] * rng.uniform(-120, 120, 3)
  ramp = ramp + np.linspace(0, 1, w)[None, :, None] * rng.uniform(-120, 120, 3)
  image = 128 + ramp + rng.normal(0, 12, (h, w, 3))
  return np.clip(image, 0, 255).astype(np.uint8)


def _write_mixed_tree(root):
  """JPEGs (RGB, grey, 4:4:4, odd suffixes) and PNGs (RGB, grey, palette, RGBA) in three classes
  of train/ and test/; files whose suffix is no image's are skipped (as TFDS skips them)."""
  rng = np.random.default_rng(0)
  for split, n in (('train', 4), ('test', 2)):
    for label in ('cat', 'ant', 'bee'):
      folder = root / split / label
      folder.mkdir(parents=True)
      for i in range(n):
        pixels = _smooth_image(rng, (12, 20))
        image = Image.fromarray(pixels)
        image.save(folder / f'{i}a.jpg', quality=75)
        image.convert('L').save(folder / f'{i}b.JPEG', quality=90)
        image.save(folder / f'{i}c.jpeg', quality=95, subsampling=0)
        image.save(folder / f'{i}d.png')
        image.convert('L').save(folder / f'{i}e.PNG')
        image.convert('P').save(folder / f'{i}f.png')
        Image.fromarray(np.dstack([pixels, pixels[..., :1]])).save(folder / f'{i}g.png')
      (folder / 'notes.txt').write_text('not an image')


def test_image_folder_decodes_like_tfds_image_folder(tmp_path):
  """TFDS ImageFolder is the oracle: the same examples in the same order, labels and class names,
  and every pixel of every PNG and JPEG bit for bit (jaxland/data/folder.py)."""
  root = tmp_path / 'tree'
  _write_mixed_tree(root)
  examples, class_names = folder_lib.list_examples(str(root))
  builder = tfds.ImageFolder(str(root))
  assert class_names == ('ant', 'bee', 'cat') == tuple(builder.info.features['label'].names)
  for split in ('train', 'test'):
    images, labels = folder_lib.decode_split(examples[split], class_names, split)
    assert images.shape == (len(examples[split]), 12, 20, 3) and images.dtype == np.uint8
    ds = builder.as_dataset(split=split, shuffle_files=False)
    oracle = list(tfds.as_numpy(ds))
    assert [o['image/filename'].decode() for o in oracle] == [p for p, _ in examples[split]]
    np.testing.assert_array_equal(labels, [o['label'] for o in oracle])
    for image, o, (path, _) in zip(images, oracle, examples[split], strict=True):
      np.testing.assert_array_equal(image, o['image'], err_msg=path)


def test_idx_reader_checks_headers(tmp_path):
  path = tmp_path / 'x.gz'
  with gzip.open(path, 'wb') as f:
    f.write(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
  np.testing.assert_array_equal(offline.read_idx(path), np.arange(6).reshape(2, 3))
  with gzip.open(path, 'wb') as f:
    f.write(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(3))
  with pytest.raises(ValueError, match='header says'):
    offline.read_idx(path)


# --- Real data (prepared once into tfds_data_dir, then read from the array cache) -----------------


def _numpy_idx(path, header):
  """Independent oracle: the IDX payload after its fixed-size header, read with gzip + numpy."""
  with gzip.open(path, 'rb') as f:
    return np.frombuffer(f.read(), np.uint8, offset=header)


def _same_examples(images, labels, idx_dir, prefix):
  """(image, label) pairs equal the IDX files' as multisets (TFDS stores them in hashed order)."""
  want_x = _numpy_idx(idx_dir / f'{prefix}-images-idx3-ubyte.gz', 16).reshape(-1, 784)
  want_y = _numpy_idx(idx_dir / f'{prefix}-labels-idx1-ubyte.gz', 8)
  got = np.concatenate([images.reshape(-1, 784), labels.astype(np.uint8)[:, None]], 1)
  want = np.concatenate([want_x, want_y[:, None]], 1)
  assert sorted(map(bytes, got)) == sorted(map(bytes, want))


@pytest.mark.realdata
def test_fashion_mnist_found_and_prepared_offline(
  fashion_mnist_dir, tfds_data_dir, offline_network
):
  assert offline.find_manual_dir('fashion_mnist', '', '/nonexistent') == str(fashion_mnist_dir)
  ds = data.load_dataset(_cfg('fashion_mnist', data_dir=tfds_data_dir))
  assert ds.name == 'fashion_mnist' and ds.class_names[0] == 'T-shirt/top'
  assert ds.train[0].shape == (60000, 28, 28, 1) and ds.test[0].shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(ds.train[1]), [6000] * 10)
  np.testing.assert_array_equal(np.bincount(ds.test[1]), [1000] * 10)
  _same_examples(*ds.train, fashion_mnist_dir, 'train')
  _same_examples(*ds.test, fashion_mnist_dir, 't10k')
  np.testing.assert_allclose(ds.mean, [0.2860], atol=1e-4)  # Published constants.
  np.testing.assert_allclose(ds.std, [0.3530], atol=1e-4)


@pytest.mark.realdata
def test_cifar10_jpeg_archive_through_image_folder(data_root, tfds_data_dir):
  archive = data_root / 'cifar10' / 'cifar10-jpeg75.tar.xz'
  cfg = _cfg('image_folder', folder=str(archive), folder_name='cifar10_jpeg75',
             data_dir=tfds_data_dir)  # fmt: skip
  ds = data.load_dataset(cfg)
  assert ds.name == 'cifar10_jpeg75' and ds.class_names == CIFAR10_CLASSES
  assert ds.train[0].shape == (50000, 32, 32, 3) and ds.test[0].shape == (10000, 32, 32, 3)
  np.testing.assert_array_equal(np.bincount(ds.train[1]), [5000] * 10)
  np.testing.assert_array_equal(np.bincount(ds.test[1]), [1000] * 10)
  import tensorflow as tf  # The oracle: TFDS's own decoder (TensorFlow's decode_image defaults).

  with tarfile.open(archive) as t:  # 8 JPEGs spread over the archive.
    members = [m for m in t if m.name.endswith('.jpg')][::7500]
    jpegs = [tf.io.decode_image(t.extractfile(m).read(), channels=3).numpy() for m in members]
  assert len(members) == 8
  for member, jpeg in zip(members, jpegs, strict=True):
    split, cls = member.name.split('/')[-3:-1]
    images = getattr(ds, split)[0][getattr(ds, split)[1] == CIFAR10_CLASSES.index(cls)]
    err = np.abs(images.astype(np.int16) - jpeg).mean(axis=(1, 2, 3))
    assert np.sort(err)[0] == 0 and np.sort(err)[1] > 2, member.name  # Bit for bit; one image.
  # Published CIFAR-10 statistics; JPEG at quality 75 moves them by < 0.01.
  np.testing.assert_allclose(ds.mean, [0.4914, 0.4822, 0.4465], atol=0.01)
  np.testing.assert_allclose(ds.std, [0.2470, 0.2435, 0.2616], atol=0.01)


@pytest.mark.slow
@pytest.mark.realdata
def test_mnist_prepared_afresh_from_regzipped_idx_is_the_stock_tfds_dataset(
  data_root, tmp_path, offline_network
):
  """One fresh preparation (about a minute: TFDS encodes 70k PNGs) checked three ways: TFDS's own
  class reads it back, the arrays hold the IDX files' examples, and a second load reads the
  decoded-array cache in seconds."""
  mnist_dir = data_root / 'mnist'
  cfg = _cfg('mnist', data_dir=str(tmp_path), manual_dir=str(mnist_dir))
  start = time.time()
  ds = data.load_dataset(cfg)
  print(f'MNIST prepared from IDX files in {time.time() - start:.1f} s')
  assert 'prepared offline from' in ds.source
  stock = tfds.builder('mnist', data_dir=str(tmp_path))  # TFDS's own class reads it back.
  assert type(stock) is tfds.image_classification.MNIST and stock.is_prepared()
  assert stock.info.splits['train'].num_examples == 60000
  assert os.path.isdir(tmp_path / 'mnist' / '3.0.1')
  assert ds.name == 'mnist' and ds.num_classes == 10
  assert ds.train[0].shape == (60000, 28, 28, 1) and ds.test[0].shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(ds.train[1]), MNIST_TRAIN_COUNTS)
  np.testing.assert_array_equal(np.bincount(ds.test[1]), MNIST_TEST_COUNTS)
  _same_examples(*ds.train, mnist_dir, 'train')
  _same_examples(*ds.test, mnist_dir, 't10k')
  np.testing.assert_allclose(ds.mean, [0.1307], atol=1e-4)
  np.testing.assert_allclose(ds.std, [0.3081], atol=1e-4)
  start = time.time()
  assert 'decoded arrays read from' in data.load_dataset(cfg).source
  assert time.time() - start < 5
