"""Test setup: 8 virtual CPU devices, and fixtures that find real data or skip with a reason."""

import os
import tempfile

os.environ.setdefault('XLA_FLAGS', '')
if '--xla_force_host_platform_device_count' not in os.environ['XLA_FLAGS']:
  os.environ['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=8'
# LLVM at -O1 instead of -O3: the suite's thousands of small programs compile in about a third of
# the time (a 32-unit MLP's init: 1.1 s against 3.2 s) and the suite runs ~35% faster, while every
# comparison stays within one compiled world (oracle and subject built under the same flags).
# Users' runs keep XLA's default; -O0 is not used (it miscompiles the fused airbench backward).
if '--xla_backend_optimization_level' not in os.environ['XLA_FLAGS']:
  os.environ['XLA_FLAGS'] += ' --xla_backend_optimization_level=1'
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
# A persistent compilation cache of this test session's own, one per xdist worker (so no two
# processes write one entry at once; subprocesses of a test share their worker's): the many
# tests that build the same small programs compile them once, as a user's reruns do.
# A JAXLAND_CACHE_DIR set before pytest started (e.g. '' for none) is kept.
if 'JAXLAND_CACHE_DIR' not in os.environ or '_JAXLAND_TEST_CACHE' in os.environ:
  _RUN = os.environ.get('PYTEST_XDIST_TESTRUNUID', str(os.getpid()))
  _WORKER = os.environ.get('PYTEST_XDIST_WORKER', 'main')
  _CACHE = os.path.join(tempfile.gettempdir(), f'jaxland-test-cache-{_RUN}-{_WORKER}')
  os.environ.update(JAXLAND_CACHE_DIR=_CACHE, _JAXLAND_TEST_CACHE='1')

import pathlib  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402

FASHION_MNIST_DEBIAN = pathlib.Path('/usr/share/datasets/fashion-mnist')


@pytest.fixture(scope='session', autouse=True)
def compilation_cache():
  """The session's compilation cache on for in-process runs too; removed at the end."""
  from jaxland import runtime

  path = runtime.enable_compilation_cache()
  yield path
  if path and os.path.basename(path).startswith('jaxland-test-cache-'):
    shutil.rmtree(path, ignore_errors=True)


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
