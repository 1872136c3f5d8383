"""The run record every task leaves: config.json, status.json and summary.json, and the runner
that writes them (`run_task`): status `running`, then done / diverged / failed / interrupted in
a `finally`, whatever the task.

A rerun in the same workdir of a guarded task (one whose workdir holds a resumable run) goes on
only with the same config; keys the saved config lacks (added to jaxland since) take their
current values, and sections it has that the config no longer carries are dropped when they
hold their defaults, each with a warning.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Callable

import jax
from absl import logging

from jaxland.output import tables
from jaxland.rundir import checkpoints

CONFIG_FILE = 'config.json'
LOCK_FILE = 'jaxland.lock'
IGNORED_KEYS = ('resume', 'overwrite')
RUN_FILES = (
  'checkpoints',
  'snapshots',
  'trajectory',
  'batch_order',
  'metrics.jsonl',
  'summary.json',
)


def config_dict(config) -> dict:
  """The config as JSON data, less the keys that may differ between a run and its resume."""
  d = json.loads(config.to_json_best_effort())
  for key in IGNORED_KEYS:
    d.pop(key, None)
  return d


@dataclasses.dataclass(frozen=True)
class Task:
  """A task's entry `run(config, workdir) -> summary` and where its record lives."""

  run: Callable
  record_dir: Callable = lambda config, workdir: workdir  # (config, workdir) -> the record's dir
  guarded: bool = False  # The record dir holds a resumable run: a different config is refused.
  summary_file: str = 'summary.json'
  sections: tuple = ()  # Research-line config sections it reads (checked by jaxland.tasks).
  check: Callable | None = None  # check(config): what validation cannot see (data sizes, paths).


def run_task(task: Task, config, workdir: str, section_defaults=None) -> dict:
  """Runs `task`, recording it: config.json, status.json (running, then the final status in a
  finally) and the summary it returns. `section_defaults` {section: dict} lets a guarded rerun
  drop sections an older config.json carried at their defaults."""
  if task.check is not None:
    task.check(config)  # Before anything is written: a mistake here leaves no run directory.
  record = task.record_dir(config, workdir)
  os.makedirs(record, exist_ok=True)
  with lock(record):
    if task.guarded:
      prepare(record, config, section_defaults)
    else:
      write_config(record, config)
    write_status(record, 'running')
    summary = {'status': 'failed'}
    try:
      summary = task.run(config, workdir)
    except BaseException as e:
      interrupted = isinstance(e, KeyboardInterrupt)
      summary = {'status': 'interrupted' if interrupted else 'failed', 'message': _one_line(e)}
      raise
    finally:
      info = {k: v for k, v in summary.items() if k in ('message', 'step', 'epoch')}
      write_status(record, summary.get('status', 'done'), **info)
    tables.write_json(os.path.join(record, task.summary_file), summary)
  return summary


class WorkdirLocked(RuntimeError):
  """Another live process is writing this workdir."""


@contextlib.contextmanager
def lock(workdir: str):
  """Holds `workdir`'s lock (an flock on LOCK_FILE, released by the kernel if the process dies;
  the file names pid, host and start time). A live holder: WorkdirLocked naming it. A lock left
  by a dead process is taken over with a warning. Only process 0 of a multi-process run locks."""
  if jax.process_index() > 0:
    yield
    return
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise WorkdirLocked(f'{workdir} is in use by {_holder(fd)}; wait for it or use another '
                          '--workdir') from None  # fmt: skip
    previous = os.pread(fd, 4096, 0).decode(errors='replace').strip()
    if previous:
      logging.warning('Taking over the lock of a process that is gone: %s', previous)
    me = {'pid': os.getpid(), 'host': socket.gethostname(), 'start': time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    yield
    os.ftruncate(fd, 0)
  finally:
    os.close(fd)  # Releases the flock.


def _holder(fd) -> str:
  try:
    info = json.loads(os.pread(fd, 4096, 0).decode())
    started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info['start']))
    return f'pid {info["pid"]} on {info["host"]} (since {started})'
  except (ValueError, KeyError):
    return 'another process'


def _one_line(e: BaseException) -> str:
  return f'{type(e).__name__}: {e}'.splitlines()[0] if str(e) else type(e).__name__


def write_config(workdir: str, config) -> None:
  """<workdir>/config.json: the config as JSON (less resume / overwrite), when it changed."""
  new = config_dict(config)
  if saved_config(workdir) != new:
    tables.write_json(os.path.join(workdir, CONFIG_FILE), new)


def saved_config(run_dir: str) -> dict | None:
  """The config.json a run saved, as JSON data (None when there is none)."""
  path = os.path.join(run_dir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def prepare(workdir: str, config, section_defaults=None) -> None:
  """Makes `workdir` ready for `config`: a rerun of the same config resumes; overwrite=True or
  resume=False starts afresh; a different config is refused while the workdir holds a
  checkpoint (nothing is lost otherwise, so it then starts afresh). config.json is written only
  when it changes (a finished read-only workdir can be rerun)."""
  os.makedirs(workdir, exist_ok=True)
  new = config_dict(config)
  saved = saved_config(workdir)
  old = None if saved is None else _without_default_sections(saved, new, section_defaults or {})
  fresh = config.overwrite or not config.get('resume', True)
  if old is not None and not fresh:
    added = sorted(_added_keys(old, new))
    if old != _without(new, added):
      diff = sorted(_diff_keys(old, new))
      if checkpoints.exists(workdir):
        raise ValueError(
          f'Workdir {workdir} holds a run with a different config (keys {diff[:8]}); '
          'use another --workdir or pass --config.overwrite=True to start it afresh.'
        )
      logging.warning('Workdir %s held another config (keys %s) but no checkpoint', workdir, diff)
      fresh = True
    elif added:  # Saved by an older jaxland: options added since then, at their current values.
      logging.warning('Resuming a run saved before these config keys existed: %s', added)
  if fresh:
    clear(workdir)
  if saved != new:
    tables.write_json(os.path.join(workdir, CONFIG_FILE), new)


def _without_default_sections(old: dict, new: dict, defaults: dict) -> dict:
  """`old` less the sections `new` lacks that hold exactly their defaults (an older jaxland saved
  every section in every config)."""
  retired = [k for k in old if k not in new and k in defaults and old[k] == defaults[k]]
  if retired:
    logging.warning('Config sections this run no longer carries (at their defaults): %s', retired)
  return {k: v for k, v in old.items() if k not in retired}


def clear(workdir: str) -> None:
  """Removes what a previous run wrote (checkpoints, logs), keeping unrelated files."""
  for name in os.listdir(workdir):
    full = os.path.join(workdir, name)
    if name in RUN_FILES or name.startswith('events.out.tfevents'):
      shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)


def _added_keys(old, new, prefix=''):
  """Dotted keys of `new` that `old` lacks (whole sections count as one key)."""
  for k, v in new.items():
    if k not in old:
      yield f'{prefix}{k}'
    elif isinstance(v, dict) and isinstance(old[k], dict):
      yield from _added_keys(old[k], v, f'{prefix}{k}.')


def _without(d, dotted_keys):
  """A copy of nested dict `d` less the dotted keys."""
  out = json.loads(json.dumps(d))
  for key in dotted_keys:
    *parents, leaf = key.split('.')
    node = out
    for p in parents:
      node = node[p]
    node.pop(leaf)
  return out


def _diff_keys(a, b, prefix=''):
  keys = set(a) | set(b)
  for k in keys:
    va, vb = a.get(k), b.get(k)
    if isinstance(va, dict) and isinstance(vb, dict):
      yield from _diff_keys(va, vb, f'{prefix}{k}.')
    elif va != vb:
      yield f'{prefix}{k}'


def write_status(workdir: str, status: str, **info) -> None:
  """Writes status.json atomically."""
  record = {'status': status, 'time': time.time(), **info}
  tmp = os.path.join(workdir, f'status.json.tmp{os.getpid()}')  # Unique: processes share dirs.
  with open(tmp, 'w') as f:
    json.dump(record, f, indent=2)
  os.replace(tmp, os.path.join(workdir, 'status.json'))


def read_status(workdir: str) -> dict:
  """The run's status record ({'status': 'missing'} when it never started)."""
  path = os.path.join(workdir, 'status.json')
  if not os.path.exists(path):
    return {'status': 'missing'}
  with open(path) as f:
    return json.load(f)


def check_same_run(config, run_dir: str, hint: str = '') -> None:
  """Raises unless `run_dir` is a training run made with config's data and model sections.

  Tools that rebuild a run's model and data to read its checkpoints (ensembles, landscapes) call
  this so that they never evaluate weights on the wrong model or data.
  """
  saved = saved_config(run_dir)
  if saved is None:
    raise FileNotFoundError(f'{run_dir}/{CONFIG_FILE} not found: it must be a training run dir')
  mine = config_dict(config)
  for section in ('data', 'model'):
    theirs, ours = saved.get(section) or {}, mine.get(section) or {}
    if theirs != _without(ours, _added_keys(theirs, ours)):  # Keys added since: as in prepare.
      raise ValueError(
        f'config.{section} differs from the run in {run_dir}; pass the config the run was '
        f'trained with{hint}'
      )
