"""The one training loop: epochs of jitted steps, evaluation, checkpoints, logging, callbacks.

The only code that walks steps and epochs. Research lines extend it through the callbacks they
hand it (train.callbacks) or take steps from its Stepper (range tests, continuations).
"""

import dataclasses
import functools
import math
import signal
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import parameter_overview, periodic_actions

from jaxland import data, models, runtime
from jaxland.data import pipeline
from jaxland.optim import build
from jaxland.output import progress as progress_lib
from jaxland.output.metrics import RunWriter
from jaxland.rundir import artifacts, checkpoints
from jaxland.train import state as state_lib
from jaxland.train import steps

# Dispatch may run at most this many steps ahead of the device. More buys nothing (the device stays
# busy), and unbounded run-ahead deadlocks XLA:CPU's collectives when many virtual devices share
# few cores (seen with 8 virtual devices on 2 cores: an all-reduce rendezvous timed out).
MAX_STEPS_IN_FLIGHT = 2


@dataclasses.dataclass
class Run:
  """What a callback can see and change: the config, data, model, state and evaluation."""

  config: Any
  workdir: str
  dataset: Any
  model: Any
  tx: Any
  mesh: Any
  writer: RunWriter
  steps_per_epoch: int
  total_steps: int
  state: Any = None
  device_data: dict = dataclasses.field(default_factory=dict)
  eval_fns: dict = dataclasses.field(default_factory=dict)
  stop_requested: bool = False

  @property
  def step(self) -> int:
    return int(self.state.step)

  def evaluate(self, split: str, params=None, batch_stats=None) -> dict:
    """Mean loss and accuracy over every example of `split` ('val' or 'test')."""
    params = self.state.params if params is None else params
    batch_stats = self.state.batch_stats if batch_stats is None else batch_stats
    sums = jax.device_get(self.eval_fns[split](params, batch_stats))
    return {'loss': sums['loss_sum'] / sums['count'], 'accuracy': sums['correct'] / sums['count']}

  def predict(self, split: str, params, batch_stats) -> np.ndarray:
    """Eval-mode logits [num_examples, num_classes] of `split`, in example order."""
    return np.asarray(self.eval_fns[f'{split}/logits'](params, batch_stats))


def schedule_steps(config, num_train: int) -> tuple[int, int]:
  """(steps per epoch, total steps) of `config` on `num_train` training examples: the one place
  epochs become steps (full batches per epoch; train.max_steps caps the total)."""
  try:
    steps_per_epoch = pipeline.steps_per_epoch(num_train, config.data.batch_size)
  except ValueError:
    raise ValueError(
      f'data.batch_size: {config.data.batch_size} is not allowed; it exceeds the {num_train} '
      'training examples'
    ) from None
  total = steps_per_epoch * config.train.num_epochs
  if config.train.max_steps:
    total = min(total, config.train.max_steps)
  return steps_per_epoch, total


def build_run(
  config, workdir: str, writer: RunWriter | None, mesh=None, dataset=None, fresh_state=True
) -> Run:
  """Loads data onto the device, builds model, optimizer and a fresh state (over all devices;
  fresh_state=False leaves run.state None, for a caller that makes its own, as populations do)."""
  dataset = data.load_dataset(config.data) if dataset is None else dataset
  logging.info('Data: %s', dataset.source)
  print(f'[jaxland] data: {dataset.name}: {dataset.source}', flush=True)
  mesh = pipeline.make_mesh() if mesh is None else mesh
  replicated = pipeline.replicated(mesh)
  model = models.from_config(config.model, dataset.num_classes)
  steps_per_epoch, total_steps = schedule_steps(config, len(dataset.train[1]))
  tx = build.make_optimizer(config, steps_per_epoch, total_steps)
  run = Run(config, workdir, dataset, model, tx, mesh, writer, steps_per_epoch, total_steps)
  if fresh_state:
    init_seed, data_seed = artifacts.seeds(config)
    state = state_lib.create_train_state(
      model, tx, dataset.train[0].shape[1:], init_seed, data_seed, init_data(dataset)
    )
    run.state = pipeline.put_global(state, replicated)
  run.device_data = {
    split: pipeline.put_global(arrays, replicated)
    for split, arrays in (('train', dataset.train), ('val', dataset.val), ('test', dataset.test))
    if arrays is not None
  }
  _build_eval_fns(run)
  return run


def init_data(dataset) -> tuple:
  """What a model that initializes from data sees (models.init_variables): the uint8 training
  images and the statistics the steps normalize with."""
  return dataset.train[0], dataset.mean, dataset.std


def _build_eval_fns(run: Run) -> None:
  """One jitted function per eval split: sums over all its padded batches in one lax.map."""
  for split, (images, labels) in run.device_data.items():
    if split != 'train':
      sums, logits = split_eval_fns(run, images, labels)
      run.eval_fns[split] = jax.jit(sums)
      run.eval_fns[f'{split}/logits'] = jax.jit(logits)


def split_eval_fns(run: Run, images, labels, eval_batch_size: int | None = None):
  """(loss/accuracy sums, logits in example order) over every example of device arrays.

  Both are functions of (params, batch_stats), to be jitted; batches are padded and masked.
  """
  mean, std, model, n = run.dataset.mean, run.dataset.std, run.model, len(labels)
  tta = int(run.config.train.tta)
  batch = min(eval_batch_size or run.config.data.eval_batch_size, n)
  idx, mask = (jnp.asarray(a) for a in pipeline.eval_batches(n, batch))

  def sums(params, batch_stats):
    def one(batch):
      return steps.eval_step(
        params, batch_stats, images, labels, *batch, model=model, mean=mean, std=std, tta=tta
      )

    return jax.tree.map(jnp.sum, jax.lax.map(one, (idx, mask)))

  def logits(params, batch_stats):
    def one(i):
      return steps.predict_logits(
        params, batch_stats, images, labels, i, model=model, mean=mean, std=std, tta=tta
      )

    out = jax.lax.map(one, idx)
    return out.reshape(-1, out.shape[-1])[:n]

  return sums, logits


def train_step_fn(run: Run, **overrides):
  """steps.train_step bound to this run's model, optimizer, augmentation and statistics (what
  make_train_step jits; populations vmap it, with a per-member `label_smoothing`)."""
  bound = dict(
    model=run.model,
    tx=run.tx,
    augment=run.config.data.augment.to_dict(),
    mean=run.dataset.mean,
    std=run.dataset.std,
    batch_sharding=pipeline.batch_sharding(run.mesh),
    label_smoothing=float(run.config.train.label_smoothing),
  )
  return functools.partial(steps.train_step, **(bound | overrides))


def make_train_step(run: Run):
  """The jitted, state-donating train step of this run."""
  return jax.jit(
    train_step_fn(run), donate_argnums=(0,), out_shardings=pipeline.replicated(run.mesh)
  )


class Stepper:
  """Takes train steps on the run's batch order: the one place an epoch's order is made.

  Epoch e of this stepper uses the order of epoch first_epoch + e of the run's data seed (a pure
  function of both, pipeline.epoch_batches), so a continuation can carry on a run's sequence.
  The step counter is read from the first state once and then counted on the host, and dispatch
  runs at most MAX_STEPS_IN_FLIGHT steps ahead of the device. `train_step(state, images, labels,
  epoch_idx, *extra)` defaults to the run's own (make_train_step).
  """

  def __init__(self, run: Run, train_step=None, first_epoch: int = 0):
    self.run, self.first_epoch = run, first_epoch
    self.train_step = make_train_step(run) if train_step is None else train_step
    self.data_seed = artifacts.seeds(run.config)[1]
    self._orders = None  # epoch_batches compiled for this run's shapes (at -O1 on the CPU).
    self.step, self._epoch, self._idx, self._in_flight = None, None, None, []

  def order(self, epoch: int):
    """The [steps_per_epoch, batch] example indices of this stepper's epoch `epoch` (0-based)."""
    if epoch != self._epoch:
      seed, run_epoch = int(self.data_seed), int(self.first_epoch + epoch)
      if self._orders is None:
        n, batch = len(self.run.dataset.train[1]), self.run.config.data.batch_size
        orders = jax.jit(
          pipeline.epoch_batches,
          static_argnums=(2, 3),
          out_shardings=pipeline.replicated(self.run.mesh),
        )
        self._orders = runtime.compiled_cold(orders, seed, run_epoch, n, batch)
      self._idx = self._orders(seed, run_epoch)
      self._epoch = epoch
    return self._idx

  def compile(self, state, *extra) -> float:
    """Compiles the train step for `state` ahead of the first step (so no step compiles and the
    compile time is measured apart): the seconds it took."""
    images, labels = self.run.device_data['train']
    idx = self.order(int(state.step) // self.run.steps_per_epoch)
    self.train_step = AheadOfTime(self.train_step, state, images, labels, idx, *extra)
    return self.train_step.seconds

  def __call__(self, state, *extra):
    """One train step from `state`: (new state, metrics as device arrays)."""
    if self.step is None:
      self.step = int(state.step)
    images, labels = self.run.device_data['train']
    idx = self.order(self.step // self.run.steps_per_epoch)
    state, metrics = self.train_step(state, images, labels, idx, *extra)
    self.step += 1
    self._in_flight.append(metrics['loss'])
    if len(self._in_flight) > MAX_STEPS_IN_FLIGHT:
      self._in_flight.pop(0).block_until_ready()
    return state, metrics


def train_and_evaluate(config, workdir: str, callbacks=()) -> dict:
  """Trains `config` in `workdir` (resuming when it can), handed `callbacks`; the run's summary.

  The run record (config.json, status, summary.json) is the caller's: jaxland.tasks.run.
  """
  writer = RunWriter(workdir)
  try:
    run = build_run(config, workdir, writer)
    with _stop_on_signals(run):
      return _train(run, list(callbacks))
  finally:
    writer.close()


class _stop_on_signals:
  """SIGTERM / SIGINT ask the loop to save and stop at the next step instead of dying."""

  def __init__(self, run: Run):
    self.run = run
    self.previous = {}

  def __enter__(self):
    if _in_main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self.previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    logging.warning('Signal %d: saving a checkpoint and stopping.', signum)
    self.run.stop_requested = True

  def __exit__(self, *exc):
    for sig, handler in self.previous.items():
      signal.signal(sig, handler)


def _in_main_thread() -> bool:
  return threading.current_thread() is threading.main_thread()


def _initial_meta() -> dict:
  return {
    'epoch': 0, 'best': None, 'best_step': None, 'bad_epochs': 0, 'first_loss': None,
    'clock': {'elapsed': 0.0, 'train': 0.0, 'compile': 0.0, 'to_target': None},
  }  # fmt: skip


class AheadOfTime:
  """A jitted function compiled ahead of its first call for `args` (timed: `seconds`). A call
  with arguments it was not compiled for (other shardings, e.g. params a callback loaded) goes
  through the jitted function, which compiles the same program for them."""

  def __init__(self, jitted, *args):
    t0 = time.time()
    self.jitted, self.compiled = jitted, jitted.lower(*args).compile()
    self.seconds = time.time() - t0

  def __call__(self, *args):
    try:
      return self.compiled(*args)
    except (TypeError, ValueError):  # Raised before anything runs or is donated.
      return self.jitted(*args)


def compile_evals(run: Run) -> float:
  """Compiles every split's eval sums ahead of the first evaluation: the seconds it took."""
  seconds = 0.0
  for split in ('val', 'test'):
    if split in run.eval_fns:
      fn = AheadOfTime(run.eval_fns[split], run.state.params, run.state.batch_stats)
      run.eval_fns[split], seconds = fn, seconds + fn.seconds
  return seconds


class _Clock:
  """Wall time of the run, carried over resumes in meta['clock']: elapsed (compiles, steps and
  evaluations), train (the epochs' steps), compile (the step and the evals, compiled ahead), and
  the elapsed time at the first evaluation whose test/accuracy reaches train.target_accuracy."""

  def __init__(self, meta: dict, target: float):
    meta.setdefault('clock', _initial_meta()['clock'])
    self.clock, self.target = meta['clock'], target
    self.t0, self.base = time.time(), self.clock['elapsed']

  def tick(self, scalars: dict, train_seconds: float) -> None:
    c = self.clock
    c['elapsed'] = self.base + time.time() - self.t0
    c['train'] += train_seconds
    scalars.update(elapsed_time=c['elapsed'], train_time=c['train'])
    reached = self.target and scalars.get('test/accuracy', -1.0) >= self.target
    if reached and c['to_target'] is None:
      c['to_target'] = c['elapsed']

  def mark(self) -> None:
    """The elapsed time now: a run that stops between evaluations (diverged, interrupted)."""
    self.clock['elapsed'] = self.base + time.time() - self.t0

  def summary(self) -> dict:
    c = self.clock
    out = {'seconds': c['elapsed'], 'train_seconds': c['train'], 'compile_seconds': c['compile']}
    if self.target:
      out.update(target_accuracy=self.target, seconds_to_target=c['to_target'])
      if c['to_target'] is not None:
        out['seconds_to_target_without_compile'] = c['to_target'] - c['compile']
    return out


def _train(run: Run, callbacks: list) -> dict:
  config, workdir = run.config, run.workdir
  best_key = best_metric_key(config, has_val='val' in run.eval_fns)
  manager = checkpoints.make_manager(
    workdir, config.train.keep_checkpoints, best_key, _mode(best_key)
  )
  try:
    return _train_epochs(run, callbacks, manager, best_key)
  finally:
    manager.close()


class _Progress:
  """The projected wall time of the run, printed once after its first timed steps (the first
  step, which compiles, is not timed), with a warning above a day, and the first losses."""

  TIMED_STEPS = 10

  def __init__(self, run: Run):
    self.run, self.start, self.t0, self.loss0 = run, run.step, None, None

  def after(self, step: int, metrics) -> None:
    if step == self.start + 1:
      self.loss0, self.t0 = float(metrics['loss']), time.time()
    elif self.t0 is not None and step == self.start + 1 + self.TIMED_STEPS:
      loss = float(metrics['loss'])  # Waits for this step: the interval is device time.
      per_step = (time.time() - self.t0) / self.TIMED_STEPS
      left = (self.run.total_steps - step) * per_step
      print(
        f'[jaxland] step {step}/{self.run.total_steps}: train loss {self.loss0:.4g} at step '
        f'{self.start + 1}, {loss:.4g} now; {1 / per_step:.3g} steps/s, about '
        f'{progress_lib.duration(left)} to go',
        flush=True,
      )
      if left > 86400:
        print(
          f'[jaxland] warning: this run needs about {progress_lib.duration(left)} on '
          f'{_hardware()}; a smaller variant (:smoke, :cpu) or a GPU fits better',
          flush=True,
        )
      self.t0 = None


def _hardware() -> str:
  devices = jax.devices()
  return f'{len(devices)} x {devices[0].device_kind} ({jax.default_backend()})'


def _host(metrics: list) -> list:
  """Per-step metric dicts as JSON-safe floats (exact float32 values) for a checkpoint's meta."""
  return [{k: float(v) for k, v in m.items()} for m in jax.device_get(metrics)]


def _from_host(metrics: list) -> list:
  return [{k: np.float32(v) for k, v in m.items()} for m in metrics]


def _train_epochs(run: Run, callbacks: list, manager, best_key: str) -> dict:
  """The epochs of `_train`, checkpointing with `manager`."""
  config, workdir = run.config, run.workdir
  meta = _initial_meta()
  pending, epoch_metrics = [], []  # Per-step metric dicts since the last log / in this epoch.
  if config.resume and manager.latest_step() is not None:
    run.state, meta, step = checkpoints.restore(manager, run.state, workdir)
    pending = _from_host(meta.pop('pending', []))
    epoch_metrics = _from_host(meta.pop('epoch_metrics', []))
    meta.setdefault('first_loss', None)
    run.writer.resume(step)  # Rows logged after the checkpoint will be logged again.
    print(f'[jaxland] resumed from step {run.step} in {workdir}', flush=True)
  else:
    parameter_overview.log_parameter_overview(run.state.params)
  for cb in callbacks:
    cb.on_start(run)

  take_step = Stepper(run)
  clock = _Clock(meta, float(config.train.target_accuracy))
  clock.clock['compile'] += take_step.compile(run.state) + compile_evals(run)
  spe = run.steps_per_epoch
  log_every = config.train.log_every_steps or spe
  traj_every = config.train.trajectory_every_steps
  step_callbacks = [cb for cb in callbacks if cb.every_steps > 0]
  report = periodic_actions.ReportProgress(
    num_train_steps=run.total_steps, writer=run.writer.writer
  )
  progress = _Progress(run)
  step = first_step = run.step
  t_run = time.time()
  if traj_every and step == 0:
    artifacts.save_trajectory(workdir, 0, run.state.params)
  status, message = 'done', ''

  def save(metric=None):
    meta.update(pending=_host(pending), epoch_metrics=_host(epoch_metrics))
    metrics = None if metric is None else {best_key: float(metric)}
    checkpoints.save(manager, step, run.state, meta, metrics=metrics)
    del meta['pending'], meta['epoch_metrics']

  while step < run.total_steps and status == 'done':
    epoch = step // spe  # 0-based epoch being trained.
    if config.train.save_batch_order and step % spe == 0:
      artifacts.save_batch_order(workdir, epoch + 1, take_step.order(epoch))
    t0 = time.time()
    epoch_end = min((epoch + 1) * spe, run.total_steps)
    while step < epoch_end:
      run.state, m = take_step(run.state)
      step += 1
      pending.append(m)
      epoch_metrics.append(m)
      report(step)
      progress.after(step, m)
      if step % log_every == 0:
        scalars = _log_train(run, step, pending)
        pending = []
        status, message = _check_loss(config, meta, scalars['train/loss'], step)
        if status != 'done':
          break
      if traj_every and step % traj_every == 0:
        artifacts.save_trajectory(workdir, step, run.state.params)
      for cb in step_callbacks:
        if step % cb.every_steps == 0:
          scalars = cb.on_step(run)
          if scalars:
            run.writer.write_scalars(step, scalars)
      if run.stop_requested and step < epoch_end:
        break
    if status != 'done':
      break
    if run.stop_requested and step < epoch_end:  # Mid-epoch: the epoch ends after the resume.
      meta['epoch'] = epoch
      save()
      status, message = 'interrupted', f'stopped by a signal at step {step}; rerun to resume'
      break
    jax.block_until_ready(run.state.params)
    epoch_time = time.time() - t0
    scalars = {'epoch': epoch + 1, 'epoch_time': epoch_time}
    scalars.update(_mean_metrics(epoch_metrics, 'train_epoch/'))
    epoch_metrics = []
    if (epoch + 1) % config.train.eval_every_epochs == 0 or step == run.total_steps:
      for split in ('val', 'test'):
        if split in run.eval_fns:
          scalars.update({f'{split}/{k}': v for k, v in run.evaluate(split).items()})
    for cb in callbacks:
      scalars.update(cb.on_epoch_end(run, epoch + 1) or {})
    clock.tick(scalars, epoch_time)
    run.writer.write_scalars(step, scalars)
    _print_epoch(run, epoch + 1, step, scalars, time.time() - t_run, step - first_step)
    bad = [
      k
      for k, v in scalars.items()
      if isinstance(v, float) and not math.isfinite(v) and k.split('/')[-1] in ('loss', 'accuracy')
    ]
    if bad:
      status, message = (
        'diverged',
        f'non-finite {bad[0]} ({scalars[bad[0]]}) after epoch {epoch + 1}',
      )
      break
    meta['epoch'] = epoch + 1
    stop_early = _update_best(config, best_key, meta, scalars, step)
    stop = run.stop_requested and step < run.total_steps  # A signal on the epoch's last step.
    if (
      (epoch + 1) % config.train.checkpoint_every_epochs == 0
      or step == run.total_steps
      or stop_early
      or stop
    ):
      save(scalars.get(best_key))
    if stop_early:
      message = (
        f'early stopping after epoch {epoch + 1}: no improvement for '
        f'{config.train.early_stopping_patience} epochs'
      )
      break
    if stop:
      status, message = 'interrupted', f'stopped by a signal at step {step}; rerun to resume'
  if status != 'done':
    clock.mark()
  summary = _summary(run, meta, status, message, step) | clock.summary()
  print(f'[jaxland] {status}: {summary_line(summary)}', flush=True)
  return summary


def _print_epoch(run: Run, epoch: int, step: int, scalars: dict, seconds: float, steps: int):
  """The one progress line per epoch: losses, accuracies and the time left at this pace."""
  shown = ('train_epoch/loss', 'val/accuracy', 'test/accuracy')
  parts = [f'{k.replace("train_epoch/", "train ")} {scalars[k]:.4g}' for k in shown if k in scalars]
  left = seconds / max(steps, 1) * (run.total_steps - step)
  print(
    f'[jaxland] epoch {epoch}/{-(-run.total_steps // run.steps_per_epoch)} (step {step}): '
    + ', '.join(parts)
    + f'; {scalars["epoch_time"]:.1f} s, about {progress_lib.duration(left)} to go',
    flush=True,
  )


def _check_loss(config, meta: dict, loss: float, step: int) -> tuple[str, str]:
  """('diverged', why) for a non-finite train loss or one above train.diverge_factor x the first
  logged one; ('done', '') otherwise."""
  if not math.isfinite(loss):
    return 'diverged', f'non-finite train/loss ({loss}) at step {step}'
  if meta['first_loss'] is None:
    meta['first_loss'] = loss
  factor = config.train.diverge_factor
  if factor and loss > factor * meta['first_loss']:
    return 'diverged', (
      f'train/loss {loss:.4g} at step {step} is above train.diverge_factor ({factor:g}) x the '
      f'first logged loss ({meta["first_loss"]:.4g})'
    )
  return 'done', ''


def _mode(metric: str) -> str:
  return 'min' if metric.endswith('loss') else 'max'


def best_metric_key(config, has_val: bool) -> str:
  """The configured best metric, falling back from val/ to test/ when there is no val split."""
  key = config.train.best_metric
  if key.startswith('val/') and not has_val:
    key = 'test/' + key.split('/', 1)[1]
  return key


def _update_best(config, key: str, meta: dict, scalars: dict, step: int) -> bool:
  """Tracks the best metric; True when early stopping's patience ran out."""
  if key not in scalars:
    return False
  value = float(scalars[key])
  better = meta['best'] is None or (
    value > meta['best'] if _mode(key) == 'max' else value < meta['best']
  )
  if better:
    meta.update(best=value, best_step=step, best_epoch=meta['epoch'], best_key=key, bad_epochs=0)
  else:
    meta['bad_epochs'] += config.train.eval_every_epochs
  patience = config.train.early_stopping_patience
  return bool(patience) and meta['bad_epochs'] >= patience


def _mean_metrics(metric_list: list, prefix: str) -> dict:
  if not metric_list:
    return {}
  host = jax.device_get(metric_list)
  return {f'{prefix}{k}': float(np.mean([m[k] for m in host])) for k in host[0]}


def _log_train(run: Run, step: int, pending: list) -> dict:
  scalars = _mean_metrics(pending, 'train/')
  scalars.update({f'optim/{k}': v for k, v in build.current_hparams(run.state.opt_state).items()})
  run.writer.write_scalars(step, scalars)
  return {k: float(v) for k, v in scalars.items()}


def _summary(run: Run, meta: dict, status: str, message: str, step: int) -> dict:
  summary = {
    'status': status,
    'step': step,
    'epoch': meta['epoch'],
    'message': message,
    'dataset': run.dataset.name,
    'best': meta.get('best'),
    'best_key': meta.get('best_key'),
    'best_epoch': meta.get('best_epoch'),
  }
  if status == 'done':
    for split in ('val', 'test'):
      if split in run.eval_fns:
        summary.update({f'final_{split}_{k}': float(v) for k, v in run.evaluate(split).items()})
  return summary


def summary_line(summary: dict) -> str:
  """A one-line human summary of a finished run."""
  parts = [
    f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}'
    for k, v in summary.items()
    if k.startswith('final_') or k in ('step', 'epoch', 'best')
  ]
  if summary.get('message'):
    parts.append(summary['message'])
  return ', '.join(parts)
