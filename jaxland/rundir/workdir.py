"""The run record every task leaves: config.json, status.json and summary.json, and the runner
that writes them (`run_task`): status `running`, then done / diverged / failed / interrupted in
a `finally`, whatever the task.

A rerun in the same workdir of a guarded task (one whose workdir holds a resumable run) goes on
only with the same config; keys the saved config lacks (added to jaxland since) take their
current values, and sections it has that the config no longer carries are dropped when they
hold their defaults, each with a warning.
"""

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable

from absl import logging

from jaxland.output import tables

CONFIG_FILE = 'config.json'
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


def run_task(task: Task, config, workdir: str, section_defaults=None) -> dict:
  """Runs `task`, recording it: config.json, status.json (running, then the final status in a
  finally) and the summary it returns. `section_defaults` {section: dict} lets a guarded rerun
  drop sections an older config.json carried at their defaults."""
  record = task.record_dir(config, workdir)
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


def _one_line(e: BaseException) -> str:
  return f'{type(e).__name__}: {e}'.splitlines()[0] if str(e) else type(e).__name__


def write_config(workdir: str, config) -> None:
  """<workdir>/config.json: the config as JSON (less resume / overwrite)."""
  tables.write_json(os.path.join(workdir, CONFIG_FILE), config_dict(config))


def saved_config(run_dir: str) -> dict | None:
  """The config.json a run saved, as JSON data (None when there is none)."""
  path = os.path.join(run_dir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def prepare(workdir: str, config, section_defaults=None) -> None:
  """Creates the workdir, refusing one that holds a different config unless config.overwrite."""
  os.makedirs(workdir, exist_ok=True)
  new = config_dict(config)
  old = saved_config(workdir)
  if old is not None:
    old = _without_default_sections(old, new, section_defaults or {})
    added = sorted(_added_keys(old, new))
    if old != _without(new, added) and not config.overwrite:
      diff = sorted(_diff_keys(old, new))
      raise ValueError(
        f'Workdir {workdir} holds a run with a different config (keys {diff[:8]}); '
        'use another --workdir or pass --config.overwrite=True to start it afresh.'
      )
    if old != _without(new, added):
      clear(workdir)
    elif added:  # Saved by an older jaxland: options added since then, at their current values.
      logging.warning('Resuming a run saved before these config keys existed: %s', added)
  elif config.overwrite:
    clear(workdir)
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
