"""The 'eda' task on digits: class counts, channel statistics and figures against numpy."""

import csv

import numpy as np
import pytest
from sklearn.datasets import load_digits

from configs import default
from jaxland import data, tasks
from jaxland.data import eda


def digits_config(**data_overrides):
  config = default.get_config()
  config.task = 'eda'
  config.data.name = 'digits'
  config.eda.num_samples = 12
  for key, value in data_overrides.items():
    config.data[key] = value
  return config


def test_eda_task_on_digits(tmp_path):
  config = digits_config(val_size=300)
  summary = tasks.run(config, str(tmp_path))
  assert summary['status'] == 'done' and summary['dataset'] == 'digits'
  # Oracle: scikit-learn's own labels; jaxland's digits are its first 1500 (train) / last 297.
  target = load_digits().target
  assert summary['counts']['test'] == np.bincount(target[1500:], minlength=10).tolist()
  assert sum(summary['counts']['train']) + sum(summary['counts']['val']) == 1500
  assert (
    np.add(summary['counts']['train'], summary['counts']['val']).tolist()
    == np.bincount(target[:1500], minlength=10).tolist()
  )
  dataset = data.load_dataset(config.data)
  for split, (images, _) in (('train', dataset.train), ('test', dataset.test)):
    x = images.astype(np.float64) / 255.0
    np.testing.assert_allclose(summary['mean'][split], x.mean(axis=(0, 1, 2)), rtol=1e-10)
    np.testing.assert_allclose(summary['std'][split], x.std(axis=(0, 1, 2)), rtol=1e-10)
  assert len(set(summary['samples'])) == 12
  with open(tmp_path / 'class_counts.csv') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['class', 'train', 'val', 'test'] and len(rows) == 11
  assert rows[4][0] == dataset.class_names[3] and int(rows[4][3]) == summary['counts']['test'][3]
  for name in ('class_counts.png', 'samples.png'):
    assert (tmp_path / name).stat().st_size > 5000
  md = (tmp_path / 'eda.md').read_text()
  assert '8x8x1, 10 classes' in md and 'train: 1200, val: 300, test: 297' in md


def test_channel_stats_in_chunks_equal_numpy():
  images = np.random.default_rng(0).integers(0, 256, size=(37, 5, 4, 3), dtype=np.uint8)
  mean, std = eda.channel_stats(images, chunk=8)
  x = images.astype(np.float64) / 255.0
  np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-12)
  np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)), rtol=1e-10)


def test_bad_sample_split_fails(tmp_path):
  config = digits_config()
  config.eda.split = 'val'  # No val split without val_size.
  with pytest.raises(ValueError, match="config.eda.split = 'val'"):
    eda.run(config, str(tmp_path))
