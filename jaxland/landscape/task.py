"""Task `landscape`: every probe of config.landscape.probes on one trained checkpoint.

The run is config.checkpoint ('<run dir>[:step]'), else --workdir when it holds checkpoints, else
config is trained first into <workdir>/train (with its trajectory). Outputs go to
<workdir>/<out_dir> ('landscape'): eigen_<step>.npz (all Ritz pairs), profiles_<probe>.npz,
<probe>.csv, summary.json, figures (see jaxland.landscape.figures) and a config.json of its own.
"""

import csv
import dataclasses
import json
import os
import time

import numpy as np
from absl import logging

from jaxland import checkpoints
from jaxland import workdir as workdir_lib
from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape import figures, probes, training_probes
from jaxland.landscape.problem import Problem, load_problem, resolve_run, trajectory_steps

PROBES = (
  'lines',
  'random',
  'minibatch',
  'dense',
  'dynamics',
  'trajectory',
  'grad_noise',
  'per_example',
)


def validate(c) -> None:
  """ValueError for a bad config.landscape setting."""
  bad = [p for p in c.probes if p not in PROBES]
  if bad:
    raise ValueError(f'config.landscape.probes has {bad}; choose from {PROBES}')
  if c.kind not in eigen_lib.KINDS:
    raise ValueError(f'config.landscape.kind={c.kind!r}; choose from {eigen_lib.KINDS}')
  if not 0 < c.num_top <= c.lanczos_steps:
    raise ValueError(
      f'config.landscape.num_top={c.num_top} must lie in [1, lanczos_steps={c.lanczos_steps}]'
    )
  if c.line_points < 5 or c.line_points % 2 == 0:
    raise ValueError(f'config.landscape.line_points={c.line_points}: need an odd number >= 5')
  if not 0 < c.inner_window <= 1:
    raise ValueError(f'config.landscape.inner_window={c.inner_window} must lie in (0, 1]')
  if 'random' in c.probes and 'lines' not in c.probes:
    raise ValueError("config.landscape.probes: 'random' needs 'lines' (its top-k mixtures)")


def out_dir(config, workdir: str, section: str) -> str:
  """<workdir>/<config.<section>.out_dir or section>, with the task's config.json in it."""
  name = config[section].out_dir or section
  path = os.path.join(workdir, name)
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, 'config.json'), 'w') as f:
    json.dump(workdir_lib.config_dict(config), f, indent=2, sort_keys=True)
  return path


def top_eigen(problem: Problem, c, out: str, trace_probes=None) -> eigen_lib.Eigen:
  """The probed checkpoint's Ritz pairs: from c.spectrum, a cached eigen npz, or Lanczos."""
  if c.spectrum:
    return eigen_lib.load(c.spectrum)
  path = os.path.join(out, f'eigen_{problem.step}_{c.kind}_k{c.num_top}_m{c.lanczos_steps}.npz')
  if os.path.exists(path):
    return eigen_lib.load(path)
  t0 = time.time()
  probes = c.trace_probes if trace_probes is None else trace_probes
  eig = eigen_lib.compute_from(problem, c, trace_probes=probes)
  logging.info('eigenpairs at step %d in %.1fs', problem.step, time.time() - t0)
  eig.save(path)
  return eig


def write_csv(path: str, rows: list[dict]) -> str:
  """rows (dicts) as a CSV with the union of their keys as header."""
  keys = []
  for r in rows:
    keys += [k for k in r if k not in keys]
  with open(path, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    for r in rows:
      w.writerow({k: _fmt(v) for k, v in r.items()})
  return path


def _fmt(v):
  if isinstance(v, float):
    return f'{v:.6g}'
  return v


def lr_function(config, run_dir: str):
  """step -> the learning rate the run's schedule applied at that step."""
  from jaxland import data as data_lib
  from jaxland.optim import schedules

  n = len(data_lib.load_dataset(config.data).train[1])
  spe = n // config.data.batch_size
  total = spe * config.train.num_epochs
  if config.train.max_steps:
    total = min(total, config.train.max_steps)
  fn = schedules.make_schedules(config.optim, spe, total)['learning_rate']
  return lambda step: float(fn(step))


@dataclasses.dataclass
class Started:
  """What the landscape and intervene tasks begin from (see `start`)."""

  ref: str  # The probed checkpoint, '<run dir>[:step]'.
  run_dir: str
  out: str  # The task's output folder.
  problem: Problem
  eig: eigen_lib.Eigen  # Top Ritz pairs at the checkpoint, from config.landscape.
  t_start: float  # After the run is resolved (trained if needed).


def start(config, workdir: str, section: str) -> Started:
  """Resolves (or trains) the run, marks <workdir>/<section> running, loads the checkpoint as a
  Problem and its top Ritz pairs."""
  ref = resolve_run(config, workdir)
  run_dir, _ = checkpoints.parse_checkpoint_ref(ref)
  out = out_dir(config, workdir, section)
  workdir_lib.write_status(out, 'running')
  t_start = time.time()
  problem = load_problem(config, ref)
  return Started(ref, run_dir, out, problem, top_eigen(problem, config.landscape, out), t_start)


def finish(section: str, out: str, summary: dict, t_start: float) -> dict:
  """Writes summary.json and status done; the task's return value."""
  workdir_lib.write_json(out, 'summary.json', _jsonable(summary))
  workdir_lib.write_status(out, 'done')
  print(f'[jaxland] {section} done in {time.time() - t_start:.0f}s; results in {out}', flush=True)
  return {'status': 'done', 'out_dir': out, 'seconds': time.time() - t_start}


def run_task(config, workdir: str) -> dict:
  """Runs the probes of config.landscape on the resolved run (module doc); returns the summary."""
  c = config.landscape
  validate(c)
  s = start(config, workdir, 'landscape')
  ref, run_dir, out, problem, eig = s.ref, s.run_dir, s.out, s.problem, s.eig
  times = {'eigen': time.time() - s.t_start}
  results, summary = {}, {'checkpoint': ref, 'step': problem.step, 'num_params': problem.dim}
  summary['top_eigenvalues'] = eig.top_values.tolist()
  steps = trajectory_steps(run_dir)
  lr_at = lr_function(config, run_dir)

  def timed(name, fn):
    t0 = time.time()
    results[name] = fn()
    times[name] = time.time() - t0
    print(f'[jaxland] landscape/{name}: {times[name]:.1f}s', flush=True)

  if 'lines' in c.probes:
    timed('lines', lambda: probes.line_searches(problem, eig, c))
  if 'random' in c.probes:
    lines_res = results['lines']
    timed(
      'random',
      lambda: probes.random_directions(problem, eig, c, lines_res['grad'], lines_res['arrays']),
    )
  if 'minibatch' in c.probes:
    timed('minibatch', lambda: probes.minibatch(problem, eig, c))
  if 'dense' in c.probes:
    timed('dense', lambda: probes.dense(problem, eig, c))
  if 'dynamics' in c.probes:
    timed(
      'dynamics', lambda: training_probes.spectra_over_training(problem, eig, c, run_dir, steps)
    )
  if 'trajectory' in c.probes:
    timed('trajectory', lambda: training_probes.trajectory(problem, eig, c, run_dir, steps, lr_at))
  if 'grad_noise' in c.probes:
    momentum = float(config.optim.momentum) if config.optim.name == 'sgd' else 0.0
    traj = results.get('trajectory', {})
    timed(
      'grad_noise',
      lambda: training_probes.grad_noise(
        problem, eig, c, config.data.batch_size, lr_at(problem.step), momentum, traj
      ),
    )
  if 'per_example' in c.probes:
    timed('per_example', lambda: training_probes.per_example_decomposition(problem, eig, c))

  for name, res in results.items():
    if res['rows']:
      write_csv(os.path.join(out, f'{name}.csv'), res['rows'])
    if res['arrays']:
      np.savez_compressed(os.path.join(out, f'profiles_{name}.npz'), **res['arrays'])
    summary[name] = res['summary']
  summary['figures'] = figures.all_figures(results, out)
  summary['seconds'] = times
  summary['status'] = 'done'
  return finish('landscape', out, summary, s.t_start)


def _jsonable(x):
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, np.generic):
    return x.item()
  return x
