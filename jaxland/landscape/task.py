"""Task `landscape`: every probe of config.landscape.probes on one trained checkpoint.

The run is config.checkpoint ('<run dir>[:step]'), else --workdir when it holds checkpoints, else
config is trained first into <workdir>/train (with its trajectory). Outputs go to
<workdir>/<out_dir> ('landscape'): eigen_<step>.npz (all Ritz pairs), profiles_<probe>.npz,
<probe>.csv, summary.json, figures (jaxland.landscape.figures) and the task's record.
"""

import dataclasses
import os
import time

import numpy as np
from absl import logging

from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape import figures, probes, training_probes
from jaxland.landscape.problem import Problem, load_problem, resolve_run
from jaxland.optim import schedules
from jaxland.output import tables
from jaxland.output.progress import Progress
from jaxland.rundir import artifacts, checkpoints
from jaxland.train import loop


def out_dir(config, workdir: str, section: str) -> str:
  """<workdir>/<config.<section>.out_dir or section>: where a task on the landscape writes."""
  return os.path.join(workdir, config[section].out_dir or section)


def record_dir(config, workdir: str) -> str:
  return out_dir(config, workdir, 'landscape')


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
  """rows (dicts) as a CSV with the union of their keys as header, floats to 6 digits."""
  return tables.write_csv(path, rows, fmt=tables.short_float)


def lr_function(config, problem: Problem):
  """step -> the learning rate the run's schedule applied at that step."""
  spe, total = loop.schedule_steps(config, problem.num_train)
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
  t_start = time.time()
  problem = load_problem(config, ref)
  return Started(ref, run_dir, out, problem, top_eigen(problem, config.landscape, out), t_start)


def finish(section: str, out: str, summary: dict, t_start: float) -> dict:
  """The task's summary (its summary.json), done."""
  print(f'[jaxland] {section} done in {time.time() - t_start:.0f}s; results in {out}', flush=True)
  return tables.jsonable({**summary, 'status': 'done'})


def run(config, workdir: str) -> dict:
  """Runs the probes of config.landscape on the resolved run (module doc); returns the summary."""
  c = config.landscape
  s = start(config, workdir, 'landscape')
  ref, run_dir, out, problem, eig = s.ref, s.run_dir, s.out, s.problem, s.eig
  times = {'eigen': time.time() - s.t_start}
  results, summary = {}, {'checkpoint': ref, 'step': problem.step, 'num_params': problem.dim}
  summary['top_eigenvalues'] = eig.top_values.tolist()
  steps = artifacts.trajectory_steps(run_dir)
  lr_at = lr_function(config, problem)

  progress = Progress('landscape probe', len(c.probes))

  def timed(name, fn):
    t0 = time.time()
    results[name] = fn()
    times[name] = time.time() - t0
    progress.tick(name)

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
  return finish('landscape', out, summary, s.t_start)
