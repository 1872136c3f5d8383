"""The table of tasks `config.task` can name: name -> 'module:function(config, workdir)'.

Kept apart from main.py so config validation can list the names without importing the tasks.
"""

import importlib

TASKS = {
  'train': 'jaxland.train.loop:train_and_evaluate',
  'eda': 'jaxland.eda:run',
  'lr_range': 'jaxland.lr_range:run_task',
  'ensemble': 'jaxland.ensemble:run_task',
  'spectrum': 'jaxland.spectrum:run_task',
  'landscape': 'jaxland.landscape.task:run_task',
  'intervene': 'jaxland.landscape.intervene:run_task',
}

# Callbacks the training loop builds from the config: 'module:function(config) -> Callback | None'.
CALLBACKS = [
  'jaxland.anchors:anchor_callback',
  'jaxland.spectrum_callback:spectrum_callback',
]


def load(spec: str):
  """The object named by 'module:attribute'."""
  module, attribute = spec.split(':')
  return getattr(importlib.import_module(module), attribute)


def get_task(name: str):
  """The entry function of task `name`."""
  if name not in TASKS:
    raise ValueError(f'Unknown task {name!r} (config key task); choose from {sorted(TASKS)}')
  return load(TASKS[name])
