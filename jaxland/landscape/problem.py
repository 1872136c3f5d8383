"""A trained model as a function of one flat parameter vector: the object every probe works on.

A `Problem` holds a Flax model at a checkpoint, its params raveled to a float32 vector theta
(jax.flatten_util.ravel_pytree order, the order jaxland.curvature's operators use) and the
normalised data splits on device. Probes see the model only through

  per_example(flat, x, y) -> (losses [B], correct [B])

(eval mode: BatchNorm running statistics, no dropout), so the same line-search, fit and
decomposition code runs on an explicit quadratic in the tests.
"""

import copy
import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxland import data, models, training
from jaxland.data import pipeline
from jaxland.rundir import checkpoints
from jaxland.rundir import workdir as workdir_lib
from jaxland.train import steps

# Config sections that describe probes, not training: dropped from the training run's config so
# changing a probe setting never invalidates (or retrains) the trained model.
PROBE_SECTIONS = ('landscape', 'intervene')


@dataclasses.dataclass
class Problem:
  """A model at a checkpoint, as a function of the flat params, with its data on device."""

  model: Any
  batch_stats: Any
  params: Any  # The params pytree (numpy or jax arrays).
  flat: jax.Array  # float32 [P]: the raveled params.
  unravel: Callable
  splits: dict  # split -> (x float32 normalised [N, ...], y int32 [N]) on device.
  step: int
  per_example: Callable  # (flat, x, y) -> (losses [B], correct [B]).
  cache: dict = dataclasses.field(default_factory=dict)  # Jitted helpers of this model.

  @property
  def dim(self) -> int:
    return int(self.flat.size)

  @property
  def num_train(self) -> int:
    return int(self.splits['train'][1].shape[0])

  def with_params(self, params, step: int | None = None) -> 'Problem':
    """The same model and data at other params (e.g. a trajectory point)."""
    flat, unravel = ravel_pytree(params)
    return dataclasses.replace(
      self,
      params=params,
      flat=jnp.asarray(flat, jnp.float32),
      unravel=unravel,
      step=self.step if step is None else step,
    )


def model_per_example(model, batch_stats, unravel) -> Callable:
  """per_example(flat, x, y) -> (cross-entropy [B], correct [B]) of a Flax model in eval mode."""

  def per_example(flat, x, y):
    variables = {'params': unravel(flat)}
    if batch_stats:
      variables['batch_stats'] = batch_stats
    logits = model.apply(variables, x, train=False).astype(jnp.float32)
    correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
    return steps.cross_entropy(logits, y), correct

  return per_example


def batched(x, y, batch_size: int):
  """Splits (x [N, ...], y [N]) into [n, batch_size, ...] zero-padded batches and a mask [n, b]."""
  n = int(y.shape[0])
  batch_size = max(1, min(int(batch_size), n))
  nb = -(-n // batch_size)
  pad = nb * batch_size - n

  def split(a):
    a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
    return a.reshape((nb, batch_size) + a.shape[1:])

  mask = (jnp.arange(nb * batch_size) < n).astype(jnp.float32).reshape(nb, batch_size)
  return split(x), split(y), mask


def mean_metrics(per_example, flat, x, y, batch_size: int = 1000) -> dict:
  """{'loss', 'accuracy'} means over all examples, by a lax.map over padded batches (jit-able)."""
  xb, yb, mb = batched(x, y, batch_size)

  def one(batch):
    xi, yi, mi = batch
    loss, correct = per_example(flat, xi, yi)
    return jnp.sum(loss * mi), jnp.sum(correct * mi)

  loss, correct = jax.lax.map(one, (xb, yb, mb))
  n = jnp.sum(mb)
  return {'loss': jnp.sum(loss) / n, 'accuracy': jnp.sum(correct) / n}


def evaluate(problem: Problem, split: str, flat=None, batch_size: int = 1000) -> dict:
  """Loss and accuracy of `split` at `flat` (default the problem's params), as floats."""
  flat = problem.flat if flat is None else flat
  key = ('metrics', batch_size)
  if key not in problem.cache:
    per_example = problem.per_example
    problem.cache[key] = jax.jit(lambda f, x, y: mean_metrics(per_example, f, x, y, batch_size))
  x, y = problem.splits[split]
  out = problem.cache[key](jnp.asarray(flat, jnp.float32), x, y)
  return {k: float(v) for k, v in out.items()}


def normalised_splits(dataset, names=('train', 'val', 'test')) -> dict:
  """split -> (normalised float32 images, int32 labels) as device arrays, for the splits present."""
  out = {}
  for name in names:
    arrays = getattr(dataset, name)
    if arrays is not None:
      x = pipeline.normalize(jnp.asarray(arrays[0]), dataset.mean, dataset.std)
      out[name] = (x, jnp.asarray(arrays[1], jnp.int32))
  return out


def make_problem(model, params, batch_stats, splits, step=0) -> Problem:
  """A Problem from its pieces (params: any pytree of float arrays)."""
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
  flat, unravel = ravel_pytree(params)
  batch_stats = jax.tree.map(jnp.asarray, batch_stats or {})
  return Problem(
    model=model,
    batch_stats=batch_stats,
    params=params,
    flat=jnp.asarray(flat, jnp.float32),
    unravel=unravel,
    splits=splits,
    step=int(step),
    per_example=model_per_example(model, batch_stats, unravel),
  )


def load_problem(config, ref: str) -> Problem:
  """The checkpoint '<run dir>[:step]' of a run trained with config's data and model sections."""
  run_dir, _ = checkpoints.parse_checkpoint_ref(ref)
  workdir_lib.check_same_run(config, run_dir)
  dataset = data.load_dataset(config.data)
  model = models.from_config(config.model, dataset.num_classes)
  params, batch_stats, step = checkpoints.load_params(ref)
  return make_problem(model, params, batch_stats, normalised_splits(dataset), step)


def training_config(config):
  """A copy of config that trains (task 'train'), without the probe sections."""
  d = copy.deepcopy(config.to_dict())
  for section in PROBE_SECTIONS:
    d.pop(section, None)
  d['task'] = 'train'
  d['overwrite'] = True  # The run dir is ours: retrain when the training settings changed.
  return ml_collections.ConfigDict(d)


def resolve_run(config, workdir: str) -> str:
  """The checkpoint ref to probe: config.checkpoint, else workdir when it holds checkpoints, else
  config trained (task 'train') into <workdir>/train, reusing a finished run of the same config."""
  if config.checkpoint:
    return config.checkpoint
  if checkpoints.exists(workdir):
    return workdir
  return ensure_trained(config, os.path.join(workdir, 'train'))


def ensure_trained(config, train_dir: str) -> str:
  """Trains config (task 'train') into train_dir unless a finished run of it is there."""
  cfg = training_config(config)
  same = workdir_lib.saved_config(train_dir) == workdir_lib.config_dict(cfg)
  if not (same and workdir_lib.read_status(train_dir).get('status') == 'done'):
    summary = workdir_lib.run_task(training.TASK, cfg, train_dir)
    if summary['status'] != 'done':
      raise RuntimeError(f'training in {train_dir} ended with status {summary["status"]!r}')
  return train_dir


def predict(problem: Problem, split: str, flat=None, batch_size: int = 1000) -> np.ndarray:
  """Eval-mode logits [N, K] of `split` at `flat` (default the problem's params), numpy."""
  flat = problem.flat if flat is None else jnp.asarray(flat, jnp.float32)
  x, _ = problem.splits[split]
  key = ('logits', batch_size)
  if key not in problem.cache:
    model, batch_stats, unravel = problem.model, problem.batch_stats, problem.unravel

    def logits(flat, x):
      xb, _, _ = batched(x, jnp.zeros(x.shape[0], jnp.int32), batch_size)
      variables = {'params': unravel(flat)}
      if batch_stats:
        variables['batch_stats'] = batch_stats
      out = jax.lax.map(lambda xi: model.apply(variables, xi, train=False), xb)
      return out.reshape(-1, out.shape[-1])[: x.shape[0]].astype(jnp.float32)

    problem.cache[key] = jax.jit(logits)
  return np.asarray(problem.cache[key](flat, x))


def train_gradient(problem: Problem, batch_size: int = 1000) -> np.ndarray:
  """The gradient of the mean train loss at problem.flat, float64."""
  x, y = problem.splits['train']
  fn = jax.jit(jax.grad(lambda f: mean_metrics(problem.per_example, f, x, y, batch_size)['loss']))
  return np.asarray(fn(problem.flat), np.float64)


def split_metrics(problem: Problem, flat, splits=('train', 'test')) -> dict:
  """{<split>_loss, <split>_accuracy, ...} of `flat` on each split the problem has."""
  out = {}
  for split in splits:
    if split in problem.splits:
      out |= {f'{split}_{k}': v for k, v in evaluate(problem, split, flat).items()}
  return out
