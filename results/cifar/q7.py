"""Issue 16, q7 (seed 001): one-cycle at the range test's max LR against piecewise-constant and
constant LRs at the same budget, each a population over seeds on the fast network.

Reads every member of questions.py's q7 runs (<runs>/<schedule>/seed=<N>: summary.json,
metrics.jsonl, config.json), copies each member's summary and metrics into
<out>/<schedule>_seed<N>.{summary.json,jsonl}, and writes q7.csv (one row per member: its peak LR,
test accuracy after the mid-run evaluation and at the end, the sum of its epochs' times: a
population's members share its epochs, so that is the whole population's time), q7.json (per
schedule: mean ± std and median over seeds; each schedule's accuracy paired by seed against
one-cycle's; and, when given, the recipe's own runs at the same seeds: airbench's triangle at its
tuned LR) and schedules.png (the LR every logged step and the test accuracy at each evaluation).

Run:  .venv/bin/python results/cifar/q7.py [--runs=runs/cifar/jpeg75_cpu/q7]
        [--out=results/cifar/q7] [--recipe=results/fast/ablation/recipe/results.json]
        ... q7.py --render   (q7.csv/json and the figure again from the copies in --out)
"""

import argparse
import glob
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from q6 import spread  # noqa: E402  (one owner of the seeds' n / mean / std / median)

SCHEDULES = ('onecycle', 'piecewise', 'constant')  # q7's runs; the others pair with one-cycle.
MEMBER = re.compile(r'seed=(\d+)$')
COPY = re.compile(r'(\w+)_seed(\d+)$')  # A copy's name in --out: <schedule>_seed<N>.


def collect(runs: str, out: str) -> None:
  """Copy each finished member's summary and metrics (a member without a summary is skipped)."""
  os.makedirs(out, exist_ok=True)
  for schedule in SCHEDULES:
    for member in sorted(glob.glob(os.path.join(runs, schedule, 'seed=*'))):
      match = MEMBER.search(member)
      summary = os.path.join(member, 'summary.json')
      if not match or not os.path.exists(summary):
        continue
      stem = os.path.join(out, f'{schedule}_seed{match.group(1)}')
      shutil.copyfile(summary, stem + '.summary.json')
      shutil.copyfile(os.path.join(member, 'metrics.jsonl'), stem + '.jsonl')


def read_member(stem: str) -> tuple[dict, list[dict]]:
  from jaxland.output import metrics

  with open(stem + '.summary.json') as f:
    return json.load(f), metrics.read_jsonl(stem + '.jsonl')


def row(name: str, summary: dict, records: list[dict]) -> dict:
  """One member's row of q7.csv from its copies' name, summary and metrics."""
  schedule, seed = COPY.match(name).groups()
  lrs = [r['optim/learning_rate'] for r in records if 'optim/learning_rate' in r]
  evals = [(r['epoch'], r['test/accuracy']) for r in records if 'test/accuracy' in r]
  return {
    'schedule': schedule,
    'seed': int(seed),
    'status': summary['status'],
    'peak_logged_lr': max(lrs) if lrs else None,
    'first_eval_epoch': evals[0][0] if evals else None,
    'first_eval_test_accuracy': evals[0][1] if evals else None,
    'final_test_accuracy': summary.get('final_test_accuracy'),
    'epoch_seconds': sum(r['epoch_time'] for r in records if 'epoch_time' in r) or None,
  }


def paired(values: dict, baseline: dict, unit: str = 'points') -> dict:
  """{seed: value} minus the baseline's at each common seed, and their spread: accuracies in
  points (x 100), anything else (unit='') as it is."""
  seeds = sorted(set(values) & set(baseline))
  scale = 100 if unit == 'points' else 1
  diffs = {s: scale * (values[s] - baseline[s]) for s in seeds}
  key = unit or 'difference'
  return {f'per_seed_{key}': diffs, key: spread(diffs.values())}


def recipe_accuracy(path: str) -> dict:
  """{seed: final test accuracy} and the hardware of a results/fast/run.py results.json."""
  with open(path) as f:
    result = json.load(f)
  rows = result['rows']
  accuracy = {r['seed']: r['summary']['final_test_accuracy'] for r in rows}
  return {'file': os.path.relpath(path, ROOT), 'hardware': result['hardware'], 'accuracy': accuracy}


def render(out: str, recipe: str = '') -> dict:
  """q7.csv, q7.json and schedules.png from the copies in `out`; returns q7.json's dict."""
  from jaxland.output import plots, tables

  stems = [p[: -len('.summary.json')] for p in glob.glob(os.path.join(out, '*.summary.json'))]
  members = {os.path.basename(stem): read_member(stem) for stem in stems}  # Each read once.
  rows = sorted(
    (row(name, *member) for name, member in members.items()),
    key=lambda r: (SCHEDULES.index(r['schedule']), r['seed']),
  )
  tables.write_csv(os.path.join(out, 'q7.csv'), rows, list(rows[0]))
  accuracy = {s: {r['seed']: r['final_test_accuracy'] for r in rows if r['schedule'] == s}
              for s in dict.fromkeys(r['schedule'] for r in rows)}  # fmt: skip
  by_schedule = {
    s: {
      'seeds': sorted(acc),
      'final_test_accuracy': spread(acc.values()),
      'epoch_seconds': spread(r['epoch_seconds'] for r in rows if r['schedule'] == s),
      **({} if s == 'onecycle' or 'onecycle' not in accuracy
         else {'minus_onecycle': paired(acc, accuracy['onecycle'])}),
    }
    for s, acc in accuracy.items()
  }  # fmt: skip
  summary = {'dataset': 'cifar10_jpeg75', 'rows': rows, 'by_schedule': by_schedule}
  if recipe:
    base = recipe_accuracy(recipe)
    summary['recipe'] = base | {'final_test_accuracy': spread(base['accuracy'].values())}
    if 'onecycle' in accuracy:
      summary['recipe']['onecycle_minus_recipe'] = paired(accuracy['onecycle'], base['accuracy'])
  tables.write_json(os.path.join(out, 'q7.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 2, size=(5.5, 4.0))
  colors = dict(zip(SCHEDULES, ('tab:red', 'tab:blue', 'tab:green'), strict=True))
  for r in rows:
    _, records = members[f'{r["schedule"]}_seed{r["seed"]}']
    style = dict(color=colors[r['schedule']], linestyle=('-', '--', ':')[r['seed'] % 3])
    steps = [(x['step'], x['optim/learning_rate']) for x in records if 'optim/learning_rate' in x]
    evals = [(x['epoch'], x['test/accuracy']) for x in records if 'test/accuracy' in x]
    label = f'{r["schedule"]} seed {r["seed"]}'
    axes[0, 0].plot(*zip(*steps, strict=True), label=label, **style)
    axes[0, 1].plot(*zip(*evals, strict=True), marker='o', label=label, **style)
  axes[0, 0].set(xlabel='step', ylabel='learning rate (batch-mean units)')
  axes[0, 1].set(xlabel='epoch', ylabel='test accuracy (TTA at the end)')
  axes[0, 0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'schedules.png'))
  return summary


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--runs', default=os.path.join(ROOT, 'runs', 'cifar', 'jpeg75_cpu', 'q7'))
  parser.add_argument('--out', default=os.path.join(HERE, 'q7'))
  recipe = os.path.join(ROOT, 'results', 'fast', 'ablation', 'recipe', 'results.json')
  parser.add_argument('--recipe', default=recipe, help="the recipe's runs ('' for none)")
  parser.add_argument('--render', action='store_true', help='only re-render from --out')
  args = parser.parse_args()
  if not args.render:
    collect(args.runs, args.out)
  summary = render(args.out, args.recipe)
  for name, s in summary['by_schedule'].items():
    print(name, json.dumps(s))


if __name__ == '__main__':
  main()
