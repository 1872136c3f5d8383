"""Image folders (split/class/image trees, or archives of one) -> uint8 arrays, no TensorFlow.

No TensorFlow: the GPU images have none, and it is half of a run's start-up. The examples, their
order, the labels and the class names are TFDS ImageFolder's: splits and classes sorted, each
class's files sorted by path (.jpg, .jpeg, .png, any case), then each split shuffled with
random.Random(<split name>); class names are the sorted folder names of all splits.

Pixels are TFDS's bit for bit: PNGs (and other files) through Pillow, JPEGs through simplejpeg
(libjpeg-turbo) with the fast integer IDCT and fancy chroma upsampling, TensorFlow's decode_image
defaults, which Pillow cannot give (its IDCT is the accurate one: up to 5 levels off). Checked on
all 60000 images of cifar10_jpeg75 against the TFDS-decoded arrays, so results recorded on that
copy rerun bit for bit, with or without TensorFlow.
"""

import hashlib
import os
import random
import shutil
import tarfile
import zipfile

import numpy as np
import simplejpeg
from PIL import Image

ARCHIVE_SUFFIXES = ('.tar.xz', '.tar.gz', '.tgz', '.tar.bz2', '.tar', '.zip')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')  # TFDS ImageFolder's, compared in lower case.


def is_archive(path: str) -> bool:
  return os.path.isfile(path) and path.lower().endswith(ARCHIVE_SUFFIXES)


def fingerprint(path: str) -> str:
  """A short id of an archive (name and size) or folder tree (relative paths and sizes)."""
  h = hashlib.sha1()
  if os.path.isfile(path):
    h.update(f'{os.path.basename(path)}:{os.path.getsize(path)}'.encode())
  else:
    for root, dirs, files in os.walk(path):
      dirs.sort()
      for f in sorted(files):
        full = os.path.join(root, f)
        h.update(f'{os.path.relpath(full, path)}:{os.path.getsize(full)};'.encode())
  return h.hexdigest()[:10]


def unpack_once(archive: str, data_dir: str) -> str:
  """Unpacks `archive` under data_dir/jaxland_folders the first time; later calls reuse it."""
  base = os.path.basename(archive)
  stem = next(base[: -len(s)] for s in ARCHIVE_SUFFIXES if base.lower().endswith(s))
  target = os.path.join(data_dir, 'jaxland_folders', f'{stem}-{fingerprint(archive)}')
  if os.path.isdir(target):
    return target
  tmp = f'{target}.incomplete-{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  if archive.lower().endswith('.zip'):
    with zipfile.ZipFile(archive) as z:
      z.extractall(tmp)
  else:
    with tarfile.open(archive) as t:
      t.extractall(tmp, filter='data')
  try:
    os.replace(tmp, target)  # Atomic: a half-unpacked folder is never taken for a finished one.
  except OSError:
    if not os.path.isdir(target):
      raise
    shutil.rmtree(tmp)  # Another process finished the same unpacking first.
  return target


def split_root(folder: str) -> str:
  """The folder holding train/ and test/, descending through single wrapper folders."""
  root = folder
  while not os.path.isdir(os.path.join(root, 'train')):
    subdirs = _folders(root)
    if len(subdirs) != 1:
      raise ValueError(
        f'config.data.folder={folder!r} must hold split folders train/<class>/<image> and '
        f'test/<class>/<image>; found {subdirs} in {root}'
      )
    root = os.path.join(root, subdirs[0])
  if not os.path.isdir(os.path.join(root, 'test')):
    raise ValueError(f'config.data.folder={folder!r}: {root} has train/ but no test/ folder')
  return root


def list_examples(root: str) -> tuple[dict[str, list[tuple[str, str]]], tuple[str, ...]]:
  """({split: [(image path, class name)] in TFDS ImageFolder's order}, sorted class names)."""
  splits, classes = {}, set()
  for split in _folders(root):
    examples = []
    for label in _folders(os.path.join(root, split)):
      classes.add(label)
      folder = os.path.join(root, split, label)
      paths = [os.path.join(folder, f) for f in os.listdir(folder) if _is_image(f)]
      examples += [(path, label) for path in sorted(paths)]
    random.Random(split).shuffle(examples)  # TFDS's seed: the split's name.
    splits[split] = examples
  return splits, tuple(sorted(classes))


def decode(path: str) -> np.ndarray:
  """One image file as uint8 [H, W, 3] (grey and palette images expanded, alpha dropped)."""
  with open(path, 'rb') as f:
    data = f.read()
  if simplejpeg.is_jpeg(data):
    return simplejpeg.decode_jpeg(data, colorspace='RGB', fastdct=True, fastupsample=False)
  with Image.open(path) as image:
    return np.asarray(image if image.mode == 'RGB' else image.convert('RGB'), dtype=np.uint8)


def decode_split(examples, class_names, what: str) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images [N, H, W, 3], int32 labels [N]) of list_examples' (path, class) pairs."""
  index = {name: i for i, name in enumerate(class_names)}
  labels = np.array([index[label] for _, label in examples], np.int32)
  if not examples:
    return np.zeros((0, 0, 0, 3), np.uint8), labels
  first = decode(examples[0][0])
  images = np.empty((len(examples), *first.shape), np.uint8)
  for i, (path, _) in enumerate(examples):
    image = first if i == 0 else decode(path)
    if image.shape != first.shape:
      raise ValueError(
        f'{what}: images must all have one shape; {path} is {image.shape[:2]}, '
        f'{examples[0][0]} is {first.shape[:2]}'
      )
    images[i] = image
  return images, labels


def _folders(path: str) -> list[str]:
  return sorted(f for f in os.listdir(path) if os.path.isdir(os.path.join(path, f)))


def _is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_SUFFIXES)
