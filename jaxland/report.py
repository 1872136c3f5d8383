"""Tables and figures of sweeps: one row per point, best per group, heat maps, learning curves.

    python -m jaxland.report DIR [DIR ...] [--out=DIR/report] [--heatmap=rows,cols] ...

reads each sweep directory (sweep.json plus the runs' status.json and metrics.jsonl) and writes
table.csv, table.md (sorted by best test accuracy, then the best row per group), and the figures
seed 003 draws: learning curves coloured by a hyperparameter, heat maps of the best test accuracy
over two keys (the best over all other keys in each cell), and best accuracy against a
regularisation strength. Defaults come from the sweep config's `report` section. Several
directories make one table with a `sweep` column (usable as a heat map axis: model x LR).
"""

import csv
import math
import os
import sys

from jaxland import plots
from jaxland import sweep as sweep_lib
from jaxland import workdir as workdir_lib
from jaxland.metrics import read_jsonl

METRIC = 'test/accuracy'
RESULT_COLUMNS = (
  'status',
  'best_test_accuracy',
  'best_epoch',
  'final_train_loss',
  'epochs',
  'wall_s',
)
CURVES = (
  ('train_epoch/loss', 'train loss'),
  ('test/loss', 'test loss'),
  ('train_epoch/accuracy', 'train accuracy'),
  (METRIC, 'test accuracy'),
)


def epoch_records(records: list[dict]) -> list[dict]:
  """One record per epoch (the last written, so a resumed epoch counts once), by epoch."""
  by_epoch = {}
  for r in records:
    if 'epoch' in r:
      by_epoch[int(r['epoch'])] = {**r, 'epoch': int(r['epoch'])}
  return [by_epoch[e] for e in sorted(by_epoch)]


def run_results(run_dir: str) -> dict:
  """status, best test accuracy and its epoch, final train loss, epochs and train wall time."""
  epochs = []
  if os.path.exists(os.path.join(run_dir, 'metrics.jsonl')):
    epochs = epoch_records(read_jsonl(run_dir))
  accs = [(r[METRIC], r['epoch']) for r in epochs if _finite(r.get(METRIC))]
  best = max(accs, key=lambda a: (a[0], -a[1])) if accs else (None, None)
  losses = [r['train_epoch/loss'] for r in epochs if 'train_epoch/loss' in r]
  return {
    'status': workdir_lib.read_status(run_dir)['status'],
    'best_test_accuracy': best[0],
    'best_epoch': best[1],
    'final_train_loss': losses[-1] if losses else None,
    'epochs': len(epochs),
    'wall_s': sum(r.get('epoch_time', 0.0) for r in epochs),
    'curves': epochs,
  }


def _finite(v) -> bool:
  return isinstance(v, (int, float)) and math.isfinite(v)


def collect(sweep_dir: str) -> tuple[list[dict], list[str], dict]:
  """(rows, hyperparameter keys, sweep record) of one sweep directory."""
  record = sweep_lib.read_sweep(sweep_dir)
  rows, keys = [], []
  for point in record['points']:
    params = {**point['overrides'], **point['tags']}
    keys += [k for k in params if k not in keys]
    row = {'sweep': record.get('name', ''), 'name': point['name'], **_tuples(params)}
    row.update(run_results(os.path.join(sweep_dir, point['name'])))
    rows.append(row)
  return rows, keys, record


def _tuples(params: dict) -> dict:
  return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def sort_rows(rows: list[dict]) -> list[dict]:
  """Best test accuracy first; runs without one last, by name."""
  return sorted(rows, key=lambda r: (r['best_test_accuracy'] is None,
                                     -(r['best_test_accuracy'] or 0.0), r['name']))  # fmt: skip


def best_per_group(rows: list[dict], keys) -> list[dict]:
  """The best row for each distinct value of `keys` (all rows: one overall best), in key order."""
  keys = list(keys)
  groups = {}
  for row in sort_rows(rows):
    if row['best_test_accuracy'] is not None:
      groups.setdefault(tuple(plots.label(row.get(k)) for k in keys), row)
  order = {k: plots.sort_values([r.get(k) for r in rows]) for k in keys}
  best = list(groups.values())
  return sorted(best, key=lambda r: [order[k].index(r.get(k)) for k in keys])


def column_name(key: str) -> str:
  return key.removeprefix(sweep_lib.TAG)


def cell(value) -> str:
  """A table cell: 4 decimals for floats, '-' for missing."""
  if value is None:
    return '-'
  if isinstance(value, float):
    return f'{value:.4f}' if abs(value) >= 1e-3 or value == 0 else f'{value:.3g}'
  return plots.label(value)


def table_columns(keys, multi: bool) -> list[str]:
  return (['sweep'] if multi else []) + ['name', *keys, *RESULT_COLUMNS]


def write_csv(rows: list[dict], columns, path: str) -> None:
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow([column_name(c) for c in columns])
    for row in rows:
      writer.writerow([cell(row.get(c)) for c in columns])


def markdown_table(rows: list[dict], columns) -> str:
  lines = [
    '| ' + ' | '.join(column_name(c) for c in columns) + ' |',
    '|' + '---|' * len(columns),
  ]
  lines += ['| ' + ' | '.join(cell(row.get(c)) for c in columns) + ' |' for row in rows]
  return '\n'.join(lines)


def heatmap_matrix(rows: list[dict], row_key: str, col_key: str):
  """(row values, col values, best test accuracy [rows, cols]; NaN where no run finished)."""
  row_vals = plots.sort_values([r.get(row_key) for r in rows])
  col_vals = plots.sort_values([r.get(col_key) for r in rows])
  matrix = [[math.nan] * len(col_vals) for _ in row_vals]
  for r in rows:
    acc = r['best_test_accuracy']
    if acc is not None:
      i, j = row_vals.index(r.get(row_key)), col_vals.index(r.get(col_key))
      matrix[i][j] = acc if math.isnan(matrix[i][j]) else max(matrix[i][j], acc)
  return row_vals, col_vals, matrix


def plot_heatmap(rows, row_key, col_key, path, title='') -> str:
  row_vals, col_vals, matrix = heatmap_matrix(rows, row_key, col_key)
  fig, axes = plots.figure(size=(1.1 * len(col_vals) + 2.5, 0.55 * len(row_vals) + 1.6))
  plots.heatmap(axes[0, 0], matrix, row_vals, col_vals, title=title or 'best test accuracy',
                xlabel=column_name(col_key), ylabel=column_name(row_key))  # fmt: skip
  return plots.save(fig, path)


def plot_curves(rows, colour_key, path, title='') -> str:
  """Train/test loss and accuracy per epoch, one line per run, coloured by `colour_key`."""
  colours = plots.colour_map([r.get(colour_key) for r in rows])
  fig, axes = plots.figure(2, 2, size=(5.2, 3.4))
  for ax, (metric, name) in zip(axes.flat, CURVES, strict=True):
    lines = [
      (r.get(colour_key), [e['epoch'] for e in r['curves'] if metric in e],
       [e[metric] for e in r['curves'] if metric in e])
      for r in rows
    ]  # fmt: skip
    plots.curves(ax, lines, colours, title=name, xlabel='epoch', legend_title=column_name(colour_key),
                 logy=metric.endswith('loss'))  # fmt: skip
  if title:
    fig.suptitle(title)
  return plots.save(fig, path)


def plot_train_vs_test(rows, colour_key, path, title='') -> str:
  """Seed 003's train-vs-test plots: test loss against train loss, epoch by epoch (and accuracy)."""
  colours = plots.colour_map([r.get(colour_key) for r in rows])
  fig, axes = plots.figure(1, 2, size=(5.2, 3.8))
  for ax, (x_key, y_key, name) in zip(
    axes.flat,
    (('train_epoch/loss', 'test/loss', 'loss'), ('train_epoch/accuracy', METRIC, 'accuracy')),
    strict=True,
  ):
    lines = []
    for r in rows:
      pts = [(e[x_key], e[y_key]) for e in r['curves'] if _finite(e.get(x_key)) and y_key in e]
      lines.append((r.get(colour_key), [p[0] for p in pts], [p[1] for p in pts]))
    plots.curves(ax, lines, colours, title=f'test vs train {name}', xlabel=f'train {name}',
                 ylabel=f'test {name}', legend_title=column_name(colour_key))  # fmt: skip
  if title:
    fig.suptitle(title)
  return plots.save(fig, path)


def plot_strength(rows, key, path, title='') -> str:
  """Best test accuracy per value of `key` (the best over other keys), as seed 003's bar charts."""
  values = plots.sort_values([r.get(key) for r in rows])
  best = {plots.label(r.get(key)): r['best_test_accuracy'] for r in best_per_group(rows, [key])}
  accs = [best.get(plots.label(v), math.nan) for v in values]
  fig, axes = plots.figure(size=(max(5.0, 0.7 * len(values) + 1.5), 3.6))
  plots.bars(axes[0, 0], values, accs, title=title or f'best test accuracy by {column_name(key)}',
             xlabel=column_name(key), ylabel='best test accuracy')  # fmt: skip
  return plots.save(fig, path)


def _slug(key: str) -> str:
  return column_name(key).replace('.', '_').replace('/', '_')


def report(sweep_dirs, out: str, heatmaps=None, group_by=None, colour_by=None, strength=None):
  """Writes table.csv, table.md and the figures for `sweep_dirs` into `out`; the rows."""
  rows, keys, records = [], [], []
  for d in sweep_dirs:
    r, k, record = collect(d)
    rows += r
    keys += [x for x in k if x not in keys]
    records.append(record)
  settings = records[0].get('report', {})
  heatmaps = [tuple(h) for h in (settings.get('heatmaps', ()) if heatmaps is None else heatmaps)]
  group_by = list(settings.get('group_by', ()) if group_by is None else group_by)
  colour_by = colour_by or settings.get('colour_by') or (keys[-1] if keys else 'sweep')
  strength = settings.get('strength', '') if strength is None else strength
  multi = len(records) > 1
  for key in [k for h in heatmaps for k in h] + group_by + [colour_by] + [strength]:
    if key and key != 'sweep' and key not in keys:
      raise ValueError(f'report key {key!r} is not swept; choose from {["sweep", *keys]}')
  os.makedirs(out, exist_ok=True)
  columns = table_columns(keys, multi)
  ordered = sort_rows(rows)
  write_csv(ordered, columns, os.path.join(out, 'table.csv'))
  best = best_per_group(rows, group_by)
  write_csv(best, columns, os.path.join(out, 'best_per_group.csv'))
  title = ' + '.join(r.get('name', '') for r in records)
  figures = [plot_curves(rows, colour_by, os.path.join(out, 'curves.png'), title)]
  figures.append(plot_train_vs_test(rows, colour_by, os.path.join(out, 'train_vs_test.png'), title))
  for row_key, col_key in heatmaps:
    path = os.path.join(out, f'heatmap_{_slug(row_key)}_x_{_slug(col_key)}.png')
    figures.append(plot_heatmap(rows, row_key, col_key, path, f'{title}: best test accuracy'))
  if strength:
    figures.append(plot_strength(rows, strength, os.path.join(out, f'best_vs_{_slug(strength)}.png'),
                                 title))  # fmt: skip
  md = _markdown(records, sweep_dirs, rows, ordered, best, columns, group_by, figures, out)
  with open(os.path.join(out, 'table.md'), 'w') as f:
    f.write(md)
  return ordered


def _markdown(records, dirs, rows, ordered, best, columns, group_by, figures, out) -> str:
  statuses = {}
  for r in rows:
    statuses[r['status']] = statuses.get(r['status'], 0) + 1
  parts = [f'# {" + ".join(r.get("name", "") for r in records)}', '']
  for record, d in zip(records, dirs, strict=True):
    parts.append(f'- `{record.get("command") or d}` ({len(record["points"])} points)')
  parts += [
    f'- report: `python -m jaxland.report {" ".join(dirs)}`',
    f'- status: {", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))}; best test '
    'accuracy is the best epoch (seed 003 kept its best model); wall_s sums epoch times.',
    '',
    '## Best per ' + (', '.join(column_name(k) for k in group_by) or 'sweep'),
    '',
    markdown_table(best, columns),
    '',
    '## All points',
    '',
    markdown_table(ordered, columns),
    '',
    '## Figures',
    '',
  ]
  parts += [f'![{os.path.basename(p)}]({os.path.relpath(p, out)})' for p in figures]
  return '\n'.join(parts) + '\n'


def main(argv):
  from absl import flags

  f = flags.FLAGS
  dirs = argv[1:]
  if not dirs:
    raise SystemExit('usage: python -m jaxland.report SWEEP_DIR [SWEEP_DIR ...] [--out=DIR]')
  heatmaps = [tuple(h.split(',')) for h in f.heatmap] if f.heatmap else None
  out = f.out or os.path.join(dirs[0], 'report')
  rows = report(dirs, out, heatmaps, f.group_by, f.colour_by, f.strength)
  print(f'[report] {len(rows)} runs -> {out}/table.md', flush=True)


if __name__ == '__main__':
  from absl import app, flags

  flags.DEFINE_string('out', '', 'Output folder (default: <first dir>/report).')
  flags.DEFINE_multi_string('heatmap', [], 'rows,cols keys of a heat map (repeatable).')
  flags.DEFINE_list('group_by', None, 'Keys whose best row is listed separately.')
  flags.DEFINE_string('colour_by', '', 'Key that colours the learning curves.')
  flags.DEFINE_string('strength', None, 'Key of the best-accuracy-by-strength bar chart.')
  app.run(main, argv=sys.argv)
