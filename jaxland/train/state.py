"""The one training state: a flax struct of plain pytrees, so it jits, shards and checkpoints."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxland import models


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly: step, weights, BN statistics, optimizer, rng."""

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array  # Raw uint32 key; per-step keys are fold_in(rng, step).


def create_train_state(
  model,
  tx: optax.GradientTransformation,
  input_shape,
  init_seed: int,
  data_seed: int,
  train_data=None,
) -> TrainState:
  """A fresh state: weights from `init_seed` (and `train_data`, for models that initialize from
  it: models.init_variables); order, augmentation and dropout from `data_seed`."""
  params, batch_stats = models.init_variables(model, input_shape, init_seed, train_data)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=batch_stats,
    opt_state=tx.init(params),
    rng=jax.random.PRNGKey(data_seed),
  )
