"""Matplotlib figures: curves coloured by a value, annotated heat maps, bars, images.

Every figure jaxland draws goes through these helpers, on the Agg backend (no display needed);
`save` writes a PNG and closes the figure. matplotlib is imported at the first figure, not with
this module: training imports it through the tasks that draw, and it would add 0.7 s to every
run's start-up.
"""

import functools
import math
import os
import textwrap

import numpy as np

DPI = 110


@functools.cache
def pyplot():
  """matplotlib.pyplot on the Agg backend, imported once, when a figure is first drawn."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  return plt


def figure(nrows: int = 1, ncols: int = 1, size=(5.0, 3.6)):
  """(fig, 2-D array of axes) with `size` per panel."""
  figsize = (size[0] * ncols, size[1] * nrows)
  fig, axes = pyplot().subplots(nrows, ncols, figsize=figsize, squeeze=False)
  return fig, axes


def save(fig, path: str) -> str:
  """Writes `fig` to `path` (folders created) and closes it; returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=DPI)
  pyplot().close(fig)
  return path


def set_title(ax, title: str) -> None:
  """A panel title, wrapped to the panel's width (long sweep names otherwise run off)."""
  width = max(20, int(ax.get_position().width * ax.figure.get_figwidth() * 11))
  ax.set_title(textwrap.fill(title, width) if title else '')


def log_ticks(ax, values, axis: str = 'x') -> None:
  """A log axis ticked and labelled at `values` only (e.g. batch sizes 32, 128, 512): the minor
  labels matplotlib adds to a log axis spanning less than a decade or two overlap each other."""
  axis_ = ax.xaxis if axis == 'x' else ax.yaxis
  (ax.set_xscale if axis == 'x' else ax.set_yscale)('log')
  from matplotlib import ticker

  axis_.set_major_locator(ticker.FixedLocator(list(values)))
  axis_.set_major_formatter(ticker.FixedFormatter([label(v) for v in values]))
  axis_.set_minor_formatter(ticker.NullFormatter())


def sort_values(values) -> list:
  """Distinct values in natural order (numbers numerically, tuples by length then items)."""
  distinct = []
  for v in values:
    if v not in distinct:
      distinct.append(v)
  try:
    return sorted(distinct, key=lambda v: (len(v), v) if isinstance(v, (list, tuple)) else v)
  except TypeError:
    return sorted(distinct, key=str)


def label(v) -> str:
  """A compact label: 0.05, 256-256, relu."""
  if isinstance(v, float):
    return f'{v:g}'
  if isinstance(v, (list, tuple)):
    return '-'.join(label(x) for x in v) or 'none'
  return str(v)


def colour_map(values, cmap: str = 'viridis') -> dict:
  """{value: colour}, evenly spread over `cmap` in sort_values order."""
  ordered = sort_values(values)
  colours = pyplot().get_cmap(cmap)(np.linspace(0.05, 0.9, max(len(ordered), 1)))
  return {label(v): colours[i] for i, v in enumerate(ordered)}


def curves(
  ax,
  lines,
  colours: dict,
  title: str = '',
  xlabel: str = '',
  ylabel: str = '',
  legend_title: str = '',
  logy: bool = False,
) -> None:
  """Draws (value, x, y) lines coloured by value; one legend entry per value."""
  seen = set()
  for value, x, y in lines:
    key = label(value)
    ax.plot(x, y, color=colours[key], lw=1.2, alpha=0.85, label=None if key in seen else key)
    seen.add(key)
  ax.set(xlabel=xlabel, ylabel=ylabel)
  set_title(ax, title)
  if logy:
    ax.set_yscale('log')
  ax.grid(alpha=0.3)
  if seen:
    handles, labels = ax.get_legend_handles_labels()
    order = [labels.index(k) for k in colours if k in labels]
    ax.legend(
      [handles[i] for i in order],
      [labels[i] for i in order],
      title=legend_title,
      fontsize=7,
      title_fontsize=8,
    )


def heatmap(
  ax,
  matrix,
  row_labels,
  col_labels,
  title: str = '',
  xlabel: str = '',
  ylabel: str = '',
  fmt: str = '{:.3f}',
  cmap: str = 'viridis',
) -> None:
  """An annotated heat map of `matrix` [rows, cols] (fmt '' for none); NaN cells stay blank."""
  matrix = np.asarray(matrix, dtype=float)
  masked = np.ma.masked_invalid(matrix)
  image = ax.imshow(masked, cmap=cmap, aspect='auto')
  ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  ax.set_xticks(range(len(col_labels)), [label(c) for c in col_labels])
  ax.set_yticks(range(len(row_labels)), [label(r) for r in row_labels])
  ax.set(xlabel=xlabel, ylabel=ylabel)
  set_title(ax, title)
  finite = matrix[np.isfinite(matrix)]
  middle = (finite.min() + finite.max()) / 2 if finite.size else 0
  for i in range(matrix.shape[0] if fmt else 0):
    for j in range(matrix.shape[1]):
      if math.isfinite(matrix[i, j]):
        colour = 'black' if matrix[i, j] > middle else 'white'
        ax.text(j, i, fmt.format(matrix[i, j]), ha='center', va='center', fontsize=8, color=colour)


def bars(
  ax,
  labels,
  values,
  title: str = '',
  xlabel: str = '',
  ylabel: str = '',
  fmt: str = '{:.3f}',
  colour='tab:blue',
) -> None:
  """A bar per (label, value), the value written on top; NaN bars are left out. The value axis
  starts at 0 (a bar's length is its value: a cut axis would exaggerate the gaps)."""
  values = np.asarray(values, dtype=float)
  x = np.arange(len(labels))
  ax.bar(x, np.nan_to_num(values), color=colour)
  ax.set_xticks(x, [label(v) for v in labels])
  for xi, v in zip(x, values, strict=True):
    if math.isfinite(v):
      ax.text(xi, v, fmt.format(v), ha='center', va='bottom', fontsize=8)
  finite = values[np.isfinite(values)]
  if finite.size and finite.max() > 0:
    ax.set_ylim(0.0, finite.max() * 1.08)  # Room for the value labels.
  ax.set(xlabel=xlabel, ylabel=ylabel)
  set_title(ax, title)
  ax.grid(axis='y', alpha=0.3)


def image_grid(images, titles, ncols: int = 8, size: float = 1.6, title: str = ''):
  """A figure of uint8 images [N, H, W, C] with one title each (grey for one channel)."""
  n = len(images)
  nrows = max(1, math.ceil(n / ncols))
  fig, axes = figure(nrows, ncols, size=(size, size * 1.1))
  for i, ax in enumerate(axes.flat):
    ax.axis('off')
    if i < n:
      image = np.asarray(images[i])
      grey = image.shape[-1] == 1
      ax.imshow(image[..., 0] if grey else image, cmap='gray' if grey else None)
      ax.set_title(titles[i], fontsize=8)
  if title:
    fig.suptitle(title)
  return fig
