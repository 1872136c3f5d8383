"""The ResNet train step's "relu / residual / pad" thunks (bench/train_step.py's profile part)
broken down by instruction: summed time per (output shape, fused ops), so the data movement of
the chunked conv backward (its per-chunk slices and chunked-layout copies) shows apart from the
elementwise math.

Run:    .venv/bin/python bench/step_ops.py [--model=resnet20] [--rows=15]
Prints ms per step for each group, largest first, and the kind's total as its first line.
"""

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile

import common  # bench/common.py: puts the repository on sys.path
import jax
import train_step


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='resnet20')
  parser.add_argument('--rows', type=int, default=15)
  parser.add_argument('--steps', type=int, default=2)
  args = parser.parse_args()
  step, box, call, step_args = train_step.jax_step(args.model)
  batch = train_step.MODELS[args.model][1]
  hlo = step.lower(box['state'], *step_args).compile().as_text()
  kinds = train_step._entry_kinds(hlo, batch)
  computations = re.finditer(r'^(%\S+) .*?\{\n(.*?)\n\}', hlo, re.M | re.S)
  bodies = {m.group(1): m.group(2) for m in computations}
  lines = {}
  for line in hlo[hlo.index('\nENTRY') :].splitlines()[1:]:
    m = re.match(r'\s*(?:ROOT )?%(\S+) = (\S+) (\S+?)\(', line)
    if m:
      lines[m.group(1)] = line
  common.time_calls(call, 2)
  with tempfile.TemporaryDirectory() as tmp:
    jax.profiler.start_trace(tmp)
    for _ in range(args.steps):
      call()
    jax.block_until_ready(box['state'])
    jax.profiler.stop_trace()
    trace = json.load(gzip.open(glob.glob(f'{tmp}/plugins/profile/*/*.trace.json.gz')[0]))
  groups = collections.defaultdict(float)
  for e in trace['traceEvents']:
    op = e.get('args', {}).get('hlo_op')
    if e.get('ph') != 'X' or not op or e['args'].get('hlo_module') != 'jit_train_step':
      continue
    if not kinds.get(op, '').startswith('relu'):
      continue
    line = lines.get(op, '')
    shape = line.split('=', 1)[1].split()[0] if '=' in line else '?'
    called = re.search(r'calls=(%[\w.\-]+)', line)
    body = bodies.get(called.group(1), '') if called else ''
    ops = ' '.join(sorted(set(re.findall(r'= \S+ (\w[\w-]*)\(', body)) - {'parameter'}))
    groups[(shape, ops or '(no fused body)')] += e['dur'] / 1e3 / args.steps
  print(f'# {common.machine()}; {common.load()}')
  print(f'{args.model}: relu / residual / pad thunks {sum(groups.values()):.1f} ms per step')
  print('| ms / step | output shape {layout} | fused ops |')
  print('|---|---|---|')
  for (shape, ops), ms in sorted(groups.items(), key=lambda kv: -kv[1])[: args.rows]:
    print(f'| {ms:.1f} | `{shape}` | {ops} |')


if __name__ == '__main__':
  main()
