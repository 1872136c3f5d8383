"""The committed top20.csv against a rerun's spectra (top-20 eigenvalues per model and step).

Run (after `ROOT=runs/spectrum_results OUT=/tmp/x bash results/spectrum/run_all.sh`, which leaves
results/spectrum alone):
  python3 results/spectrum/rerun_check.py [--root=runs/spectrum_results]
Writes results/spectrum/rerun_check.csv (model, step, rank, committed, rerun, relative difference)
and prints the largest relative difference per model and step.
"""

import argparse
import csv
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--root', default='runs/spectrum_results')
  args = parser.parse_args()
  out, worst = [], {}
  with open(os.path.join(HERE, 'top20.csv'), newline='') as f:
    for r in csv.DictReader(f):
      path = os.path.join(args.root, f'{r["model"]}_spectra', 'spectrum', r['step'], 'summary.json')
      if not os.path.exists(path):
        continue
      with open(path) as g:
        new = json.load(g)['top_eigenvalues'][int(r['rank']) - 1]
      old = float(r['eigenvalue'])
      rel = abs(new - old) / abs(old)
      out.append([r['model'], r['step'], r['rank'], r['eigenvalue'], f'{new:.6g}', f'{rel:.2g}'])
      key = f'{r["model"]} step {r["step"]}'
      worst[key] = max(worst.get(key, 0.0), rel)
  with open(os.path.join(HERE, 'rerun_check.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['model', 'step', 'rank', 'committed', 'rerun', 'relative_difference'])
    writer.writerows(out)
  for key, rel in worst.items():
    print(f'{key}: largest relative difference {rel:.2g}')


if __name__ == '__main__':
  main()
