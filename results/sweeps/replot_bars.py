"""Redraws every results/sweeps/*/best_vs_<key>.png from its committed table.csv.

Run:  .venv/bin/python results/sweeps/replot_bars.py
The figures are what `python -m jaxland.report` draws (jaxland.sweep.report.plot_strength), here
from the tables alone, so a change to the drawing (the bars' axis now starts at 0) reaches the
committed figures without the run directories (runs/sweeps/, not committed).
"""

import csv
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from jaxland.sweep import report  # noqa: E402


def _number(text: str):
  try:
    return float(text)
  except ValueError:
    return text


def rows_of(table_csv: str, key: str) -> list[dict]:
  with open(table_csv, newline='') as f:
    return [
      {
        'name': r['name'],
        key: _number(r[key]),
        'best_test_accuracy': float(r['best_test_accuracy'])
        if r['best_test_accuracy'] not in ('', '-')
        else None,
      }
      for r in csv.DictReader(f)
    ]


def main():
  for path in sorted(glob.glob(os.path.join(HERE, '*', 'best_vs_*.png'))):
    folder = os.path.dirname(path)
    key = os.path.basename(path)[len('best_vs_') : -len('.png')]
    with open(os.path.join(folder, 'table.md')) as f:
      title = f.readline().removeprefix('# ').strip()
    report.plot_strength(rows_of(os.path.join(folder, 'table.csv'), key), key, path, title)
    print(f'[replot] {os.path.relpath(path, HERE)}', flush=True)


if __name__ == '__main__':
  main()
