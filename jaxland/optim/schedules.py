"""Learning-rate and momentum schedules from `config.optim`, as optax schedules of the step.

A schedule maps the update count (0 for the first update) to the value used by that update, the
same convention as a PyTorch scheduler stepped once per iteration. Configs give durations in
epochs; they are turned into steps here and nowhere else (`_steps`).

Composition, applied in this order:
  1. The named schedule (`SCHEDULES`) runs over a *run* of `total_steps - warmup` steps, or over
     `restart_every_epochs` when that is set (then it restarts from its beginning every R epochs;
     onecycle and cosine span one R-period each time).
  2. `warmup_epochs` > 0 puts a linear ramp from 0 (at step 0) to the schedule's first value
     before it; every schedule time, piecewise boundaries included, counts from the ramp's end.
     Momentum schedules hold their first value during the ramp.

Schedules (PyTorch equivalents, whose documented formulas they follow):
  constant         lr.
  step             lr * gamma ** (epoch // decay_every_epochs)                 (StepLR)
  piecewise        lr * product of scales[j] for boundaries_steps[j] <= step; boundaries are
                   iteration indices from the run's start (seed 001: (1000, 1100, 1200) with
                   scales (0.1, 0.1, 0.1) gives 1000, 100, 100, ... iterations, lr / 10 each time),
                   or boundaries_epochs (possibly fractional epochs) when boundaries_steps is empty.
  cosine           eta_min + (lr - eta_min) (1 + cos(pi t / T)) / 2 over the run, then eta_min.
                   (CosineAnnealingLR stepped per iteration with T_max = run steps)
  cosine_restarts  CosineAnnealingWarmRestarts with T_0 = t0_epochs EPOCHS, T_mult = t_mult,
                   stepped every iteration with the fractional epoch step / steps_per_epoch
                   (PyTorch's `scheduler.step(epoch + i / iters)`), i.e. T_cur and T_i in steps.
  onecycle         OneCycleLR(max_lr=lr, total_steps=run steps, pct_start, div_factor,
                   final_div_factor, anneal_strategy=anneal, three_phase); after the last step
                   the value stays at the final one. cycle_momentum: max_momentum -> base_momentum
                   -> max_momentum, inversely to the LR.
  cyclic           CyclicLR(base_lr, max_lr=lr, step_size_up [iterations], step_size_down equal,
                   mode triangular | triangular2 | exp_range with gamma=exp_gamma); the half
                   cycle is run_steps // (2 cycles) when cycles > 0, else step_size_up_epochs
                   epochs when that is > 0.
                   cycle_momentum: max_momentum as the LR sits at base_lr, base_momentum at max_lr.
  triangle         airbench's: lr x (start_factor -> 1 at int(pct_start x run) -> end_factor at
                   the run's end), linear pieces (LambdaLR of that line); pct_start 0 is the
                   line from 1 down alone (airbench94_muon's 1 - step / total with end 0).

`make_schedules` returns dict(learning_rate=schedule, momentum=schedule or None); None means the
optimizer keeps its constant momentum (optim.momentum, or optim.b1 for Adam).
"""

import math

import jax.numpy as jnp

from jaxland import validation

_F32 = jnp.float32


def epochs_to_steps(epochs, steps_per_epoch):
  """Epochs (possibly fractional) -> whole steps: the one place durations change units. The
  nearest step; a tie (x.5) goes to the earlier one."""
  return int(math.ceil(float(epochs) * steps_per_epoch - 0.5))


def _fail(key, value, allowed):
  raise validation.ConfigError(f'optim.schedule.{key}', value, allowed)


def _require(ok, key, value, allowed):
  if not ok:
    _fail(key, value, allowed)


def _count(step):
  return jnp.asarray(step, jnp.int32)


def _constant(sc, lr, steps_per_epoch, run_steps):
  del sc, steps_per_epoch, run_steps
  return lambda step: jnp.full(jnp.shape(step), lr, _F32), None


def _step(sc, lr, steps_per_epoch, run_steps):
  """StepLR: multiply by gamma every `decay_every_epochs` epochs."""
  del run_steps
  _require(sc.decay_every_epochs > 0, 'decay_every_epochs', sc.decay_every_epochs, '> 0 for step')
  _require(sc.gamma > 0, 'gamma', sc.gamma, '> 0')
  every = epochs_to_steps(sc.decay_every_epochs, steps_per_epoch)
  _require(every >= 1, 'decay_every_epochs', sc.decay_every_epochs, '>= 1 step')
  gamma = float(sc.gamma)
  return lambda step: lr * jnp.power(_F32(gamma), (_count(step) // every).astype(_F32)), None


def _piecewise(sc, lr, steps_per_epoch, run_steps):
  """Piecewise constant: scales[j] multiplies the LR from boundary j on (steps, else epochs)."""
  del run_steps
  bounds, scales = tuple(sc.boundaries_steps), tuple(sc.scales)
  key = 'boundaries_steps'
  if not bounds and tuple(sc.boundaries_epochs):
    key = 'boundaries_epochs'
    bounds = tuple(epochs_to_steps(e, steps_per_epoch) for e in sc.boundaries_epochs)
  _require(len(bounds) == len(scales), 'scales', scales, f'one scale per {key} entry')
  _require(len(bounds) > 0, key, bounds, 'a non-empty increasing tuple')
  _require(
    all(int(b) == b and b > 0 for b in bounds) and list(bounds) == sorted(set(bounds)),
    key,
    sc[key],
    'strictly increasing and >= 1 step',
  )

  def schedule(step):
    step = _count(step)
    value = jnp.full(step.shape, lr, _F32)
    for b, s in zip(bounds, scales, strict=True):
      value = value * jnp.where(step >= int(b), _F32(s), _F32(1.0))
    return value

  return schedule, None


def _cosine(sc, lr, steps_per_epoch, run_steps):
  """Cosine annealing from lr to eta_min over the run."""
  del steps_per_epoch
  eta_min, total = float(sc.eta_min), float(run_steps)

  def schedule(step):
    t = jnp.minimum(_count(step).astype(_F32), total)
    return eta_min + (lr - eta_min) * (1 + jnp.cos(math.pi * t / total)) / 2

  return schedule, None


def _cosine_restarts(sc, lr, steps_per_epoch, run_steps):
  """SGDR (CosineAnnealingWarmRestarts) with the period T_0 in epochs, T_mult an int >= 1."""
  del run_steps
  _require(sc.t0_epochs > 0, 't0_epochs', sc.t0_epochs, '> 0 (epochs) for cosine_restarts')
  _require(int(sc.t_mult) == sc.t_mult and sc.t_mult >= 1, 't_mult', sc.t_mult, 'an int >= 1')
  t0 = epochs_to_steps(sc.t0_epochs, steps_per_epoch)
  _require(t0 >= 1, 't0_epochs', sc.t0_epochs, '>= 1 step')
  mult, eta_min = int(sc.t_mult), float(sc.eta_min)

  def schedule(step):
    t = _count(step).astype(_F32)
    if mult == 1:
      t_cur, t_i = jnp.mod(t, t0), _F32(t0)
    else:
      # Period n starts at t0 (mult^n - 1) / (mult - 1); the log can be off by one in floats.
      start = lambda n: t0 * (jnp.power(_F32(mult), n) - 1) / (mult - 1)
      n = jnp.floor(jnp.log(t / t0 * (mult - 1) + 1) / math.log(mult))
      n = jnp.where(start(n) > t, n - 1, n)
      n = jnp.where(start(n + 1) <= t, n + 1, n)
      t_cur, t_i = t - start(n), t0 * jnp.power(_F32(mult), n)
    return eta_min + (lr - eta_min) * (1 + jnp.cos(math.pi * t_cur / t_i)) / 2

  return schedule, None


def _anneal(kind, start, end, pct):
  if kind == 'cos':
    return end + (start - end) / 2 * (jnp.cos(math.pi * pct) + 1)
  return start * (1 - pct) + end * pct  # = (end - start) pct + start, exact at both ends.


def _onecycle(sc, lr, steps_per_epoch, run_steps):
  """OneCycleLR, phases and annealing exactly as in PyTorch; momentum inversely when asked."""
  del steps_per_epoch
  _require(0 < sc.pct_start < 1, 'pct_start', sc.pct_start, 'in (0, 1)')
  _require(sc.div_factor > 0, 'div_factor', sc.div_factor, '> 0')
  _require(sc.final_div_factor > 0, 'final_div_factor', sc.final_div_factor, '> 0')
  _require(sc.anneal in ('cos', 'linear'), 'anneal', sc.anneal, "'cos' | 'linear'")
  total, pct = run_steps, float(sc.pct_start)
  initial = lr / sc.div_factor
  lo = initial / sc.final_div_factor
  mmax, mbase = float(sc.max_momentum), float(sc.base_momentum)
  if sc.three_phase:  # (end_step, start_lr, end_lr, start_momentum, end_momentum) per phase.
    phases = [
      (pct * total - 1, initial, lr, mmax, mbase),
      (2 * pct * total - 2, lr, initial, mbase, mmax),
      (total - 1, initial, lo, mmax, mmax),
    ]
  else:
    phases = [(pct * total - 1, initial, lr, mmax, mbase), (total - 1, lr, lo, mbase, mmax)]
  starts = [0.0] + [p[0] for p in phases[:-1]]
  lengths = [p[0] - s for p, s in zip(phases, starts, strict=True)]
  _require(
    min(lengths) > 0,
    'pct_start',
    sc.pct_start,
    f'a value giving every onecycle phase >= 1 step over {total} steps',
  )

  def make(column):
    def schedule(step):
      t = jnp.minimum(_count(step), total - 1).astype(_F32)
      value = None
      for i in reversed(range(len(phases))):  # The first phase whose end_step >= t wins.
        end = phases[i][0]
        v = _anneal(
          sc.anneal, phases[i][column], phases[i][column + 1], (t - starts[i]) / (end - starts[i])
        )
        value = v if value is None else jnp.where(t <= end, v, value)
      return value

    return schedule

  return make(1), (make(3) if sc.cycle_momentum else None)


def _cyclic(sc, lr, steps_per_epoch, run_steps):
  """CyclicLR between base_lr and lr with equal up and down half-cycles of step_size_up steps."""
  modes = ('triangular', 'triangular2', 'exp_range')
  _require(sc.mode in modes, 'mode', sc.mode, ' | '.join(modes))
  size_up = sc.step_size_up
  if sc.cycles > 0:
    size_up = max(1, run_steps // (2 * sc.cycles))
  elif sc.step_size_up_epochs > 0:
    size_up = max(1, epochs_to_steps(sc.step_size_up_epochs, steps_per_epoch))
  _require(size_up > 0, 'step_size_up', sc.step_size_up, '> 0 iterations')
  _require(0 <= sc.base_lr <= lr, 'base_lr', sc.base_lr, f'in [0, optim.learning_rate={lr}]')
  _require(sc.exp_gamma > 0, 'exp_gamma', sc.exp_gamma, '> 0')
  size = 2.0 * size_up
  ratio = 0.5
  mode, gamma, base = sc.mode, float(sc.exp_gamma), float(sc.base_lr)
  mmax, mbase = float(sc.max_momentum), float(sc.base_momentum)

  def factors(step):
    i = _count(step).astype(_F32)
    cycle = jnp.floor(1 + i / size)
    x = 1.0 + i / size - cycle
    scale = jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
    if mode == 'triangular':
      amp = jnp.ones_like(i)
    elif mode == 'triangular2':
      amp = 1 / jnp.power(_F32(2.0), cycle - 1)
    else:
      amp = jnp.power(_F32(gamma), i)
    return scale * amp

  lr_fn = lambda step: base + (lr - base) * factors(step)
  mom_fn = lambda step: mmax - (mmax - mbase) * factors(step)
  return lr_fn, (mom_fn if sc.cycle_momentum else None)


def _triangle(sc, lr, steps_per_epoch, run_steps):
  """airbench's triangle: lr x a line from start_factor (step 0) to 1 at int(pct_start x run)
  to end_factor at the run's last step, held there after (a LambdaLR of that line)."""
  del steps_per_epoch
  _require(0 <= sc.pct_start < 1, 'pct_start', sc.pct_start, 'in [0, 1) (0: no rise)')
  peak = int(sc.pct_start * run_steps)
  inside = sc.pct_start == 0 or 0 < peak < run_steps
  _require(inside, 'pct_start', sc.pct_start, f'a peak inside the {run_steps} steps')
  start, end = float(sc.start_factor), float(sc.end_factor)

  def schedule(step):
    t = jnp.minimum(_count(step), run_steps).astype(_F32)
    up = start + (1 - start) * t / max(peak, 1)
    down = 1 + (end - 1) * (t - peak) / (run_steps - peak)
    return lr * jnp.where(t < peak, up, down)

  return schedule, None


# name -> builder(schedule_cfg, peak_lr, steps_per_epoch, run_steps) -> (lr_fn, momentum_fn|None)
SCHEDULES = {
  'constant': _constant,
  'step': _step,
  'piecewise': _piecewise,
  'cosine': _cosine,
  'cosine_restarts': _cosine_restarts,
  'onecycle': _onecycle,
  'cyclic': _cyclic,
  'triangle': _triangle,
}
_CYCLES_MOMENTUM = ('onecycle', 'cyclic')


def _with_restarts(fn, period):
  return lambda step: fn(jnp.mod(_count(step), period))


def _with_warmup(fn, warmup, ramp):
  """`warmup` steps before `fn`: a linear ramp from 0 to fn(0) (ramp) or fn(0) held (not ramp)."""

  def schedule(step):
    step = _count(step)
    first = fn(jnp.zeros_like(step))
    before = first * step.astype(_F32) / warmup if ramp else first
    return jnp.where(step < warmup, before, fn(jnp.maximum(step - warmup, 0)))

  return schedule


def make_schedules(optim_cfg, steps_per_epoch, total_steps):
  """config.optim -> dict(learning_rate=schedule, momentum=schedule or None).

  Args:
    optim_cfg: `config.optim` (reads learning_rate and the `schedule` sub-config).
    steps_per_epoch: optimizer updates per epoch (converts epoch durations to steps).
    total_steps: updates in the whole run (cosine and onecycle span it, minus warm-up).
  """
  sc = optim_cfg.schedule
  if sc.name not in SCHEDULES:
    _fail('name', sc.name, ' | '.join(SCHEDULES))
  if int(steps_per_epoch) < 1 or int(total_steps) < 1:
    raise ValueError(
      f'steps_per_epoch={steps_per_epoch} and total_steps={total_steps} must both be >= 1'
    )
  lr = float(optim_cfg.learning_rate)
  if not (lr >= 0 and math.isfinite(lr)):
    raise validation.ConfigError('optim.learning_rate', lr, 'must be a finite number >= 0')
  _require(
    not sc.cycle_momentum or sc.name in _CYCLES_MOMENTUM,
    'cycle_momentum',
    sc.cycle_momentum,
    f'True only with schedule.name in {_CYCLES_MOMENTUM}',
  )
  _require(sc.warmup_epochs >= 0, 'warmup_epochs', sc.warmup_epochs, '>= 0')
  _require(sc.restart_every_epochs >= 0, 'restart_every_epochs', sc.restart_every_epochs, '>= 0')
  _require(sc.eta_min >= 0, 'eta_min', sc.eta_min, '>= 0')
  warmup = epochs_to_steps(sc.warmup_epochs, steps_per_epoch)
  period = epochs_to_steps(sc.restart_every_epochs, steps_per_epoch)
  _require(
    warmup < total_steps,
    'warmup_epochs',
    sc.warmup_epochs,
    f'shorter than the run ({total_steps} steps)',
  )
  _require(
    sc.restart_every_epochs == 0 or period >= 1,
    'restart_every_epochs',
    sc.restart_every_epochs,
    '0 (never) or >= 1 step',
  )
  run_steps = period if period else int(total_steps) - warmup
  lr_fn, mom_fn = SCHEDULES[sc.name](sc, lr, int(steps_per_epoch), run_steps)
  if period:
    lr_fn = _with_restarts(lr_fn, period)
    mom_fn = mom_fn and _with_restarts(mom_fn, period)
  if warmup:
    lr_fn = _with_warmup(lr_fn, warmup, ramp=True)
    mom_fn = mom_fn and _with_warmup(mom_fn, warmup, ramp=False)
  return {'learning_rate': lr_fn, 'momentum': mom_fn}
