"""CSV, markdown and JSON helpers shared by every report, so each table is written one way."""

import csv
import json
import math
import os

import numpy as np


def write_csv(path: str, rows: list[dict], columns=None, fmt=None) -> str:
  """`rows` (dicts) as a CSV: `columns` (default the union of the rows' keys, in first-seen order)
  as the header, each value passed through `fmt` (default: as the csv module writes it)."""
  if columns is None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(columns))
    writer.writeheader()
    for row in rows:
      writer.writerow({k: v if fmt is None else fmt(v) for k, v in row.items()})
  return path


def markdown(header, rows) -> str:
  """A markdown table: `header` cells, then one line per row of (already formatted) cells."""
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def fmt_float(v, spec: str = '.4f') -> str:
  """A number as table text ('nan' for None or a non-finite value)."""
  if v is None or not math.isfinite(float(v)):
    return 'nan'
  return format(float(v), spec)


def short_float(v):
  """Floats to 6 significant digits (CSV cells of measurements); anything else unchanged."""
  return f'{v:.6g}' if isinstance(v, float) else v


def jsonable(x, null_nonfinite: bool = False):
  """Nested dicts / lists / tuples / numpy values as plain JSON data (keys become strings).

  With null_nonfinite, NaN and infinities become None (strict JSON); otherwise they stay floats.
  """
  if isinstance(x, dict):
    return {str(k): jsonable(v, null_nonfinite) for k, v in x.items()}
  if isinstance(x, np.ndarray):
    return jsonable(x.tolist(), null_nonfinite)
  if isinstance(x, (list, tuple)):
    return [jsonable(v, null_nonfinite) for v in x]
  if isinstance(x, np.generic):
    x = x.item()
  if null_nonfinite and isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def write_json(path: str, data, sort_keys: bool = True) -> str:
  """`data` as indented JSON at `path` (folders created); numpy scalars become floats."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(data, f, indent=2, sort_keys=sort_keys, default=float)
  return path
