"""What each trick of the fast recipe buys: the ablation folders' test accuracies (each written by
results/fast/run.py --out=<dir>/<arm>), paired by seed against a baseline arm, as ablation.json
and ablation.md in <dir>.

Run:  .venv/bin/python results/fast/ablation.py [--dir=results/fast/ablation]
        [--baseline=results/fast/ablation/recipe/results.json]
An arm is every <dir>/*/results.json other than the baseline's. A paired difference is the arm's
accuracy minus the baseline's at the same seed (the same data order and initialization; on
another machine the runs' float rounding, and so their bits, differ). Reported: per-seed values,
mean ± sample std of the accuracies and of the paired differences, and how many stds of the
differences their mean is from 0 (within one: not distinguishable with these seeds).
"""

import argparse
import glob
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))


def accuracies(path: str) -> dict:
  """{seed: final test accuracy (TTA)} and the hardware line of a run.py results.json."""
  with open(path) as f:
    result = json.load(f)
  rows = result['rows']
  return {
    'file': os.path.relpath(path, os.path.dirname(HERE)),
    'hardware': result['hardware'],
    'variant': rows[0]['variant'],
    'accuracy': {str(r['seed']): r['summary']['final_test_accuracy'] for r in rows},
    'seconds': {str(r['seed']): r['summary']['seconds'] for r in rows},
  }


def spread(values) -> dict:
  values = list(values)
  return {
    'n': len(values),
    'mean': statistics.mean(values) if values else None,
    'std': statistics.stdev(values) if len(values) > 1 else None,
  }


def compare(arm: dict, baseline: dict) -> dict:
  """The arm's accuracies and its paired differences from the baseline on their common seeds."""
  seeds = sorted(set(arm['accuracy']) & set(baseline['accuracy']), key=int)
  diffs = [arm['accuracy'][s] - baseline['accuracy'][s] for s in seeds]
  d = spread(diffs)
  stds_from_zero = abs(d['mean']) / d['std'] if d['std'] else None
  return {
    **arm,
    'accuracy_spread': spread(arm['accuracy'].values()),
    'paired_seeds': seeds,
    'paired_difference': dict(zip(seeds, diffs, strict=True)),
    'difference_spread': d,
    'difference_in_stds': stds_from_zero,
  }


def _pm(s: dict, scale: float = 1.0, spec: str = '.4f') -> str:
  if s['mean'] is None:
    return 'n/a'
  std = 'n/a (1 seed)' if s['std'] is None else format(s['std'] * scale, spec.lstrip('+'))
  return f'{s["mean"] * scale:{spec}} ± {std}'


def table(baseline: dict, arms: dict) -> list[str]:
  lines = [
    '| arm | variant | seeds | test acc (TTA) per seed | mean ± std | paired diff (points) per '
    'seed | mean ± std (points) | \\|mean\\| / std |',
    '|---|---|---|---|---|---|---|---|',
  ]
  base = spread(baseline['accuracy'].values())
  per_seed = ' / '.join(f'{v:.4f}' for v in baseline['accuracy'].values())
  lines.append(
    f'| baseline | {baseline["variant"]} | {",".join(baseline["accuracy"])} | {per_seed} | '
    f'{_pm(base)} | | | |'
  )
  for name, a in arms.items():
    per_seed = ' / '.join(f'{v:.4f}' for v in a['accuracy'].values())
    diffs = ' / '.join(f'{100 * v:+.2f}' for v in a['paired_difference'].values())
    ratio = 'n/a' if a['difference_in_stds'] is None else f'{a["difference_in_stds"]:.1f}'
    lines.append(
      f'| {name} | {a["variant"]} | {",".join(a["accuracy"])} | {per_seed} | '
      f'{_pm(a["accuracy_spread"])} | {diffs} | {_pm(a["difference_spread"], 100, "+.2f")} | '
      f'{ratio} |'
    )
  return lines


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--dir', default=os.path.join(HERE, 'ablation'))
  parser.add_argument('--baseline', default='')
  args = parser.parse_args()
  base_path = args.baseline or os.path.join(args.dir, 'recipe', 'results.json')
  baseline = accuracies(base_path)
  paths = sorted(glob.glob(os.path.join(args.dir, '*', 'results.json')))
  arms = {
    os.path.basename(os.path.dirname(p)): compare(accuracies(p), baseline)
    for p in paths
    if os.path.abspath(p) != os.path.abspath(base_path)
  }
  with open(os.path.join(args.dir, 'ablation.json'), 'w') as f:
    json.dump({'baseline': baseline, 'arms': arms}, f, indent=1)
  lines = table(baseline, arms)
  with open(os.path.join(args.dir, 'ablation.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
