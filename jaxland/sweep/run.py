"""Running a sweep's points: skip the finished, resume the rest, here, in N processes or on SLURM.

    python -m jaxland.sweep --config=configs/sweeps/<x>.py[:arg] --workdir=DIR [--parallel=N]

runs the points one after another in this process (--parallel=0, the default) or as N child
processes, each pinned to its share of CPU cores or given its GPU (--gpus=0,1). Points whose
status is final (done, diverged) are skipped; the others start or resume from their checkpoints.
--slurm writes DIR/slurm/array.sbatch instead: a SLURM array with one task per unfinished point.
Layout: DIR/sweep.json (the points), DIR/<point>/ (a run dir plus point.json), DIR/logs/.
"""

import json
import os
import shlex
import subprocess
import sys
import time

from absl import app, flags
from ml_collections import config_flags

from jaxland import runtime, tasks
from jaxland.cli import BAD_INPUT, exit_with, flags_parser, quiet_logs
from jaxland.output.progress import Progress
from jaxland.rundir import workdir as workdir_lib
from jaxland.sweep.space import Point, point_config, resolve
from jaxland.train import population

FINAL_STATUSES = ('done', 'diverged')
POPULATIONS_DIR = 'populations'  # With --vectorize: one population run dir per group.
DEFAULT_POPULATION = 16  # Members per population for a bare --vectorize.
SWEEP_FILE = 'sweep.json'
POINT_FILE = 'point.json'


def run_status(workdir: str, point: Point) -> str:
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
  run_dir = os.path.join(workdir, point.name)
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, POINT_FILE), 'w') as f:
    json.dump(point.to_json(), f, indent=2)
  config = point_config(sweep_config, point)
  try:
    return tasks.run(config, run_dir)
  except Exception as e:  # One bad point must not stop the sweep; its status.json says why.
    print(f'[sweep] {point.name} failed: {type(e).__name__}: {e}', flush=True)
    return {'status': 'failed', 'message': f'{type(e).__name__}: {e}'}


def run_inprocess(sweep_config, points: list[Point], workdir: str) -> dict:
  """Runs `points` one after another in this process; {name: status}."""
  results = {}
  progress = Progress('point', len(points), prefix='[sweep]')
  for point in points:
    print(f'[sweep] {point.name}', flush=True)
    results[point.name] = run_point(sweep_config, point, workdir)['status']
    progress.tick(point.name, results[point.name])
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


def run(
  sweep_config,
  workdir: str,
  parallel: int = 0,
  gpus=(),
  config_args=(),
  command='',
  vectorize: int = 0,
) -> dict:
  """Runs every unfinished point of the sweep; {name: status} of those it ran. vectorize=P
  trains the points that may share a population as populations of at most P members."""
  points = resolve(sweep_config)
  write_sweep(workdir, sweep_config, points, command)
  todo = pending(workdir, points)
  print(
    f'[sweep] {len(points)} points, {len(points) - len(todo)} finished, {len(todo)} to run',
    flush=True,
  )
  if vectorize:
    return run_vectorized(sweep_config, todo, workdir, vectorize)
  if parallel <= 0:
    return run_inprocess(sweep_config, todo, workdir)
  return run_subprocesses(todo, workdir, list(config_args), parallel, list(gpus))


def populations(sweep_config, points: list[Point], size: int) -> list[list[Point]]:
  """The points grouped into populations of at most `size` members: points whose configs differ
  only in values a population member may vary (train.population.VARYING), in sweep order."""
  groups = {}
  for point in points:
    static = population.without(point_config(sweep_config, point), population.ALL_VARYING)
    groups.setdefault(json.dumps(static, sort_keys=True, default=str), []).append(point)
  out = []
  for group in groups.values():
    out += [group[i : i + size] for i in range(0, len(group), size)]
  return out


def population_config(sweep_config, group: list[Point], workdir: str):
  """One population config training `group`: members named and placed as the points are."""
  config = point_config(sweep_config, group[0])
  config.unlock()
  varied = sorted({k for p in group for k in p.overrides if population.may_vary(k)})
  for key in varied:
    values = tuple(point_config(sweep_config, p) for p in group)
    population.set_axis(config, key, [population.value(c, key) for c in values])
  config.population.names = tuple(p.name for p in group)
  config.population.member_root = os.path.abspath(workdir)
  config.lock()
  return config


def run_vectorized(sweep_config, points: list[Point], workdir: str, size: int) -> dict:
  """Each group of `populations` as one population run (one process, one compiled step)."""
  results, groups = {}, populations(sweep_config, points, size)
  print(f'[sweep] {len(points)} points in {len(groups)} population(s)', flush=True)
  for i, group in enumerate(groups):
    for point in group:
      os.makedirs(os.path.join(workdir, point.name), exist_ok=True)
      with open(os.path.join(workdir, point.name, POINT_FILE), 'w') as f:
        json.dump(point.to_json(), f, indent=2)
    config = population_config(sweep_config, group, workdir)
    pop_dir = os.path.join(workdir, POPULATIONS_DIR, f'{i:03d}')
    try:
      summary = tasks.run(config, pop_dir)
      results.update(summary.get('members', {}))
    except Exception as e:  # One bad population must not stop the sweep.
      print(f'[sweep] population {i} failed: {type(e).__name__}: {e}', flush=True)
      results.update({p.name: 'failed' for p in group})
    if 'interrupted' in results.values():
      print('[sweep] interrupted; rerun the same command to resume', flush=True)
      break
  return results


def find_point(points: list[Point], ref: str) -> Point:
  """The point named `ref`, or with index `ref`."""
  for p in points:
    if ref in (p.name, str(p.index)):
      return p
  raise ValueError(f'No sweep point {ref!r}; points are {[p.name for p in points][:10]}...')


# --- Command line -----------------------------------------------------------------------------


def _config_args(argv) -> list[str]:
  """The --config and --config.* arguments this command got (handed to child processes)."""
  path, colon, arg = config_flags.get_config_filename(flags.FLAGS['config']).partition(':')
  spec = os.path.abspath(path) + colon + arg
  return [f'--config={spec}', *(a for a in argv if a.startswith('--config.'))]


def main(argv):
  f = flags.FLAGS
  if len(argv) > 1:
    exit_with('bad command', f'unexpected arguments {argv[1:]}', BAD_INPUT)
  quiet_logs()
  runtime.enable_compilation_cache()
  workdir = f.workdir
  config_args = _config_args(sys.argv[1:])
  try:
    points = resolve(f.config)
    point = find_point(points, f.point) if f.point else None
  except ValueError as e:
    exit_with('bad sweep', str(e), BAD_INPUT, e)
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
  results = run(f.config, workdir, f.parallel, f.gpus, config_args, command, f.vectorize)
  bad = {n: s for n, s in results.items() if s not in FINAL_STATUSES}
  print(f'[sweep] ran {len(results)}; not finished: {bad or "none"}', flush=True)
  print(f'[sweep] report: python -m jaxland.report {workdir}', flush=True)
  sys.exit(1 if bad else 0)


def _define_flags():
  config_flags.DEFINE_config_file('config', None, 'Sweep config file.', lock_config=True)
  flags.DEFINE_string('workdir', None, 'Sweep directory (one run directory per point inside).')
  flags.DEFINE_bool('verbose', False, 'Tracebacks and INFO logs (also JAXLAND_VERBOSE=1).')
  flags.DEFINE_integer('parallel', 0, '0: points one by one in this process; N: N processes.')
  flags.DEFINE_integer(
    'vectorize', 0, 'P > 0: points that differ only in values train as populations of <= P.'
  )
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


def cli():
  """`python -m jaxland.sweep`: flags, then main (a bare --vectorize means populations of 16)."""
  sys.argv = [f'--vectorize={DEFAULT_POPULATION}' if a == '--vectorize' else a for a in sys.argv]
  _define_flags()
  app.run(main, flags_parser=flags_parser)
