"""The task table and the one task runner: `run(config, workdir)` validates the config once,
then runs the task its `task` key names, recording status (running -> done | diverged | failed
| interrupted, in a finally) and its summary in the task's record directory."""

import dataclasses
import functools
import os

from jaxland import config as config_lib
from jaxland import training
from jaxland import validation as v
from jaxland.data import eda
from jaxland.distance import ensemble
from jaxland.landscape import task as landscape_task
from jaxland.landscape.intervene import task as intervene_task
from jaxland.lr import range_test
from jaxland.rundir import workdir as workdir_lib
from jaxland.spectrum import task as spectrum_task

Task = workdir_lib.Task

# name -> the task, where its record lives, and the research-line sections it reads.
TASKS = {
  'train': training.TASK,
  'eda': Task(eda.run, summary_file='eda.json'),
  'lr_range': Task(range_test.run, guarded=True, sections=('lr_range',), check=training.check),
  'ensemble': Task(ensemble.run, ensemble.record_dir, sections=('repulsion',)),
  'spectrum': Task(spectrum_task.run, spectrum_task.record_dir, sections=('spectrum',)),
  'landscape': Task(landscape_task.run, landscape_task.record_dir, sections=('landscape',)),
  'intervene': Task(
    intervene_task.run, intervene_task.record_dir, sections=('landscape', 'intervene')
  ),
}


def validate(config, num_devices: int | None = None) -> None:
  """The task name, then jaxland.config.validate with the sections that task reads."""
  v.choice(config, 'task', TASKS)
  config_lib.validate(config, num_devices, needs=TASKS[config.task].sections)


def run(config, workdir: str, **task_kwargs) -> dict:
  """Validates `config` once, then runs its task in `workdir` with its record; the summary."""
  validate(config)
  print(f'[jaxland] task {config.task}, workdir {os.path.abspath(workdir)}', flush=True)
  task = TASKS[config.task]
  if task_kwargs:  # Tests hand the train task extra callbacks.
    task = dataclasses.replace(task, run=functools.partial(task.run, **task_kwargs))
  return workdir_lib.run_task(task, config, workdir, config_lib.section_defaults())
