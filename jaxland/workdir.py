"""A run directory's small files: the saved config, the status file and the summary.

Each run directory holds `config.json` (what ran), `status.json` (running -> done / diverged /
failed / interrupted, written in a `finally`) and `summary.json` (the headline numbers). A rerun in
the same workdir resumes only with the same config; keys the saved config lacks (options added to
jaxland after it was written) are accepted at their current values, with a warning.
"""

import json
import os
import shutil
import time

from absl import logging

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


def prepare(workdir: str, config) -> None:
  """Creates the workdir, refusing one that holds a different config unless config.overwrite."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, 'config.json')
  new = config_dict(config)
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
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
  with open(path, 'w') as f:
    json.dump(new, f, indent=2, sort_keys=True)


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


def write_json(workdir: str, name: str, data: dict) -> None:
  with open(os.path.join(workdir, name), 'w') as f:
    json.dump(data, f, indent=2, sort_keys=True, default=float)


def check_same_run(config, run_dir: str, hint: str = '') -> None:
  """Raises unless `run_dir` is a training run made with config's data and model sections.

  Tools that rebuild a run's model and data to read its checkpoints (ensembles, landscapes) call
  this so that they never evaluate weights on the wrong model or data.
  """
  path = os.path.join(run_dir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: {run_dir} must be a training run directory')
  with open(path) as f:
    saved = json.load(f)
  mine = config_dict(config)
  for section in ('data', 'model'):
    theirs, ours = saved.get(section) or {}, mine.get(section) or {}
    if theirs != _without(ours, _added_keys(theirs, ours)):  # Keys added since: as in prepare.
      raise ValueError(
        f'config.{section} differs from the run in {run_dir}; pass the config the run was '
        f'trained with{hint}'
      )
