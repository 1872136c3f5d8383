"""Outputs of range tests (a range_test.RangeResult each): CSV rows, TensorBoard scalars, JSON,
and the figures (one test with its suggestions, several overlaid, a grid of short runs), with
loss and accuracy against the swept value (log axis for log spacing).
"""

import os

import numpy as np

from jaxland.output import plots, tables
from jaxland.output.metrics import RunWriter

CSV_COLUMNS = ('iteration', 'value', 'loss', 'smooth_loss', 'accuracy', 'val_loss', 'val_accuracy')


def rows(result) -> list[dict]:
  """One dict per iteration (val_* empty where the subset was not evaluated)."""
  r = result
  val = {int(i): (vl, va) for i, vl, va in zip(*_eval_arrays(r), strict=True)}
  out = []
  for i in range(len(r.values)):
    vl, va = val.get(i, ('', ''))
    cells = (i, r.values[i], r.loss[i], r.smooth_loss[i], r.accuracy[i], vl, va)
    out.append(dict(zip(CSV_COLUMNS, cells, strict=True)))
  return out


def _eval_arrays(result):
  return result.eval_iterations, result.val_loss, result.val_accuracy


def write_csv(result, path: str) -> None:
  tables.write_csv(path, rows(result), CSV_COLUMNS)


def write_tensorboard(writer: RunWriter, name: str, result) -> None:
  """TensorBoard + JSONL scalars lr_range/<name>/<CSV column> with the iteration as step."""
  for row in rows(result):
    scalars = {f'lr_range/{name}/{k}': v for k, v in row.items() if k != 'iteration' and v != ''}
    writer.write_scalars(row['iteration'], scalars)


def write_outputs(directory: str, name: str, result, analysis: dict) -> dict:
  """<name>.csv, <name>.json (the analysis) and <name>.png in `directory`; returns the paths."""
  paths = {ext: os.path.join(directory, f'{name}.{ext}') for ext in ('csv', 'json', 'png')}
  write_csv(result, paths['csv'])
  tables.write_json(paths['json'], analysis, sort_keys=False)
  plot_test(result, analysis, paths['png'], title=name)
  return paths


MARKERS = {
  'steepest': ('tab:red', ':'),
  'minimum_10': ('tab:purple', ':'),
  'minimum_loss': ('tab:purple', ':'),
  'valley': ('tab:green', ':'),
  'robust': ('black', '--'),
  'peak_accuracy': ('tab:orange', '-.'),
  'collapse': ('tab:brown', '-.'),
}


def _axes(result, n=2, title=''):
  fig, axes = plots.figure(1, n, size=(6, 4.2))
  axes = axes[0]
  for ax in axes:
    ax.set_xscale('log' if result.spacing == 'log' else 'linear')
    ax.set_xlabel(result.param)
    ax.grid(alpha=0.3)
  fig.suptitle(title)
  return fig, axes


def _loss_ylim(ax, smooth):
  """Clip the y axis to the interesting part: up to a bit above the first smoothed loss."""
  finite = smooth[np.isfinite(smooth)]
  if finite.size:
    ax.set_ylim(0.9 * finite.min(), max(finite[: max(1, finite.size // 10)].max() * 1.3, 1e-8))


def plot_test(result, analysis: dict, path: str, title: str = '') -> None:
  """Loss (raw + smoothed) and accuracy (train batches + held-out subset) vs value, marked."""
  fig, (ax_l, ax_a) = _axes(result, title=title)
  ax_l.plot(result.values, result.loss, color='tab:blue', alpha=0.25, lw=0.8, label='loss')
  ax_l.plot(result.values, result.smooth_loss, color='tab:blue', label='smoothed loss')
  _loss_ylim(ax_l, result.smooth_loss)
  ax_l.set_ylabel('train loss')
  ax_a.plot(
    result.values, result.accuracy, color='tab:gray', alpha=0.3, lw=0.8, label='train batch'
  )
  if len(result.val_accuracy):
    ax_a.plot(
      result.eval_values, result.val_accuracy, 'o-', color='tab:orange', ms=3, label='held out'
    )
  ax_a.set_ylabel('accuracy')
  for name, value in analysis['suggestions'].items():
    if value is not None and name in MARKERS:
      color, style = MARKERS[name]
      for ax in (ax_l, ax_a):
        ax.axvline(value, color=color, ls=style, lw=1, label=f'{name} {value:.3g}')
  ax_l.legend(fontsize=7)
  ax_a.legend(fontsize=7, title=f'shape: {analysis["shape"]}', title_fontsize=8)
  plots.save(fig, path)


def plot_overlay(results: dict, path: str, title: str = '') -> None:
  """Several tests of one parameter: smoothed loss and held-out accuracy, one colour each."""
  first = next(iter(results.values()))
  fig, (ax_l, ax_a) = _axes(first, title=f'range tests by {title}' if title else '')
  smooth_all = []
  for label, r in results.items():
    (line,) = ax_l.plot(r.values, r.smooth_loss, label=label)
    smooth_all.append(r.smooth_loss)
    if len(r.val_accuracy):
      ax_a.plot(r.eval_values, r.val_accuracy, 'o-', ms=2, color=line.get_color(), label=label)
  _loss_ylim(ax_l, np.concatenate(smooth_all))
  ax_l.set_ylabel('smoothed train loss')
  ax_a.set_ylabel('held-out accuracy')
  ax_l.legend(fontsize=7)
  plots.save(fig, path)


def plot_grid(results: dict, path: str, title: str = '') -> None:
  """Short runs (e.g. one per momentum): smoothed loss and held-out accuracy vs iteration."""
  fig, axes = plots.figure(1, 2, size=(6, 4.2))
  ax_l, ax_a = axes[0]
  for label, r in results.items():
    (line,) = ax_l.plot(np.arange(len(r.smooth_loss)), r.smooth_loss, label=label)
    if len(r.val_accuracy):
      ax_a.plot(r.eval_iterations, r.val_accuracy, 'o-', ms=2, color=line.get_color(), label=label)
  for ax, ylabel in ((ax_l, 'smoothed train loss'), (ax_a, 'held-out accuracy')):
    ax.set_xlabel('iteration')
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
  ax_l.set_yscale('log')
  ax_l.legend(fontsize=7)
  fig.suptitle(title)
  plots.save(fig, path)
