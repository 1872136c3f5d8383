"""Pure losses of a Flax model over one batch, the functions every curvature product differentiates.

`make_loss_fn` / `make_logits_fn` return jax.tree_util.Partial objects whose static part (the model
and settings) is hashable and whose leaves are the BatchNorm statistics, so compiled products and
solvers are reused across checkpoints of the same model.
"""

import dataclasses

import flax.errors
import flax.linen as nn
import jax.numpy as jnp
import optax
from jax.tree_util import Partial

BN_MODES = ('eval', 'train')
LOSSES = {'xent': optax.softmax_cross_entropy_with_integer_labels}


@dataclasses.dataclass(frozen=True)
class _ModelLogits:
  """Logits and per-example weights of a Flax model; hashable so compiled solvers are reused."""

  model: nn.Module
  bn_mode: str
  image_key: str
  mask_key: str

  def __call__(self, batch_stats, params, batch):
    variables = {'params': params}
    if batch_stats:
      variables['batch_stats'] = batch_stats
    x = batch[self.image_key]
    if self.bn_mode == 'eval':
      logits = self.model.apply(variables, x, train=False)
    else:
      try:
        logits, _ = self.model.apply(variables, x, train=True, mutable=['batch_stats'])
      except flax.errors.InvalidRngError as e:
        raise ValueError(
          "bn_mode='train' runs the model with train=True, which switches on dropout layers "
          'that are not controlled by a `dropout` field of the model; curvature needs a '
          "deterministic loss: use bn_mode='eval' or a model without dropout"
        ) from e
    mask = batch.get(self.mask_key)
    weights = jnp.ones(logits.shape[:1], logits.dtype) if mask is None else mask
    return logits, weights.astype(logits.dtype)


@dataclasses.dataclass(frozen=True)
class _ModelLoss:
  """Masked sum of per-example losses and the number of real examples of one batch."""

  logits_fn: _ModelLogits
  loss: str
  label_key: str

  def __call__(self, batch_stats, params, batch):
    logits, weights = self.logits_fn(batch_stats, params, batch)
    per_example = LOSSES[self.loss](logits, batch[self.label_key])
    return jnp.sum(weights * per_example), jnp.sum(weights)


def _deterministic(model, bn_mode):
  if bn_mode not in BN_MODES:
    raise ValueError(f'bn_mode={bn_mode!r}; choose from {BN_MODES}')
  if bn_mode == 'train' and getattr(model, 'dropout', 0.0):
    # Dropout has no params, so a clone with dropout=0 computes the same function minus the noise.
    model = model.clone(dropout=0.0)
  return model


def make_logits_fn(model, batch_stats, bn_mode='eval', *, image_key='image', mask_key='mask'):
  """Pure `logits_fn(params, batch) -> (logits [B, K], weights [B])` of a Flax model.

  bn_mode='eval' uses the running BatchNorm statistics (train=False, dropout off). bn_mode='train'
  normalises with the statistics of each batch (train=True) and discards their updates; dropout is
  switched off by cloning the model with dropout=0 when it has a `dropout` field, and a model with
  other dropout raises ValueError when traced. Weights are batch[mask_key] (1 for real examples,
  0 for padding) or all ones.
  """
  model = _deterministic(model, bn_mode)
  return Partial(_ModelLogits(model, bn_mode, image_key, mask_key), batch_stats)


def make_loss_fn(
  model,
  batch_stats,
  bn_mode='eval',
  loss='xent',
  *,
  image_key='image',
  label_key='label',
  mask_key='mask',
):
  """Pure `loss_fn(params, batch) -> (sum of per-example losses, example count)` of a Flax model.

  The dataset loss is sum(loss sums) / sum(counts) over the batches. See `make_logits_fn` for
  bn_mode and dropout; loss='xent' is softmax cross-entropy with integer labels. In train mode the
  batch statistics include padded examples, so use full batches there (model_operator checks).
  """
  if loss not in LOSSES:
    raise ValueError(f'loss={loss!r}; choose from {sorted(LOSSES)}')
  model = _deterministic(model, bn_mode)
  logits_fn = _ModelLogits(model, bn_mode, image_key, mask_key)
  return Partial(_ModelLoss(logits_fn, loss, label_key), batch_stats)
