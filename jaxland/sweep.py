"""Sweeps: one base config, axes over any of its keys, one run directory per point.

A sweep config (configs/sweeps/*.py) is a ConfigDict with
  name    the sweep's name;
  base    the full run config each point starts from (override with --config.base.<key>=...);
  space   the axes: values(key, [...]) combined with product(...), zipped(...), or
          sample(num, {key: loguniform(lo, hi) | uniform | randint | choice}, seed);
  report  settings for jaxland.report (group_by, heatmaps, colour_by, strength), optional.
A key starting with 'tag.' sets nothing: it labels the point (e.g. 'tag.layers' beside
'model.hidden_sizes') for tables and heat maps.

    python -m jaxland.sweep --config=configs/sweeps/<x>.py[:arg] --workdir=DIR [--parallel=N]

runs the points one after another in this process (--parallel=0, the default) or as N child
processes, each pinned to its share of CPU cores or given its GPU (--gpus=0,1). Points whose
status is final (done, diverged) are skipped; the others start or resume from their checkpoints.
--slurm writes DIR/slurm/array.sbatch instead: a SLURM array with one task per unfinished point.
Layout: DIR/sweep.json (the points), DIR/<point>/ (a run dir plus point.json), DIR/logs/.
"""

import copy
import dataclasses
import hashlib
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time

import ml_collections
import numpy as np

TAG = 'tag.'
FINAL_STATUSES = ('done', 'diverged')
DISTRIBUTIONS = ('uniform', 'loguniform', 'randint', 'choice')
SWEEP_FILE = 'sweep.json'
POINT_FILE = 'point.json'


# --- Axes (plain, JSON-able dicts, so sweep configs stay data) -----------------------------------


def values(key: str, vals) -> dict:
  """One axis: config key `key` (dotted, e.g. 'optim.learning_rate') takes each of `vals`."""
  return {'kind': 'values', 'key': key, 'values': list(vals)}


def product(*axes) -> dict:
  """Every combination of the axes' points (the first axis varies slowest)."""
  return {'kind': 'product', 'axes': list(axes)}


def zipped(*axes) -> dict:
  """The axes' points taken together, first with first (the axes must have equal lengths)."""
  return {'kind': 'zip', 'axes': list(axes)}


def sample(num: int, dists: dict, seed: int = 0) -> dict:
  """`num` random points, each key drawn from its distribution (uniform(...), choice(...), ...)."""
  return {'kind': 'random', 'num': num, 'seed': seed, 'dists': dict(dists)}


def uniform(low: float, high: float) -> list:
  return ['uniform', low, high]


def loguniform(low: float, high: float) -> list:
  return ['loguniform', low, high]


def randint(low: int, high: int) -> list:
  """An integer in [low, high] (both included)."""
  return ['randint', low, high]


def choice(options) -> list:
  return ['choice', list(options)]


def truncate(space, n: int) -> dict:
  """`space` with each axis cut to its first n values (random: n samples), for smoke variants."""
  space = space.to_dict() if hasattr(space, 'to_dict') else dict(space)
  if space.get('kind') == 'values':
    return {**space, 'values': space['values'][:n]}
  if space.get('kind') == 'random':
    return {**space, 'num': min(space['num'], n)}
  if 'axes' in space:
    return {**space, 'axes': [truncate(axis, n) for axis in space['axes']]}
  return space


def expand(space) -> list[dict]:
  """The points of `space` as {key: value} dicts, in order; ValueError for a bad spec."""
  space = space.to_dict() if hasattr(space, 'to_dict') else space
  if not space:
    return [{}]
  kind = space.get('kind')
  if kind == 'values':
    if not space['values']:
      raise ValueError(f'sweep axis {space["key"]!r} has no values; give at least one')
    return [{space['key']: v} for v in space['values']]
  if kind in ('product', 'zip'):
    if not space['axes']:
      raise ValueError(f'sweep {kind}() needs at least one axis')
    parts = [expand(axis) for axis in space['axes']]
    if kind == 'zip' and len({len(p) for p in parts}) > 1:
      raise ValueError(f'sweep zipped() axes have different lengths {[len(p) for p in parts]}')
    combos = itertools.product(*parts) if kind == 'product' else zip(*parts, strict=True)
    return [_merge(combo) for combo in combos]
  if kind == 'random':
    return _sample(space)
  raise ValueError(f'Unknown sweep axis kind {kind!r}; use values, product, zipped or sample')


def _merge(dicts) -> dict:
  out = {}
  for d in dicts:
    for key in set(out) & set(d):
      raise ValueError(f'sweep key {key!r} appears in two combined axes; sweep it in one')
    out.update(d)
  return out


def _sample(space) -> list[dict]:
  if space['num'] < 1 or not space['dists']:
    raise ValueError(f'sweep sample() needs num >= 1 and a distribution, got {space}')
  rng = np.random.default_rng(space['seed'])
  for key, dist in space['dists'].items():
    if not dist or dist[0] not in DISTRIBUTIONS:
      raise ValueError(f'sweep sample() key {key!r}: {dist!r}; use one of {DISTRIBUTIONS}')
  return [
    {key: _draw(rng, *dist) for key, dist in space['dists'].items()} for _ in range(space['num'])
  ]


def _draw(rng, kind, *args):
  if kind == 'uniform':
    return float(rng.uniform(*args))
  if kind == 'loguniform':
    return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
  if kind == 'randint':
    return int(rng.integers(args[0], args[1] + 1))
  options = args[0]
  return options[int(rng.integers(len(options)))]


# --- Points -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Point:
  """One run of a sweep: its directory name, config overrides and tags."""

  index: int
  name: str
  overrides: dict  # dotted config key -> value
  tags: dict  # 'tag.x' -> value (recorded, not applied)

  def to_json(self) -> dict:
    return {'index': self.index, 'name': self.name, 'overrides': self.overrides, 'tags': self.tags}


def format_value(v) -> str:
  """A value as it appears in point names and tables: 0.05, 256-256, relu."""
  if isinstance(v, float):
    return f'{v:g}'
  if isinstance(v, (tuple, list)):
    return '-'.join(format_value(x) for x in v) or 'none'
  return str(v)


def _names(dicts: list[dict], keys: list[str]) -> list[str]:
  short = {k: k.rsplit('.', 1)[-1] for k in keys}
  if len(set(short.values())) < len(short):
    short = {k: k.removeprefix(TAG) for k in keys}
  names = []
  for d in dicts:
    name = ','.join(f'{short[k]}={format_value(d[k])}' for k in keys if k in d) or 'base'
    name = re.sub(r'[^A-Za-z0-9._=,+-]', '_', name)
    if len(name) > 100:
      name = name[:80] + '~' + hashlib.sha1(name.encode()).hexdigest()[:8]
    names.append(name)
  return names


def make_points(space) -> list[Point]:
  """The sweep's points with stable names made of their swept values (tags only if needed)."""
  dicts = expand(space)
  keys = list(dict.fromkeys(k for d in dicts for k in d))
  names = _names(dicts, [k for k in keys if not k.startswith(TAG)])
  if len(set(names)) < len(names):
    names = _names(dicts, keys)
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    raise ValueError(f'sweep points repeat: {dupes[:3]}; every point must differ in some key')
  return [
    Point(
      i,
      name,
      {k: _jsonable(v) for k, v in d.items() if not k.startswith(TAG)},
      {k: _jsonable(v) for k, v in d.items() if k.startswith(TAG)},
    )
    for i, (name, d) in enumerate(zip(names, dicts, strict=True))
  ]


def _jsonable(v):
  if isinstance(v, np.generic):
    return v.item()
  return list(v) if isinstance(v, tuple) else v


def apply(base, overrides: dict):
  """A copy of ConfigDict `base` with dotted `overrides` set; ValueError for an unknown key."""
  config = copy.deepcopy(base)
  config.unlock()
  for key, value in overrides.items():
    *path, leaf = key.split('.')
    node = config
    for i, part in enumerate(path):
      if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
        raise ValueError(f'sweep key {key!r}: {".".join(path[: i + 1])!r} is not a config section')
      node = node[part]
    if leaf not in node:
      raise ValueError(
        f'sweep key {key!r} is not a config key; {".".join(path) or "config"} has {sorted(node)}'
      )
    if isinstance(node[leaf], tuple) and isinstance(value, list):
      value = tuple(value)
    try:
      node[leaf] = value
    except TypeError as e:
      raise ValueError(f'sweep key {key!r} = {value!r}: {e}') from e
  return config


def point_config(sweep_config, point: Point):
  """The run config of `point`, locked like jaxland.main's."""
  config = apply(sweep_config.base, point.overrides)
  config.lock()
  return config


def resolve(sweep_config) -> list[Point]:
  """The points, each config checked by jaxland.config (ValueError naming the point)."""
  from jaxland import config as config_lib

  points = make_points(sweep_config.get('space') or {})
  for point in points:
    try:
      config_lib.validate(point_config(sweep_config, point), num_devices=1)
    except ValueError as e:
      raise ValueError(f'sweep point {point.name!r}: {e}') from e
  return points


# --- Running ----------------------------------------------------------------------------------


def run_status(workdir: str, point: Point) -> str:
  from jaxland import workdir as workdir_lib

  return workdir_lib.read_status(os.path.join(workdir, point.name))['status']


def pending(workdir: str, points: list[Point]) -> list[Point]:
  """Points to (re)run: all but those whose status is final (done, diverged)."""
  return [p for p in points if run_status(workdir, p) not in FINAL_STATUSES]


def write_sweep(workdir: str, sweep_config, points: list[Point], command: str = '') -> None:
  """DIR/sweep.json: the points, base config, report settings and the command that made them."""
  os.makedirs(workdir, exist_ok=True)
  record = {
    'name': sweep_config.get('name', ''),
    'command': command,
    'time': time.time(),
    'report': sweep_config.report.to_dict() if 'report' in sweep_config else {},
    'base': json.loads(sweep_config.base.to_json_best_effort()),
    'points': [p.to_json() for p in points],
  }
  with open(os.path.join(workdir, SWEEP_FILE), 'w') as f:
    json.dump(record, f, indent=2)


def read_sweep(workdir: str) -> dict:
  with open(os.path.join(workdir, SWEEP_FILE)) as f:
    return json.load(f)


def run_point(sweep_config, point: Point, workdir: str) -> dict:
  """Trains one point in this process (resuming it); its summary, status 'failed' on error."""
  from jaxland import tasks

  run_dir = os.path.join(workdir, point.name)
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, POINT_FILE), 'w') as f:
    json.dump(point.to_json(), f, indent=2)
  config = point_config(sweep_config, point)
  try:
    return tasks.get_task(config.task)(config, run_dir)
  except Exception as e:  # One bad point must not stop the sweep; its status.json says why.
    print(f'[sweep] {point.name} failed: {type(e).__name__}: {e}', flush=True)
    return {'status': 'failed', 'message': f'{type(e).__name__}: {e}'}


def run_inprocess(sweep_config, points: list[Point], workdir: str) -> dict:
  """Runs `points` one after another in this process; {name: status}."""
  results = {}
  for i, point in enumerate(points):
    print(f'[sweep] {i + 1}/{len(points)} {point.name}', flush=True)
    results[point.name] = run_point(sweep_config, point, workdir)['status']
    if results[point.name] == 'interrupted':  # SIGTERM / SIGINT: stop the sweep, not one run.
      print('[sweep] interrupted; rerun the same command to resume', flush=True)
      break
  return results


def slot_env(slot: int, parallel: int, gpus=(), cpus=None) -> tuple[dict, list[int]]:
  """Environment and CPU cores of worker `slot`: its GPU, or an equal share of the cores."""
  env = dict(os.environ)
  if cpus is None:
    affinity = getattr(os, 'sched_getaffinity', None)  # Linux only.
    cpus = sorted(affinity(0)) if affinity else list(range(os.cpu_count() or 1))
  cpus = list(cpus)
  if gpus:
    env['CUDA_VISIBLE_DEVICES'] = str(gpus[slot % len(gpus)])
    if parallel > len(gpus):
      env['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'  # Several workers share a GPU.
    return env, cpus
  share = max(1, len(cpus) // parallel)
  mine = cpus[slot * share : (slot + 1) * share] or [cpus[slot % len(cpus)]]
  env['JAX_PLATFORMS'] = env.get('JAX_PLATFORMS') or 'cpu'
  return env, mine


def run_subprocesses(points, workdir, config_args, parallel, gpus=()) -> dict:
  """Runs each point as `python -m jaxland.sweep ... --point=NAME`, `parallel` at a time."""
  os.makedirs(os.path.join(workdir, 'logs'), exist_ok=True)
  queue, running, results = list(points), {}, {}
  try:
    while queue or running:
      for slot in range(parallel):
        if slot not in running and queue:
          point = queue.pop(0)
          env, cpus = slot_env(slot, parallel, gpus)
          log = open(os.path.join(workdir, 'logs', f'{point.name}.log'), 'a')
          cmd = [*point_command(config_args, workdir), f'--point={point.name}']
          proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_pin(cpus),
          )
          running[slot] = (proc, point, log)
          print(f'[sweep] start {point.name} (slot {slot}, cpus {cpus})', flush=True)
      for slot, (proc, point, log) in list(running.items()):
        if proc.poll() is not None:
          log.close()
          del running[slot]
          results[point.name] = run_status(workdir, point)
          print(f'[sweep] {point.name}: {results[point.name]} (exit {proc.returncode})', flush=True)
      time.sleep(0.2)
  finally:
    for proc, _, log in running.values():
      proc.wait()  # Children got the same SIGINT: they checkpoint and stop.
      log.close()
  return results


def _pin(cpus):
  """A preexec_fn restricting the child to `cpus` (None where the OS can't)."""
  if not hasattr(os, 'sched_setaffinity'):
    return None
  return lambda: os.sched_setaffinity(0, cpus)


def point_command(config_args, workdir: str) -> list[str]:
  return [sys.executable, '-m', 'jaxland.sweep', *config_args, f'--workdir={workdir}']


def slurm_script(sweep_name, names, workdir, config_args, options=(), throttle=0) -> str:
  """An sbatch array script: task i runs the i-th line of DIR/slurm/points.txt."""
  workdir = os.path.abspath(workdir)
  array = f'0-{len(names) - 1}' + (f'%{throttle}' if throttle else '')
  lines = [
    '#!/bin/bash',
    f'#SBATCH --job-name={sweep_name or "sweep"}',
    f'#SBATCH --array={array}',
    f'#SBATCH --output={workdir}/logs/slurm-%A_%a.out',
    *(f'#SBATCH --{opt}' for opt in options),
    '# One task per unfinished point; finished points are skipped, others resume. Regenerate',
    '# with the same sweep command after a partial run to cover only what is left.',
    'set -euo pipefail',
    f'cd {shlex.quote(os.getcwd())}',
    f'POINT=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(workdir)}/slurm/points.txt)',
    'exec '
    + ' '.join(shlex.quote(a) for a in point_command(config_args, workdir))
    + ' --point="${POINT}"',
  ]
  return '\n'.join(lines) + '\n'


def write_slurm(sweep_config, points, workdir, config_args, options=(), throttle=0) -> str | None:
  """Writes DIR/slurm/{array.sbatch,points.txt} for the unfinished points; the script's path.

  None (and nothing written) when every point is finished.
  """
  todo = pending(workdir, points)
  if not todo:
    return None
  directory = os.path.join(workdir, 'slurm')
  os.makedirs(os.path.join(workdir, 'logs'), exist_ok=True)
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, 'points.txt'), 'w') as f:
    f.write(''.join(p.name + '\n' for p in todo))
  script = os.path.join(directory, 'array.sbatch')
  with open(script, 'w') as f:
    f.write(
      slurm_script(
        sweep_config.get('name'), [p.name for p in todo], workdir, config_args, options, throttle
      )
    )
  return script


def run(sweep_config, workdir: str, parallel: int = 0, gpus=(), config_args=(), command='') -> dict:
  """Runs every unfinished point of the sweep; {name: status} of those it ran."""
  points = resolve(sweep_config)
  write_sweep(workdir, sweep_config, points, command)
  todo = pending(workdir, points)
  print(
    f'[sweep] {len(points)} points, {len(points) - len(todo)} finished, {len(todo)} to run',
    flush=True,
  )
  if parallel <= 0:
    return run_inprocess(sweep_config, todo, workdir)
  return run_subprocesses(todo, workdir, list(config_args), parallel, list(gpus))


def find_point(points: list[Point], ref: str) -> Point:
  """The point named `ref`, or with index `ref`."""
  for p in points:
    if ref in (p.name, str(p.index)):
      return p
  raise ValueError(f'No sweep point {ref!r}; points are {[p.name for p in points][:10]}...')


# --- Command line -----------------------------------------------------------------------------


def _config_args(argv) -> list[str]:
  """The --config and --config.* arguments this command got (handed to child processes)."""
  from absl import flags
  from ml_collections import config_flags

  path, colon, arg = config_flags.get_config_filename(flags.FLAGS['config']).partition(':')
  spec = os.path.abspath(path) + colon + arg
  return [f'--config={spec}', *(a for a in argv if a.startswith('--config.'))]


def main(argv):
  from absl import app, flags

  f = flags.FLAGS
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  workdir = f.workdir
  config_args = _config_args(sys.argv[1:])
  try:
    points = resolve(f.config)
    point = find_point(points, f.point) if f.point else None
  except ValueError as e:
    raise app.UsageError(f'Bad sweep: {e}') from e
  if point:
    status = run_status(workdir, point)
    if status in FINAL_STATUSES:
      print(f'[sweep] {point.name} is already {status}; skipping', flush=True)
      return
    sys.exit(0 if run_point(f.config, point, workdir)['status'] in FINAL_STATUSES else 1)
  command = shlex.join(['python', '-m', 'jaxland.sweep', *sys.argv[1:]])
  if f.dry_run:
    for p in points:
      print(f'{p.index:4d} {run_status(workdir, p):11s} {p.name}')
    return
  if f.slurm:
    write_sweep(workdir, f.config, points, command)
    script = write_slurm(f.config, points, workdir, config_args, f.slurm_opt, f.slurm_throttle)
    if script is None:
      print(f'[sweep] all {len(points)} points are finished; nothing to submit', flush=True)
      return
    print(f'[sweep] wrote {script}; submit with: sbatch {script}', flush=True)
    if f.submit:
      subprocess.run(['sbatch', script], check=True)
    return
  results = run(f.config, workdir, f.parallel, f.gpus, config_args, command)
  bad = {n: s for n, s in results.items() if s not in FINAL_STATUSES}
  print(f'[sweep] ran {len(results)}; not finished: {bad or "none"}', flush=True)
  print(f'[sweep] report: python -m jaxland.report {workdir}', flush=True)
  sys.exit(1 if bad else 0)


def _define_flags():
  from absl import flags
  from ml_collections import config_flags

  config_flags.DEFINE_config_file('config', None, 'Sweep config file.', lock_config=True)
  flags.DEFINE_string('workdir', None, 'Sweep directory (one run directory per point inside).')
  flags.DEFINE_integer('parallel', 0, '0: points one by one in this process; N: N processes.')
  flags.DEFINE_list('gpus', [], 'GPU ids handed out to the parallel workers (empty: CPU).')
  flags.DEFINE_string('point', '', 'Run only this point (name or index), in this process.')
  flags.DEFINE_bool('dry_run', False, 'List the points and their status, run nothing.')
  flags.DEFINE_bool('slurm', False, 'Write a SLURM array script for the unfinished points.')
  flags.DEFINE_bool('submit', False, 'With --slurm: also call sbatch.')
  flags.DEFINE_multi_string(
    'slurm_opt', ['time=24:00:00', 'cpus-per-task=4'], 'sbatch options, e.g. gpus-per-task=1.'
  )
  flags.DEFINE_integer('slurm_throttle', 0, 'Max array tasks running at once (0: no limit).')
  flags.mark_flags_as_required(['config', 'workdir'])


if __name__ == '__main__':
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  from absl import app

  _define_flags()
  app.run(main)
