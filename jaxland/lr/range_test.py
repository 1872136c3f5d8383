"""Range tests (Smith 2017): sweep one injected hyperparameter and record how training reacts.

No second training loop: `sweep` feeds a step function `(state, value) -> (state, metrics)` one
value per iteration. For image models that is the loop's own Stepper (its train step and batch
order) with the swept hyperparameter pinned in the optimizer state (optim.build.set_hparam), so
a range test trains exactly as a run does. Each test starts from a copy of the given state. A
test stops at a non-finite loss or a smoothed loss above `diverge_factor` x its best; suggestions
and the curve's shape come from jaxland.lr.suggest. Task `lr_range`: WORKSPACE.md.
"""

import copy
import dataclasses
import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxland.lr import report, suggest
from jaxland.optim import build
from jaxland.output.metrics import RunWriter
from jaxland.train import loop


def sweep_values(start: float, end: float, num_steps: int, spacing: str = 'log') -> np.ndarray:
  """The value each of `num_steps` (>= 2) iterations uses, from start to end (both included);
  log spacing needs start and end > 0."""
  if spacing == 'log':
    return np.geomspace(start, end, num_steps)
  return np.linspace(start, end, num_steps)


@dataclasses.dataclass
class RangeResult:
  """What one range test recorded, one entry per iteration run (the diverging one included)."""

  param: str
  spacing: str
  values: np.ndarray
  loss: np.ndarray
  smooth_loss: np.ndarray
  accuracy: np.ndarray  # Train accuracy of each batch (NaN when the step reports none).
  eval_iterations: np.ndarray  # Iterations after which the held-out subset was evaluated ...
  val_loss: np.ndarray  # ... and its loss and accuracy there.
  val_accuracy: np.ndarray
  status: str  # completed | diverged | non_finite
  fixed: dict = dataclasses.field(default_factory=dict)  # Hyperparameters pinned for the test.

  @property
  def eval_values(self) -> np.ndarray:
    return self.values[self.eval_iterations]

  @property
  def stop_value(self):
    """The value at which the test stopped for divergence (None when it completed)."""
    return None if self.status == 'completed' else float(self.values[-1])

  def analyze(self, min_lr_div: float = 4.0) -> dict:
    """Suggestions, the accuracy curve's shape and the one-cycle recommendation (JSON-ready).

    The loss rules are LR rules (fastai's); for another hyperparameter only the value of the
    lowest smoothed loss is given (the loss also falls because training goes on, so read it
    with the grid of short runs at fixed values).
    """
    if self.param == 'learning_rate':
      loss_rules = suggest.loss_suggestions(
        self.values, self.smooth_loss, log=self.spacing == 'log'
      )
    else:
      v, s = suggest.trim(self.values, self.smooth_loss, skip_start=0, skip_end=0)
      loss_rules = {'minimum_loss': float(v[np.argmin(s)]) if len(s) else None}
    acc_rules = suggest.accuracy_suggestions(self.eval_values, self.val_accuracy)
    out = {
      'param': self.param,
      'spacing': self.spacing,
      'fixed': self.fixed,
      'status': self.status,
      'iterations': len(self.values),
      'stop_value': self.stop_value,
      'suggestions': {**loss_rules, **acc_rules},
      'shape': suggest.classify_shape(self.val_accuracy),
      'best_val_accuracy': _max(self.val_accuracy),
      'min_smooth_loss': _min(self.smooth_loss),
    }
    if self.param == 'learning_rate':
      out['recommended'] = suggest.recommend(
        loss_rules, acc_rules, self.values, self.smooth_loss, min_lr_div
      )
    return out


def _max(a):
  a = np.asarray(a, float)
  return float(np.nanmax(a)) if np.isfinite(a).any() else None


def _min(a):
  a = np.asarray(a, float)
  return float(np.nanmin(a)) if np.isfinite(a).any() else None


class _Recorder:
  """Per-iteration losses, the bias-corrected EMA and the divergence rule."""

  def __init__(self, smoothing: float, diverge_factor: float):
    self.beta, self.factor = smoothing, diverge_factor
    self.loss, self.smooth, self.accuracy = [], [], []
    self.avg, self.best, self.status = 0.0, math.inf, 'completed'

  def add(self, metrics: list) -> bool:
    """Records host metric dicts in order; True (and stops recording) at divergence."""
    for m in metrics:
      loss = float(m['loss'])
      self.avg = self.beta * self.avg + (1 - self.beta) * loss
      smooth = self.avg / (1 - self.beta ** (len(self.loss) + 1))
      self.loss.append(loss)
      self.smooth.append(smooth)
      self.accuracy.append(float(m.get('accuracy', math.nan)))
      if not math.isfinite(loss) or not math.isfinite(smooth):
        self.status = 'non_finite'
      elif self.factor and smooth > self.factor * self.best:
        self.status = 'diverged'
      self.best = min(self.best, smooth)
      if self.status != 'completed':
        return True
    return False


def sweep(
  state,
  step_fn,
  values,
  *,
  eval_fn=None,
  eval_every: int = 0,
  diverge_factor: float = 4.0,
  smoothing: float = 0.98,
  sync_every: int = 10,
  param: str = 'learning_rate',
  spacing: str = 'log',
  fixed: dict | None = None,
) -> RangeResult:
  """Runs step_fn(state, values[i]) -> (state, {'loss', ['accuracy']}) for each i; see module doc.

  Works on a copy of `state` (step_fn may donate its input). eval_fn(state) -> {'loss',
  'accuracy'} runs after every `eval_every` iterations and where the test stops. Metrics reach
  the host every `sync_every` iterations (no host copy per step; dispatch runs at most
  loop.MAX_STEPS_IN_FLIGHT steps ahead); the record still stops at the exact diverging iteration
  (the final evaluation may see up to sync_every - 1 steps more).
  """
  values = np.asarray(values, float)
  state = jax.tree.map(jnp.copy, state)
  rec, evals, pending = _Recorder(smoothing, diverge_factor), [], []
  for i, value in enumerate(values):
    state, metrics = step_fn(state, value)
    pending.append(metrics)
    if len(pending) > loop.MAX_STEPS_IN_FLIGHT:  # Bounded run-ahead, as in the loop (XLA:CPU).
      jax.block_until_ready(pending[-loop.MAX_STEPS_IN_FLIGHT - 1]['loss'])
    at_eval = eval_fn is not None and eval_every > 0 and (i + 1) % eval_every == 0
    if at_eval or len(pending) >= sync_every or i == len(values) - 1:
      if rec.add(jax.device_get(pending)):
        break
      pending = []
      if at_eval:
        evals.append((i, eval_fn(state)))
  n = len(rec.loss)
  if eval_fn is not None and eval_every > 0 and (not evals or evals[-1][0] != n - 1):
    evals.append((n - 1, eval_fn(state)))  # Where it stopped (a diverged state counts too).
  return RangeResult(
    param=param,
    spacing=spacing,
    values=values[:n],
    loss=np.asarray(rec.loss),
    smooth_loss=np.asarray(rec.smooth),
    accuracy=np.asarray(rec.accuracy),
    eval_iterations=np.asarray([i for i, _ in evals], int),
    val_loss=np.asarray([float(e['loss']) for _, e in evals]),
    val_accuracy=np.asarray([float(e['accuracy']) for _, e in evals]),
    status=rec.status,
    fixed=dict(fixed or {}),
  )


# --- Image models: the loop's train step, driven --------------------------------------------------


def _pin(state, value, param, fixed):
  opt_state = build.set_hparam(state.opt_state, param, value)
  for name, v in fixed:
    opt_state = build.set_hparam(opt_state, name, v)
  return state.replace(opt_state=opt_state)


class ImageSweeper:
  """Range tests on a jaxland.train.loop.Run: its Stepper, with hyperparameters pinned."""

  def __init__(self, run, eval_size: int = 1000):
    self.run = run
    train_step = loop.make_train_step(run)

    def step(state, images, labels, epoch_idx, value, *, param, fixed):
      return train_step(_pin(state, value, param, fixed), images, labels, epoch_idx)

    self._step = jax.jit(step, donate_argnums=(0,), static_argnames=('param', 'fixed'))
    self.eval_split = 'val' if 'val' in run.device_data else 'test'
    self._eval = _subset_eval_fn(run, self.eval_split, eval_size)

  def step_fn(self, param: str, fixed: dict):
    """(state, value) -> (state, metrics): the run's next step with `param` = value."""
    fixed = tuple(sorted((k, float(v)) for k, v in fixed.items()))
    pinned = functools.partial(self._step, param=param, fixed=fixed)
    take_step = loop.Stepper(self.run, pinned)
    return lambda state, value: take_step(state, jnp.float32(value))

  def evaluate(self, state) -> dict:
    sums = jax.device_get(self._eval(state.params, state.batch_stats))
    return {'loss': sums['loss_sum'] / sums['count'], 'accuracy': sums['correct'] / sums['count']}

  def __call__(self, param, values, fixed=None, spacing='log', **kwargs) -> RangeResult:
    """A range test of `param` over `values` from the run's state, `fixed` hparams pinned."""
    fixed = dict(fixed or {})
    return sweep(
      self.run.state,
      self.step_fn(param, fixed),
      values,
      eval_fn=self.evaluate,
      param=param,
      spacing=spacing,
      fixed=fixed,
      **kwargs,
    )


def _subset_eval_fn(run, split: str, size: int):
  """Jitted (params, batch_stats) -> loss/correct/count sums over the first `size` of `split`."""
  images, labels = run.device_data[split]
  n = len(labels) if size <= 0 else min(size, len(labels))
  sums, _ = loop.split_eval_fns(run, images[:n], labels[:n])
  return jax.jit(sums)


# --- The task -------------------------------------------------------------------------------------


def _tests(config):
  """[(name, config, fixed)] for the sweep or for each overlay value."""
  c = config.lr_range
  base = f'{c.param}_{c.spacing}'
  if not c.overlay:
    return [(base, config, {})]
  tests = []
  for v in c.overlay_values:
    cfg = config
    if c.overlay == 'batch_size':
      cfg = copy.deepcopy(config)
      cfg.data.batch_size = int(v)
    fixed = {} if c.overlay == 'batch_size' else {c.overlay: float(v)}
    tests.append((f'{base}-{c.overlay}{v:g}', cfg, fixed))
  return tests


def run(config, workdir: str) -> dict:
  """Task `lr_range`: the tests, overlays and momentum grid of config.lr_range."""
  c = config.lr_range
  values = sweep_values(c.start, c.end, c.num_steps, c.spacing)
  opts = dict(
    eval_every=c.eval_every,
    diverge_factor=c.diverge_factor,
    smoothing=c.smoothing,
    spacing=c.spacing,
  )
  writer = RunWriter(workdir)
  try:
    sweepers, results, tests = {}, {}, {}

    def sweeper(cfg):
      if cfg.data.batch_size not in sweepers:
        run = loop.build_run(cfg, workdir, writer)
        sweepers[cfg.data.batch_size] = ImageSweeper(run, c.eval_size)
      return sweepers[cfg.data.batch_size]

    for name, cfg, fixed in _tests(config):
      result = sweeper(cfg)(c.param, values, fixed, **opts)
      results[name], tests[name] = result, result.analyze(c.min_lr_div)
      report.write_outputs(workdir, name, result, tests[name])
      report.write_tensorboard(writer, name, result)
      print(f'[jaxland] {name}: {_line(tests[name])}', flush=True)
    if len(results) > 1:
      report.plot_overlay(results, os.path.join(workdir, 'overlay.png'), title=c.overlay)
    summary = {'status': 'done', 'eval_split': sweeper(config).eval_split, 'tests': tests}
    if tuple(c.momentum_grid):
      summary['momentum_grid'] = momentum_grid(sweeper(config), config, workdir, writer)
  finally:
    writer.close()
  return summary


def momentum_grid(sweeper: ImageSweeper, config, workdir: str, writer: RunWriter) -> dict:
  """Short runs at the config's constant LR, one per fixed momentum; loss curves overlaid."""
  c = config.lr_range
  lr = float(config.optim.learning_rate)
  values = np.full(c.grid_steps or c.num_steps, lr)
  opts = dict(eval_every=c.eval_every, diverge_factor=c.diverge_factor, smoothing=c.smoothing)
  results, runs = {}, {}
  for m in c.momentum_grid:
    name = f'momentum_grid-momentum{m:g}'
    r = sweeper('learning_rate', values, {'momentum': float(m)}, spacing='linear', **opts)
    results[f'momentum {m:g}'] = r
    report.write_csv(r, os.path.join(workdir, f'{name}.csv'))
    report.write_tensorboard(writer, name, r)
    runs[f'{m:g}'] = {
      'status': r.status,
      'final_smooth_loss': float(r.smooth_loss[-1]),
      'final_val_accuracy': float(r.val_accuracy[-1]) if len(r.val_accuracy) else None,
    }
  report.plot_grid(results, os.path.join(workdir, 'momentum_grid.png'), title=f'lr {lr:g}')
  done = {k: v['final_smooth_loss'] for k, v in runs.items() if v['status'] == 'completed'}
  best = min(done, key=done.get) if done else None
  return {'learning_rate': lr, 'runs': runs, 'best_momentum': best}


def _line(analysis: dict) -> str:
  s = analysis['suggestions']
  parts = [f'{k}={v:.3g}' for k, v in s.items() if v is not None]
  rec = analysis.get('recommended', {})
  if rec.get('max_lr') is not None:
    parts.append(f'max_lr={rec["max_lr"]:.3g} min_lr={rec["min_lr"]:.3g}')
  return f'{analysis["status"]} shape={analysis["shape"]} ' + ' '.join(parts)
