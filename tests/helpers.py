"""Small helpers shared by the test files."""

import jax
import numpy as np


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
  there, batches of 64; `overrides` maps dotted keys to each test's own settings."""
  from configs import default

  config = default.get_config()
  base = {
    'data.name': 'digits',
    'data.batch_size': 64,
    'data.eval_batch_size': 64,
    'model.hidden_sizes': (32,),
  }
  return set_keys(config, {**base, **(overrides or {})})
