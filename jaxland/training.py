"""The train task: the one loop, handed the callbacks a config asks for (the callback table).

Apart from jaxland.tasks so that research lines which train runs themselves (landscape) can
use it without importing the task table, which imports them.
"""

import jax
import jax.numpy as jnp

from jaxland import data, models, validation
from jaxland.distance import anchors, settings
from jaxland.optim import build, groups
from jaxland.rundir import workdir as workdir_lib
from jaxland.spectrum import callback as spectrum_callback
from jaxland.train import loop, population

# Factories `(config) -> Callback | None`, one per research line that hooks into training.
CALLBACKS = [anchors.anchor_callback, spectrum_callback.spectrum_callback]


def callbacks_for(config) -> list:
  """The callbacks `config` asks for (anchors, spectra, ...), in table order."""
  made = [factory(config) for factory in CALLBACKS]
  return [cb for cb in made if cb is not None]


def train(config, workdir: str, callbacks=()) -> dict:
  """Trains `config` in `workdir` with `callbacks` plus those the config asks for; the summary.
  A config with population axes trains all its members as one state (train.population)."""
  if population.enabled(config):
    return population.train(config, workdir, lambda c: [*callbacks, *callbacks_for(c)])
  return loop.train_and_evaluate(config, workdir, [*callbacks, *callbacks_for(config)])


def check(config) -> None:
  """What a run needs that validation cannot see, before anything is written: its data (and
  sizes that fit it) and the checkpoint it anchors to. BadInput naming the key otherwise."""
  try:
    dataset = data.load_dataset(config.data)
    steps = loop.schedule_steps(config, len(dataset.train[1]))
    build.hyperparameter_fns(config, *steps)  # Schedules that need the run's length.
  except (data.DataUnavailableError, validation.BadInput):
    raise
  except ValueError as e:
    raise validation.BadInput(str(e)) from None
  if 'repulsion' in config:
    settings.check_anchor_from(config)
  check_param_groups(config, dataset)


def check_param_groups(config, dataset) -> None:
  """Every optim.lr_scales / optim.freeze / optim.muon.pattern pattern matches a parameter of this
  model (a pattern that matches nothing is a typo that would silently train everything), and
  Muon's only matrices."""
  rules = {key: tuple(p for p, _ in config.optim[key]) for key in ('lr_scales', 'freeze')}
  rules['muon.pattern'] = tuple(filter(None, [config.optim.muon.pattern]))
  if not any(rules.values()):
    return
  model = models.from_config(config.model, dataset.num_classes)
  x = jnp.zeros((1, *dataset.train[0].shape[1:]), jnp.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))['params']
  leaves = dict(
    (groups.path_name(p), leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]
  )
  for key, patterns in rules.items():
    for pattern, paths in groups.matched(shapes, patterns).items():
      if not paths:
        validation.fail(
          f'optim.{key}', pattern, f'it matches no parameter; they are {list(leaves)}'
        )
      flat = [n for n in paths if leaves[n].ndim < 2]
      if key == 'muon.pattern' and flat:
        validation.fail(f'optim.{key}', pattern, f'Muon needs matrices; it matches {flat}')


TASK = workdir_lib.Task(train, guarded=True, check=check)
