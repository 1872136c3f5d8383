"""Small helpers shared by the test files."""

import jax
import numpy as np

from jaxland.train import callbacks


def flat(tree):
  """All leaves of a (device) pytree as one host vector, in tree order."""
  return np.concatenate([np.ravel(x) for x in jax.tree.leaves(jax.device_get(tree))])


def set_keys(config, overrides: dict):
  """Sets dotted keys ('train.num_epochs') of a ConfigDict; returns it."""
  for key, value in overrides.items():
    *sections, leaf = key.split('.')
    node = config
    for section in sections:
      node = node[section]
    node[leaf] = value
  return config


def digits_config(overrides: dict | None = None):
  """A seconds-long run: an MLP (32 hidden units) on scikit-learn's digits, bundled and always
  there, batches of 64; `overrides` maps dotted keys to each test's own settings. A research
  line's section (repulsion, lr_range, ...) is added with its defaults when a key names it."""
  from configs import default
  from jaxland import config as config_lib

  config = default.get_config()
  base = {
    'data.name': 'digits',
    'data.batch_size': 64,
    'data.eval_batch_size': 64,
    'model.hidden_sizes': (32,),
  }
  overrides = {**base, **(overrides or {})}
  for name, line in config_lib.SECTIONS.items():
    if any(key.startswith(f'{name}.') for key in overrides):
      config[name] = line.defaults()
  return set_keys(config, overrides)


def num_train(config) -> int:
  """Training examples of config's data after its validation split and subset (loaded, not
  guessed)."""
  from jaxland import data

  return len(data.load_dataset(config.data).train[1])


class StopAt(callbacks.Callback):
  """A loop callback that asks the run to stop after `step`, as SIGTERM does."""

  every_steps = 1

  def __init__(self, step):
    self.stop_step = step

  def on_step(self, run):
    run.stop_requested = run.step == self.stop_step
    return {}
