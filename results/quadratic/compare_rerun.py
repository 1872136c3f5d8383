"""Seed 0 as committed in an earlier commit against the working tree's rerun of the same commands.

Run (from the repository root, after run_all.py rewrote results/quadratic/<name>/):
  python3 results/quadratic/compare_rerun.py [COMMIT]     (default b82ac8d, the first session)
Writes results/quadratic/seeds/seed0_rerun_vs_<COMMIT>.json: a few values of each model's
train_summary.json and landscape/summary.json at COMMIT (git show) and now, copied as they are.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = ('final_test_accuracy', 'final_test_loss', 'final_val_loss', 'best_epoch')


def at(commit, path):
  text = subprocess.run(
    ['git', 'show', f'{commit}:{path}'], cwd=ROOT, capture_output=True, text=True, check=True
  ).stdout
  return json.loads(text)


def now(path):
  with open(os.path.join(ROOT, path)) as f:
    return json.load(f)


def main(commit='b82ac8d'):
  out = {
    'command': f'python3 results/quadratic/compare_rerun.py {commit}',
    'old': f'commit {commit}, seed 0',
    'new': 'the working tree (this rerun), seed 0, same commands',
    'values': {},
  }
  for name in ('mlp', 'mlp_gelu', 'cnn'):
    train, land = (
      f'results/quadratic/{name}/train_summary.json',
      f'results/quadratic/{name}/landscape/summary.json',
    )
    o, n = at(commit, train), now(train)
    values = {k: {'old': o.get(k), 'new': n.get(k)} for k in KEYS}
    o, n = at(commit, land), now(land)
    values['top eigenvalue, final'] = {
      'old': o['lines']['top_eigenvalue'],
      'new': n['lines']['top_eigenvalue'],
    }
    if 'dynamics' in o:
      first = str(min(int(s) for s in o['dynamics']['top_eigenvalue_by_step']))
      values[f'top eigenvalue, step {first}'] = {
        'old': o['dynamics']['top_eigenvalue_by_step'][first],
        'new': n['dynamics']['top_eigenvalue_by_step'][first],
      }
    out['values'][name] = values
  path = os.path.join(ROOT, 'results', 'quadratic', 'seeds', f'seed0_rerun_vs_{commit}.json')
  with open(path, 'w') as f:
    json.dump(out, f, indent=2)
  print(json.dumps(out, indent=2))


if __name__ == '__main__':
  main(*sys.argv[1:])
