"""Test setup: 8 virtual CPU devices, and fixtures that find real data or skip with a reason."""

import os

os.environ.setdefault('XLA_FLAGS', '')
if '--xla_force_host_platform_device_count' not in os.environ['XLA_FLAGS']:
  os.environ['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=8'
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
os.environ.setdefault('JAXLAND_CACHE_DIR', '')  # No persistent compilation cache in tests.

import pathlib  # noqa: E402

import pytest  # noqa: E402

FASHION_MNIST_DEBIAN = pathlib.Path('/usr/share/datasets/fashion-mnist')


def _missing(reason):
  """Skips, or fails when JAXLAND_REQUIRE_DATA=1 (CI), so real-data tests always run there."""
  if os.environ.get('JAXLAND_REQUIRE_DATA') == '1':
    pytest.fail(f'real data required (JAXLAND_REQUIRE_DATA=1) but {reason}')
  pytest.skip(reason)


@pytest.fixture(scope='session')
def data_root():
  """The folder of real data named by JAXLAND_DATA_DIR (mnist/, cifar10/ as in shared/data)."""
  root = os.environ.get('JAXLAND_DATA_DIR')
  if not root or not pathlib.Path(root).is_dir():
    _missing('JAXLAND_DATA_DIR is not set to a folder of real data')
  return pathlib.Path(root)


@pytest.fixture(scope='session')
def fashion_mnist_dir():
  """Debian's dataset-fashion-mnist files (apt-get install dataset-fashion-mnist)."""
  if not (FASHION_MNIST_DEBIAN / 'train-images-idx3-ubyte.gz').exists():
    _missing(f'{FASHION_MNIST_DEBIAN} is absent (apt-get install dataset-fashion-mnist)')
  return FASHION_MNIST_DEBIAN


@pytest.fixture(scope='session')
def tfds_data_dir():
  """Where prepared TFDS datasets are kept between test sessions (preparing takes a while)."""
  d = os.environ.get('JAXLAND_TEST_TFDS_DIR') or os.path.expanduser('~/tensorflow_datasets')
  os.makedirs(d, exist_ok=True)
  return d
