"""Pure train and eval steps: (state, data) -> (state, metrics), jitted once by the loop.

The whole split lives on the device; a step receives the epoch's index matrix and gathers its own
batch (row `step % steps_per_epoch`), augments and normalizes it inside jit, so no host work sits
between steps.
"""

import jax
import jax.numpy as jnp
import optax

from jaxland.data import pipeline

# fold_in(rng, RUN_STREAM): randomness drawn once per run (alternating flips); steps use
# fold_in(rng, step) with step < RUN_STREAM.
RUN_STREAM = 2**31 - 1


def tta_logits(apply, x, level: int):
  """Logits of `apply` on [B, H, W, C] inputs with airbench's test-time augmentation: level 0
  none; 1 the mean of the image and its mirror; 2 half of that plus half the mean of the same
  over two one-pixel translations (reflect padding, shifted up-left and down-right)."""
  if level == 0:
    return apply(x)

  def mirrored(v):
    return 0.5 * apply(v) + 0.5 * apply(v[:, :, ::-1])

  logits = mirrored(x)
  if level == 1:
    return logits
  h, w = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
  shifted = 0.5 * (mirrored(padded[:, :h, :w]) + mirrored(padded[:, 2 : h + 2, 2 : w + 2]))
  return 0.5 * logits + 0.5 * shifted


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing=0.0) -> jax.Array:
  """Per-example softmax cross-entropy with integer labels, against one-hot targets smoothed by
  `label_smoothing` (a python 0 keeps the exact integer-label form; a traced value may vary by
  population member)."""
  logits = logits.astype(jnp.float32)
  if isinstance(label_smoothing, (int, float)) and label_smoothing == 0:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def apply_train(model, params, batch_stats, x, dropout_rng):
  """Train-mode forward pass: (logits, new batch_stats)."""
  logits, updates = model.apply(
    {'params': params, 'batch_stats': batch_stats},
    x,
    train=True,
    rngs={'dropout': dropout_rng},
    mutable=['batch_stats'],
  )
  return logits, updates.get('batch_stats', batch_stats)


def train_step(
  state,
  images,
  labels,
  epoch_indices,
  *,
  model,
  tx,
  augment,
  mean,
  std,
  batch_sharding=None,
  label_smoothing=0.0,
):
  """One SGD step on row `state.step % steps_per_epoch` of the epoch's [steps, batch] indices."""
  steps_per_epoch = epoch_indices.shape[0]
  idx = epoch_indices[state.step % steps_per_epoch]
  if batch_sharding is not None:
    idx = jax.lax.with_sharding_constraint(idx, batch_sharding)
  aug_rng, dropout_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))
  aug, flips = pipeline.augment_settings(augment), None
  if aug.flip and aug.flip_mode == 'alternating':
    key = jax.random.fold_in(state.rng, RUN_STREAM)
    flips = pipeline.alternating_flips(key, idx, state.step // steps_per_epoch, images.shape[0])
  x, y = pipeline.train_batch(images, labels, idx, aug_rng, aug, mean, std, batch_sharding, flips)
  return update_on_batch(
    state, x, y, dropout_rng, model=model, tx=tx, label_smoothing=label_smoothing
  )


def update_on_batch(state, x, y, dropout_rng, *, model, tx, label_smoothing=0.0):
  """The optimizer update on a ready (normalized, on-device) batch: (new state, metrics)."""

  def loss_fn(params):
    logits, batch_stats = apply_train(model, params, state.batch_stats, x, dropout_rng)
    return cross_entropy(logits, y, label_smoothing).mean(), (logits, batch_stats)

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {
    'loss': loss,
    'accuracy': jnp.mean(jnp.argmax(logits, -1) == y),
    'grad_norm': optax.global_norm(grads),
  }
  new_state = state.replace(
    step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
  )
  return new_state, metrics


def _eval_apply(model, params, batch_stats):
  return lambda x: model.apply({'params': params, 'batch_stats': batch_stats}, x, train=False)


def eval_step(params, batch_stats, images, labels, idx, mask, *, model, mean, std, tta=0):
  """Sums of loss and correct predictions over the masked (padded) eval batch (`tta`: the
  test-time augmentation level of tta_logits)."""
  x, y = pipeline.eval_batch(images, labels, idx, mean, std)
  logits = tta_logits(_eval_apply(model, params, batch_stats), x, tta)
  mask = mask.astype(jnp.float32)
  return {
    'loss_sum': jnp.sum(cross_entropy(logits, y) * mask),
    'correct': jnp.sum((jnp.argmax(logits, -1) == y) * mask),
    'count': jnp.sum(mask),
  }


def predict_logits(params, batch_stats, images, labels, idx, *, model, mean, std, tta=0):
  """Eval-mode logits of one gathered batch (ensembles and agreement use these)."""
  x, _ = pipeline.eval_batch(images, labels, idx, mean, std)
  return tta_logits(_eval_apply(model, params, batch_stats), x, tta).astype(jnp.float32)
