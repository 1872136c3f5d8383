"""The table of tasks `config.task` can name: name -> 'module:function(config, workdir)'.

Kept apart from main.py so config validation can list the names without importing the tasks.
"""

import importlib

TASKS = {
  'train': 'jaxland.train.loop:train_and_evaluate',
}


def get_task(name: str):
  """The entry function of task `name`."""
  if name not in TASKS:
    raise ValueError(f'Unknown task {name!r} (config key task); choose from {sorted(TASKS)}')
  module, function = TASKS[name].split(':')
  return getattr(importlib.import_module(module), function)
