"""Exploratory data analysis of any dataset jaxland loads (config.task = 'eda'), as seed 003 opens.

    python -m jaxland.main --config=configs/cifar_mlp.py:jpeg75 --config.task=eda --workdir=DIR

writes into DIR: class_counts.csv and class_counts.png (one bar chart per split), samples.png (a
grid of config.eda.num_samples random images of config.eda.split titled with their class names),
channel_stats.csv (per-channel mean and std in [0, 1] units, per split), eda.md and eda.json.
The splits are the ones training sees (val_size, train_subset and test_subset applied).
"""

import os

import numpy as np

from jaxland.data import sources
from jaxland.output import plots, tables

SPLITS = ('train', 'val', 'test')


def splits(dataset) -> dict:
  """{'train', 'val' (when held out), 'test'} -> (images, labels)."""
  return {s: getattr(dataset, s) for s in SPLITS if getattr(dataset, s) is not None}


def class_counts(labels, num_classes: int) -> np.ndarray:
  """Examples per class, int64 [num_classes]."""
  return np.bincount(np.asarray(labels), minlength=num_classes).astype(np.int64)


def channel_stats(images, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and (population) std of uint8 images [N, H, W, C], in [0, 1] units.

  Sums in float64 over chunks of images, so CIFAR-size splits need little memory.
  """
  c = images.shape[-1]
  total, total_sq, count = np.zeros(c), np.zeros(c), 0
  for start in range(0, len(images), chunk):
    x = images[start : start + chunk].reshape(-1, c).astype(np.float64) / 255.0
    total += x.sum(0)
    total_sq += np.square(x).sum(0)
    count += x.shape[0]
  mean = total / count
  return mean, np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))


def sample_indices(num_examples: int, num: int, seed: int) -> np.ndarray:
  """`num` distinct random indices (all of them, shuffled, when num >= num_examples)."""
  rng = np.random.default_rng(seed)
  return rng.permutation(num_examples)[: min(num, num_examples)]


def plot_counts(counts: dict, class_names, path: str, title: str) -> str:
  fig, axes = plots.figure(1, len(counts), size=(max(5.0, 0.55 * len(class_names) + 1), 3.6))
  for ax, (split, c) in zip(axes.flat, counts.items(), strict=True):
    plots.bars(
      ax,
      list(class_names),
      c,
      title=f'{title}: {split} ({int(c.sum())})',
      ylabel='count',
      fmt='{:.0f}',
    )
    ax.set_ylim(0, max(1, c.max()) * 1.12)
    ax.tick_params(axis='x', labelrotation=45)
  return plots.save(fig, path)


def plot_samples(images, labels, class_names, path: str, title: str) -> str:
  titles = [class_names[int(y)] for y in labels]
  return plots.save(plots.image_grid(images, titles, ncols=8, title=title), path)


def run(config, workdir: str) -> dict:
  """The task: loads config.data, writes counts, statistics and figures; returns a summary."""
  dataset = sources.load_dataset(config.data)
  print(f'[jaxland] data: {dataset.name}: {dataset.source}', flush=True)
  os.makedirs(workdir, exist_ok=True)
  parts = splits(dataset)
  if config.eda.split not in parts:
    raise ValueError(
      f'config.eda.split = {config.eda.split!r} is not allowed; this dataset has {list(parts)}'
    )
  counts = {s: class_counts(y, dataset.num_classes) for s, (_, y) in parts.items()}
  stats = {s: channel_stats(x) for s, (x, _) in parts.items()}
  images, labels = parts[config.eda.split]
  idx = np.sort(sample_indices(len(labels), config.eda.num_samples, config.seed))
  figures = [
    plot_counts(
      counts, dataset.class_names, os.path.join(workdir, 'class_counts.png'), dataset.name
    ),
    plot_samples(
      images[idx],
      labels[idx],
      dataset.class_names,
      os.path.join(workdir, 'samples.png'),
      f'{dataset.name}: {config.eda.split}',
    ),
  ]
  _write_tables(workdir, dataset, counts, stats)
  summary = {
    'status': 'done',
    'dataset': dataset.name,
    'source': dataset.source,
    'image_shape': list(dataset.image_shape),
    'class_names': list(dataset.class_names),
    'counts': {s: c.tolist() for s, c in counts.items()},
    'mean': {s: m.tolist() for s, (m, _) in stats.items()},
    'std': {s: d.tolist() for s, (_, d) in stats.items()},
    'samples': idx.tolist(),
    'figures': [os.path.basename(f) for f in figures],
  }
  print(f'[jaxland] eda: {dataset.name} -> {workdir}/eda.md', flush=True)
  return summary


def _write_tables(workdir, dataset, counts, stats) -> None:
  rows = [
    {'class': name, **{s: int(c[i]) for s, c in counts.items()}}
    for i, name in enumerate(dataset.class_names)
  ]
  tables.write_csv(os.path.join(workdir, 'class_counts.csv'), rows, ['class', *counts])
  channels = [f'channel_{c}' for c in range(dataset.image_shape[-1])]
  rows = [
    {'split': split, 'stat': stat, **{c: f'{v:.6f}' for c, v in zip(channels, values, strict=True)}}
    for split, (mean, std) in stats.items()
    for stat, values in (('mean', mean), ('std', std))
  ]
  tables.write_csv(os.path.join(workdir, 'channel_stats.csv'), rows, ['split', 'stat', *channels])
  lines = [
    f'# {dataset.name}',
    '',
    f'{dataset.source}',
    '',
    f'Images {"x".join(map(str, dataset.image_shape))}, {dataset.num_classes} classes. '
    + ', '.join(f'{s}: {int(c.sum())}' for s, c in counts.items()),
    '',
    tables.markdown(
      ['class', *counts],
      [[name, *(int(c[i]) for c in counts.values())] for i, name in enumerate(dataset.class_names)],
    ),
    '',
    tables.markdown(
      ['split', 'per-channel mean', 'per-channel std'],
      [[s, _join(m), _join(d)] for s, (m, d) in stats.items()],
    ),
    '',
    '![class counts](class_counts.png)',
    '',
    '![samples](samples.png)',
    '',
  ]
  with open(os.path.join(workdir, 'eda.md'), 'w') as f:
    f.write('\n'.join(lines))


def _join(values) -> str:
  return ', '.join(f'{v:.4f}' for v in values)
