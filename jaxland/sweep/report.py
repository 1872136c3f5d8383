"""Tables and figures of sweeps: one row per point, best per group, heat maps, learning curves.

    python -m jaxland.report DIR [DIR ...] [--out=DIR/report] [--heatmap=rows,cols] ...

reads each sweep directory (sweep.json, and each run's status.json and metrics.jsonl) and writes
table.csv, table.md and best_per_group.csv, then seed 003's figures: learning curves coloured by
a hyperparameter, heat maps of the best test accuracy over two keys, and best accuracy against a
regularisation strength. Several directories make one table with a `sweep` column. When `seed`
is swept, over_seeds.csv and a table of mean and std over seeds come first.
"""

import functools
import math
import os
import sys

from absl import app, flags

from jaxland.cli import quiet_logs
from jaxland.output import plots, tables
from jaxland.output.metrics import read_jsonl
from jaxland.rundir import workdir as workdir_lib
from jaxland.sweep import run as sweep_run
from jaxland.sweep.space import TAG

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
    'wall_s': sum(r.get('epoch_time', 0.0) for r in epochs) if epochs else None,
    'curves': epochs,
  }


def _finite(v) -> bool:
  return isinstance(v, (int, float)) and math.isfinite(v)


def collect(sweep_dir: str) -> tuple[list[dict], list[str], dict]:
  """(rows, hyperparameter keys, sweep record) of one sweep directory."""
  record = sweep_run.read_sweep(sweep_dir)
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
  return sorted(
    rows,
    key=lambda r: (r['best_test_accuracy'] is None, -(r['best_test_accuracy'] or 0.0), r['name']),
  )


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


def over_seeds(rows: list[dict], keys, seed_key: str = 'seed') -> list[dict]:
  """Rows that differ only in `seed_key` merged into one: n, mean and sample std (ddof 1) of the
  best test accuracy and mean final train loss, best mean first. Runs without a result count
  only in n_runs."""
  others = [k for k in keys if k != seed_key]
  groups = {}
  for row in rows:
    group_key = (row.get('sweep'), *(plots.label(row.get(k)) for k in others))
    groups.setdefault(group_key, []).append(row)
  merged = []
  for members in groups.values():
    accs = [r['best_test_accuracy'] for r in members if r['best_test_accuracy'] is not None]
    losses = [r['final_train_loss'] for r in members if _finite(r['final_train_loss'])]
    mean = sum(accs) / len(accs) if accs else None
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else None
    merged.append(
      {
        **{k: members[0].get(k) for k in ('sweep', *others)},
        'n_runs': len(members),
        'n_seeds': len(accs),
        'mean_best_test_accuracy': mean,
        'std_best_test_accuracy': std,
        'mean_final_train_loss': sum(losses) / len(losses) if losses else None,
      }
    )
  return sorted(merged, key=lambda r: -(r['mean_best_test_accuracy'] or -1.0))


SEED_COLUMNS = (
  'n_runs',
  'n_seeds',
  'mean_best_test_accuracy',
  'std_best_test_accuracy',
  'mean_final_train_loss',
)


def short_names(keys) -> dict:
  """{key: column name}: the last dotted component ('learning_rate'), the full key on a clash."""
  short = {k: k.removeprefix(TAG).rsplit('.', 1)[-1] for k in keys}
  clashes = {v for v in short.values() if list(short.values()).count(v) > 1}
  return {k: (k.removeprefix(TAG) if v in clashes else v) for k, v in short.items()}


def column_name(key: str, names: dict | None = None) -> str:
  """The column name of `key` under `names` (from short_names), else the key less 'tag.'."""
  return (names or {}).get(key, key.removeprefix(TAG))


def cell(row: dict, column: str) -> str:
  """A table cell: results with 4 decimals, hyperparameters as in point names, '-' if missing."""
  value = row.get(column)
  if value is None:
    return '-'
  if isinstance(value, float) and (column in RESULT_COLUMNS or column in SEED_COLUMNS):
    return f'{value:.4f}'
  return plots.label(value)


def table_columns(keys, multi: bool) -> list[str]:
  return (['sweep'] if multi else []) + ['name', *keys, *RESULT_COLUMNS]


def write_csv(rows: list[dict], columns, path: str, names=None) -> None:
  header = [column_name(c, names) for c in columns]
  cells = [dict(zip(header, (cell(row, c) for c in columns), strict=True)) for row in rows]
  tables.write_csv(path, cells, header)


def markdown_table(rows: list[dict], columns, names=None) -> str:
  header = [column_name(c, names) for c in columns]
  return tables.markdown(header, [[cell(row, c) for c in columns] for row in rows])


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


def plot_heatmap(rows, row_key, col_key, path, title='', names=None) -> str:
  row_vals, col_vals, matrix = heatmap_matrix(rows, row_key, col_key)
  fig, axes = plots.figure(size=(1.1 * len(col_vals) + 2.5, 0.55 * len(row_vals) + 1.6))
  plots.heatmap(
    axes[0, 0],
    matrix,
    row_vals,
    col_vals,
    title=title or 'best test accuracy',
    xlabel=column_name(col_key, names),
    ylabel=column_name(row_key, names),
  )
  return plots.save(fig, path)


def plot_curves(rows, colour_key, path, title='', names=None) -> str:
  """Train/test loss and accuracy per epoch, one line per run, coloured by `colour_key`."""
  colours = plots.colour_map([r.get(colour_key) for r in rows])
  fig, axes = plots.figure(2, 2, size=(5.2, 3.4))
  for ax, (metric, name) in zip(axes.flat, CURVES, strict=True):
    lines = [
      (
        r.get(colour_key),
        [e['epoch'] for e in r['curves'] if metric in e],
        [e[metric] for e in r['curves'] if metric in e],
      )
      for r in rows
    ]
    plots.curves(
      ax,
      lines,
      colours,
      title=name,
      xlabel='epoch',
      legend_title=column_name(colour_key, names),
      logy=metric.endswith('loss'),
    )
  if title:
    fig.suptitle(title)
  return plots.save(fig, path)


def plot_train_vs_test(rows, colour_key, path, title='', names=None) -> str:
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
    plots.curves(
      ax,
      lines,
      colours,
      title=f'test vs train {name}',
      xlabel=f'train {name}',
      ylabel=f'test {name}',
      legend_title=column_name(colour_key, names),
    )
  if title:
    fig.suptitle(title)
  return plots.save(fig, path)


def plot_strength(rows, key, path, title='', names=None) -> str:
  """Best test accuracy per value of `key` (the best over other keys), as seed 003's bar charts."""
  values = plots.sort_values([r.get(key) for r in rows])
  best = {plots.label(r.get(key)): r['best_test_accuracy'] for r in best_per_group(rows, [key])}
  accs = [best.get(plots.label(v), math.nan) for v in values]
  fig, axes = plots.figure(size=(max(5.0, 0.7 * len(values) + 1.5), 3.6))
  name = column_name(key, names)
  plots.bars(
    axes[0, 0],
    values,
    accs,
    title=title or f'best test accuracy by {name}',
    xlabel=name,
    ylabel='best test accuracy',
  )
  return plots.save(fig, path)


def _slug(key: str, names) -> str:
  return column_name(key, names).replace('.', '_').replace('/', '_')


def load(sweep_dirs) -> tuple[list[dict], list[str], list[dict]]:
  """(rows, hyperparameter keys, sweep records) of one or more sweep directories."""
  rows, keys, records = [], [], []
  for d in sweep_dirs:
    r, k, record = collect(d)
    rows += r
    keys += [x for x in k if x not in keys]
    records.append(record)
  return rows, keys, records


def settings(record: dict, keys, heatmaps=None, group_by=None, colour_by=None, strength=None):
  """The report settings: arguments, else the sweep config's `report` section, else defaults."""
  saved = record.get('report', {})
  heatmaps = [tuple(h) for h in (saved.get('heatmaps', ()) if heatmaps is None else heatmaps)]
  group_by = list(saved.get('group_by', ()) if group_by is None else group_by)
  colour_by = colour_by or saved.get('colour_by') or (keys[-1] if keys else 'sweep')
  strength = saved.get('strength', '') if strength is None else strength
  for key in [k for h in heatmaps for k in h] + group_by + [colour_by, strength]:
    if key and key != 'sweep' and key not in keys:
      raise ValueError(f'report key {key!r} is not swept; choose from {["sweep", *keys]}')
  return heatmaps, group_by, colour_by, strength


def report(sweep_dirs, out: str, heatmaps=None, group_by=None, colour_by=None, strength=None):
  """Writes table.csv, best_per_group.csv, table.md and the figures into `out`; the sorted rows."""
  rows, keys, records = load(sweep_dirs)
  heatmaps, group_by, colour_by, strength = settings(
    records[0], keys, heatmaps, group_by, colour_by, strength
  )
  names = short_names(keys)
  os.makedirs(out, exist_ok=True)
  columns = table_columns(keys, multi=len(records) > 1)
  ordered, best = sort_rows(rows), best_per_group(rows, group_by)
  write_csv(ordered, columns, os.path.join(out, 'table.csv'), names)
  write_csv(best, columns, os.path.join(out, 'best_per_group.csv'), names)
  title = ' + '.join(r.get('name', '') for r in records)
  path = functools.partial(os.path.join, out)
  figures = [
    plot_curves(rows, colour_by, path('curves.png'), title, names),
    plot_train_vs_test(rows, colour_by, path('train_vs_test.png'), title, names),
  ]
  for r, c in heatmaps:
    name = f'heatmap_{_slug(r, names)}_x_{_slug(c, names)}.png'
    figures.append(plot_heatmap(rows, r, c, path(name), f'{title}: best test accuracy', names))
  if strength:
    name = f'best_vs_{_slug(strength, names)}.png'
    figures.append(plot_strength(rows, strength, path(name), title, names))
  seeds = None
  if 'seed' in keys:
    seed_columns = (
      (['sweep'] if len(records) > 1 else [])
      + [k for k in keys if k != 'seed']
      + list(SEED_COLUMNS)
    )
    seeds = (over_seeds(rows, keys), seed_columns)
    write_csv(seeds[0], seed_columns, os.path.join(out, 'over_seeds.csv'), names)
  text = _markdown(
    records, sweep_dirs, rows, (ordered, best, columns), group_by, figures, out, names, seeds
  )
  with open(path('table.md'), 'w') as f:
    f.write(text)
  return ordered


def _markdown(records, dirs, rows, tables, group_by, figures, out, names, seeds=None) -> str:
  ordered, best, columns = tables
  statuses = {}
  for r in rows:
    statuses[r['status']] = statuses.get(r['status'], 0) + 1
  parts = [f'# {" + ".join(r.get("name", "") for r in records)}', '']
  for record, d in zip(records, dirs, strict=True):
    parts.append(f'- `{record.get("command") or d}` ({len(record["points"])} points)')
  parts += [
    f'- report: `python -m jaxland.report {" ".join(dirs)} --out={out}`',
    f'- status: {", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))}; best test '
    'accuracy is the best epoch (seed 003 kept its best model); wall_s sums epoch times.',
    '',
  ]
  if seeds:
    parts += ['## Mean and std over seeds', '', markdown_table(*seeds, names), '']
  parts += [
    '## Best per ' + (', '.join(column_name(k, names) for k in group_by) or 'sweep'),
    '',
    markdown_table(best, columns, names),
    '',
    '## All points',
    '',
    markdown_table(ordered, columns, names),
    '',
    '## Figures',
    '',
  ]
  parts += [f'![{os.path.basename(p)}]({os.path.relpath(p, out)})' for p in figures]
  return '\n'.join(parts) + '\n'


def main(argv):
  f = flags.FLAGS
  quiet_logs()
  dirs = argv[1:]
  if not dirs:
    raise SystemExit('usage: python -m jaxland.report SWEEP_DIR [SWEEP_DIR ...] [--out=DIR]')
  heatmaps = [tuple(h.split(',')) for h in f.heatmap] if f.heatmap else None
  out = f.out or os.path.join(dirs[0], 'report')
  rows = report(dirs, out, heatmaps, f.group_by, f.colour_by, f.strength)
  print(f'[report] {len(rows)} runs -> {out}/table.md', flush=True)


def cli():
  """`python -m jaxland.report`: flags, then main."""
  flags.DEFINE_string('out', '', 'Output folder (default: <first dir>/report).')
  flags.DEFINE_multi_string('heatmap', [], 'rows,cols keys of a heat map (repeatable).')
  flags.DEFINE_list('group_by', None, 'Keys whose best row is listed separately.')
  flags.DEFINE_string('colour_by', '', 'Key that colours the learning curves.')
  flags.DEFINE_string('strength', None, 'Key of the best-accuracy-by-strength bar chart.')
  app.run(main, argv=sys.argv)


if __name__ == '__main__':
  cli()
