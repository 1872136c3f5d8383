"""The fast CIFAR-10 trainer's accuracy/time table: configs/cifar_fast.py variants x seeds, each a
whole `python -m jaxland.main` process (timed from outside as well as by the loop's own clock),
then results.json, curves.png (test accuracy against wall time) and table.md beside this file.

Run:  JAXLAND_DATA_DIR=../shared/data .venv/bin/python results/fast/run.py
        [--variants=jpeg75,cpu] [--seeds=0,1,2] [--runs=runs/fast] [--out=DIR] [--smoke]
        [--set=KEY=VALUE ...]
--set: config overrides on top of the variant (an ablation, e.g. --set=train.label_smoothing=0.0);
they join the run folder's name and the variant's label.
--out: where results.json, table.md and curves.png go (default: beside this file; another variant
than the recorded one goes in a folder of its own, e.g. results/fast/cpu_32-128-128_10ep). Rows
already there for other seeds or variants stay (each with its hardware line), so seeds run one
command at a time accumulate.
A run whose workdir already holds a finished run of the same config is read, not rerun (its
process time is then the one recorded before, if any). --smoke: the :smoke variant on synthetic
data into /tmp/jaxland_results_smoke/fast (results/ untouched).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from jaxland.output import metrics, plots  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, 'bench'))
import common  # noqa: E402  (bench/common.py: the instruction set in the hardware line)


def command(variant: str, seed: int, workdir: str, smoke: bool, sets=()) -> list[str]:
  extra = ['--config.data.name=synthetic'] if smoke else []
  extra += [f'--config.{s}' for s in sets]
  return [
    sys.executable, '-m', 'jaxland.main', f'--config=configs/cifar_fast.py:{variant},seed={seed}',
    f'--workdir={workdir}', *extra,
  ]  # fmt: skip


def run_one(variant: str, seed: int, runs: str, smoke: bool, sets=()) -> dict:
  name = '_'.join([variant.replace(',', '_'), *sets])
  workdir = os.path.join(runs, f'{name}_seed{seed}')
  cmd = command(variant, seed, workdir, smoke, sets)
  record = os.path.join(workdir, 'process.json')
  summary_path = os.path.join(workdir, 'summary.json')
  if not _done(summary_path):
    t0, load_start = time.time(), os.getloadavg()
    subprocess.run(cmd, cwd=ROOT, check=True)
    with open(record, 'w') as f:
      json.dump(
        {
          'process_seconds': time.time() - t0,
          'load_average_start': load_start,
          'load_average': os.getloadavg(),
        },
        f,
      )
  with open(summary_path) as f:
    summary = json.load(f)
  process = json.load(open(record)) if os.path.exists(record) else {}
  rows = metrics.read_jsonl(workdir)
  curve = [
    (r['elapsed_time'], r['test/accuracy'])
    for r in rows
    if 'elapsed_time' in r and 'test/accuracy' in r
  ]
  epoch_seconds = [r['epoch_time'] for r in rows if 'epoch_time' in r]
  return {
    'variant': ' '.join([variant, *sets]), 'seed': seed, 'command': ' '.join(['python', *cmd[1:]]),
    'workdir': workdir, 'summary': summary, 'curve': curve, 'epoch_seconds': epoch_seconds,
    **process,
  }  # fmt: skip


def _done(path: str) -> bool:
  try:
    return json.load(open(path))['status'] == 'done'
  except (OSError, ValueError, KeyError):
    return False


def mean_std(values) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return 'n/a'
  if len(values) == 1:
    return f'{values[0]:.4g} (1 seed)'
  return f'{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g} ({len(values)} seeds)'


def _num(value, spec: str = '.0f') -> str:
  return 'n/a' if value is None else format(value, spec)


def table(rows: list) -> list[str]:
  lines = [
    '| variant | seed | test acc (TTA) | run s (loop clock) | compile s | process s | '
    'time to target s | load avg (1 min) at start / end |',
    '|---|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    s, start, end = r['summary'], r.get('load_average_start'), r.get('load_average')
    load = f'{_num(start and start[0], ".2f")} / {_num(end and end[0], ".2f")}'
    cells = (
      r['variant'], r['seed'], _num(s.get('final_test_accuracy'), '.4f'), _num(s['seconds']),
      _num(s['compile_seconds']), _num(r.get('process_seconds')),
      _num(s.get('seconds_to_target')), load,
    )  # fmt: skip
    lines.append('| ' + ' | '.join(str(c) for c in cells) + ' |')
  for variant in dict.fromkeys(r['variant'] for r in rows):
    mine = [r for r in rows if r['variant'] == variant]
    acc = mean_std([r['summary'].get('final_test_accuracy') for r in mine])
    secs = mean_std([r['summary']['seconds'] for r in mine])
    lines.append(f'| **{variant}** | mean | {acc} | {secs} | | | | |')
  return lines


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--variants', default='jpeg75,cpu')
  parser.add_argument('--seeds', default='0,1,2')
  parser.add_argument('--runs', default=os.path.join(ROOT, 'runs', 'fast'))
  parser.add_argument('--out', default=HERE)
  parser.add_argument('--smoke', action='store_true')
  parser.add_argument('--set', action='append', default=[], dest='sets', metavar='KEY=VALUE')
  args = parser.parse_args()
  out = args.out
  os.makedirs(out, exist_ok=True)
  if args.smoke:
    out = os.path.join('/tmp', 'jaxland_results_smoke', 'fast')
    args.runs, args.variants, args.seeds = os.path.join(out, 'runs'), 'smoke', '0'
    os.makedirs(out, exist_ok=True)
  seeds = [int(s) for s in args.seeds.split(',')]
  hardware = (
    f'{os.cpu_count()}-core CPU '
    f'({platform.processor() or platform.machine()}{common.isa()}), {platform.platform()}'
  )
  rows = [run_one(args.variants, seed, args.runs, args.smoke, args.sets) for seed in seeds]
  dataset = 'synthetic' if args.smoke else 'cifar10_jpeg75'
  rows = [r | {'hardware': hardware} for r in rows]
  write(out, merged_rows(os.path.join(out, 'results.json'), rows, dataset), dataset)


def merged_rows(path: str, rows: list, dataset: str) -> list:
  """The rows of an earlier results.json at `path` (on the same dataset) whose (variant, seed)
  was not run now, then the new ones, sorted: seeds run one command at a time accumulate in one
  table. A kept row without its own hardware line takes its file's."""
  try:
    with open(path) as f:
      earlier = json.load(f)
  except FileNotFoundError:
    return rows
  if earlier['dataset'] != dataset:
    return rows
  new = {(r['variant'], r['seed']) for r in rows}
  kept = [
    {'hardware': earlier['hardware']} | r
    for r in earlier['rows']
    if (r['variant'], r['seed']) not in new
  ]
  return sorted(kept + rows, key=lambda r: (r['variant'], r['seed']))


def write(out: str, rows: list, dataset: str) -> None:
  """results.json (its hardware line: every machine its rows ran on), table.md and curves.png
  in `out`."""
  hardware = '; '.join(dict.fromkeys(r['hardware'] for r in rows))
  result = {'hardware': hardware, 'dataset': dataset, 'rows': rows}
  with open(os.path.join(out, 'results.json'), 'w') as f:
    json.dump(result, f, indent=1)
  with open(os.path.join(out, 'table.md'), 'w') as f:
    f.write('\n'.join(table(rows)) + '\n')
  fig, axes = plots.figure()
  ax = axes[0, 0]
  for r in rows:
    if r['curve']:
      t, acc = zip(*r['curve'], strict=True)
      ax.plot([x / 60 for x in t], acc, marker='o', label=f'{r["variant"]} seed {r["seed"]}')
  ax.set_xlabel('wall time (minutes, compile and evals included)')
  ax.set_ylabel('test accuracy (TTA)')
  ax.legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'curves.png'))
  print('\n'.join(table(rows)))


if __name__ == '__main__':
  main()
