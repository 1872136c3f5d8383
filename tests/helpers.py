"""Small helpers shared by the test files."""

import jax
import numpy as np


def flat(tree):
  """All leaves of a (device) pytree as one host vector, in tree order."""
  return np.concatenate([np.ravel(x) for x in jax.tree.leaves(jax.device_get(tree))])
