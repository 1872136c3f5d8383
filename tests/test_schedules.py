"""Schedules against closed forms written out from PyTorch's documented scheduler formulas."""

import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxland.optim import SCHEDULES, make_schedules

LR = 0.1


def _default_config():
  path = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'default.py'
  spec = importlib.util.spec_from_file_location('jaxland_default_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _optim(**schedule):
  optim = _default_config().optim
  optim.learning_rate = LR
  for key, value in schedule.items():
    setattr(optim.schedule, key, value)
  return optim


def _values(fn, steps):
  return np.array([float(fn(s)) for s in steps])


def _check(fn, expected, rtol=1e-5, atol=1e-9):
  """expected: {step: value}."""
  steps = sorted(expected)
  np.testing.assert_allclose(_values(fn, steps), [expected[s] for s in steps], rtol=rtol, atol=atol)


# --- Plain-Python references, transcribed from PyTorch's documented formulas. -------------------


def _ref_onecycle(step, total, max_lr, pct, div, final_div, anneal, three, mmax, mbase):
  initial = max_lr / div
  lo = initial / final_div
  if three:
    phases = [
      (pct * total - 1, initial, max_lr, mmax, mbase),
      (2 * pct * total - 2, max_lr, initial, mbase, mmax),
      (total - 1, initial, lo, mmax, mmax),
    ]
  else:
    phases = [(pct * total - 1, initial, max_lr, mmax, mbase), (total - 1, max_lr, lo, mbase, mmax)]

  def ann(start, end, p):
    if anneal == 'cos':
      return end + (start - end) / 2.0 * (math.cos(math.pi * p) + 1)
    return (end - start) * p + start

  start_step = 0
  for i, (end_step, l0, l1, m0, m1) in enumerate(phases):
    if step <= end_step or i == len(phases) - 1:
      p = (step - start_step) / (end_step - start_step)
      return ann(l0, l1, p), ann(m0, m1, p)
    start_step = end_step


def _ref_cyclic(it, base_lr, max_lr, up, mode, gamma, mbase, mmax):
  total = 2.0 * up
  ratio = up / total
  cycle = math.floor(1 + it / total)
  x = 1.0 + it / total - cycle
  scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
  amp = {'triangular': 1.0, 'triangular2': 1 / (2.0 ** (cycle - 1)), 'exp_range': gamma**it}[mode]
  return base_lr + (max_lr - base_lr) * scale * amp, mmax - (mmax - mbase) * scale * amp


def _ref_sgdr(epoch, t0, t_mult, eta_min, base_lr):
  if epoch >= t0:
    if t_mult == 1:
      t_cur, t_i = epoch % t0, t0
    else:
      n = int(math.log(epoch / t0 * (t_mult - 1) + 1, t_mult))
      t_cur, t_i = epoch - t0 * (t_mult**n - 1) / (t_mult - 1), t0 * t_mult**n
  else:
    t_cur, t_i = epoch, t0
  return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


# --- Tests. --------------------------------------------------------------------------------------


def test_constant():
  s = make_schedules(_optim(name='constant'), 10, 100)
  _check(s['learning_rate'], {0: LR, 50: LR, 99: LR})
  assert s['momentum'] is None


def test_step_decays_every_k_epochs():
  s = make_schedules(_optim(name='step', decay_every_epochs=3, gamma=0.1), 10, 100)
  _check(
    s['learning_rate'],
    {0: LR, 29: LR, 30: LR * 0.1, 59: LR * 0.1, 60: LR * 0.01, 89: LR * 0.01, 90: LR * 1e-3},
  )


def test_piecewise_seed_001_boundaries():
  """1000, 100, 100, 300 iterations, lr / 10 after each block."""
  optim = _optim(name='piecewise', boundaries_steps=(1000, 1100, 1200), scales=(0.1, 0.1, 0.1))
  s = make_schedules(optim, 50, 1500)
  expected = {0: LR, 999: LR, 1000: LR / 10, 1099: LR / 10, 1100: LR / 100}
  expected.update({1199: LR / 100, 1200: LR / 1000, 1499: LR / 1000})
  _check(s['learning_rate'], expected)


def test_cosine_to_eta_min_over_the_run():
  eta = 1e-3
  s = make_schedules(_optim(name='cosine', eta_min=eta), 10, 100)
  quarter = eta + (LR - eta) * (1 + math.cos(math.pi / 4)) / 2
  _check(s['learning_rate'], {0: LR, 25: quarter, 50: (LR + eta) / 2, 100: eta, 130: eta})


@pytest.mark.parametrize('t_mult', [1, 2])
def test_cosine_restarts_matches_pytorch_fractional_epochs(t_mult):
  spe, t0, eta = 10, 2, 1e-3
  s = make_schedules(
    _optim(name='cosine_restarts', t0_epochs=t0, t_mult=t_mult, eta_min=eta), spe, 1000
  )
  mid = (LR + eta) / 2
  if t_mult == 1:  # Restarts at epochs 2, 4, ...
    _check(s['learning_rate'], {0: LR, 10: mid, 20: LR, 30: mid, 40: LR})
  else:  # Periods 2, 4, 8 epochs: restarts at epochs 2, 6, 14.
    _check(s['learning_rate'], {0: LR, 10: mid, 20: LR, 40: mid, 60: LR, 100: mid, 140: LR})
  steps = range(0, 300)
  expected = [_ref_sgdr(i / spe, t0, t_mult, eta, LR) for i in steps]
  np.testing.assert_allclose(_values(s['learning_rate'], steps), expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize('three_phase', [False, True])
@pytest.mark.parametrize('anneal', ['cos', 'linear'])
def test_onecycle_matches_pytorch(three_phase, anneal):
  total, pct, div, final = 100, 0.3, 25.0, 1e4
  optim = _optim(
    name='onecycle',
    pct_start=pct,
    div_factor=div,
    final_div_factor=final,
    anneal=anneal,
    three_phase=three_phase,
    cycle_momentum=True,
    base_momentum=0.85,
    max_momentum=0.95,
  )
  s = make_schedules(optim, 10, total)
  initial, lo = LR / div, LR / div / final
  # Phase ends: pct*T - 1 = 29 (peak), 2*pct*T - 2 = 58 (three-phase), T - 1 = 99.
  if three_phase:
    _check(s['learning_rate'], {0: initial, 29: LR, 58: initial, 99: lo}, rtol=1e-4)
    _check(s['momentum'], {0: 0.95, 29: 0.85, 58: 0.95, 99: 0.95})
  else:
    _check(s['learning_rate'], {0: initial, 29: LR, 99: lo}, rtol=1e-4)
    _check(s['momentum'], {0: 0.95, 29: 0.85, 99: 0.95})
  steps = range(total)
  ref = [
    _ref_onecycle(i, total, LR, pct, div, final, anneal, three_phase, 0.95, 0.85) for i in steps
  ]
  np.testing.assert_allclose(_values(s['learning_rate'], steps), [r[0] for r in ref], rtol=1e-4)
  np.testing.assert_allclose(_values(s['momentum'], steps), [r[1] for r in ref], rtol=1e-6)
  _check(s['learning_rate'], {total + 5: lo}, rtol=1e-4)  # Stays at the final value.


@pytest.mark.parametrize('mode', ['triangular', 'triangular2', 'exp_range'])
def test_cyclic_matches_pytorch(mode):
  base, up, gamma = 1e-3, 5, 0.99
  optim = _optim(
    name='cyclic',
    base_lr=base,
    step_size_up=up,
    mode=mode,
    exp_gamma=gamma,
    cycle_momentum=True,
    base_momentum=0.8,
    max_momentum=0.9,
  )
  s = make_schedules(optim, 10, 1000)
  peak = {'triangular': LR, 'triangular2': LR, 'exp_range': base + (LR - base) * gamma**5}[mode]
  _check(s['learning_rate'], {0: base, 5: peak, 10: base, 20: base})
  _check(s['momentum'], {0: 0.9, 10: 0.9})
  second_peak = {
    'triangular': LR,
    'triangular2': base + (LR - base) / 2,
    'exp_range': base + (LR - base) * gamma**15,
  }[mode]
  _check(s['learning_rate'], {15: second_peak})
  steps = range(60)
  ref = [_ref_cyclic(i, base, LR, up, mode, gamma, 0.8, 0.9) for i in steps]
  np.testing.assert_allclose(_values(s['learning_rate'], steps), [r[0] for r in ref], rtol=1e-5)
  np.testing.assert_allclose(_values(s['momentum'], steps), [r[1] for r in ref], rtol=1e-6)


def test_cyclic_without_cycle_momentum_has_no_momentum_schedule():
  assert make_schedules(_optim(name='cyclic'), 10, 100)['momentum'] is None


def test_linear_warmup_then_schedule():
  eta = 1e-3
  s = make_schedules(_optim(name='cosine', eta_min=eta, warmup_epochs=1), 10, 110)
  # Ramp 0 -> lr over 10 steps, then cosine over the remaining 100 steps.
  _check(s['learning_rate'], {0: 0.0, 5: LR / 2, 9: LR * 0.9, 10: LR, 60: (LR + eta) / 2, 110: eta})


def test_warmup_holds_cycled_momentum():
  optim = _optim(name='onecycle', warmup_epochs=0.5, cycle_momentum=True)
  s = make_schedules(optim, 10, 105)
  _check(s['momentum'], {0: 0.95, 4: 0.95, 5: 0.95, 5 + 29: 0.85})
  _check(s['learning_rate'], {0: 0.0, 5: LR / 25, 5 + 29: LR})


def test_restart_every_restarts_any_schedule():
  s = make_schedules(
    _optim(name='step', decay_every_epochs=1, gamma=0.1, restart_every_epochs=3), 10, 100
  )
  _check(s['learning_rate'], {0: LR, 10: LR * 0.1, 25: LR * 0.01, 30: LR, 40: LR * 0.1, 60: LR})
  s = make_schedules(
    _optim(name='cosine', restart_every_epochs=2), 10, 100
  )  # Cosine spans 20 steps.
  _check(
    s['learning_rate'],
    {0: LR, 10: LR / 2, 20: LR, 30: LR / 2, 45: LR * (1 + math.cos(math.pi / 4)) / 2},
  )


def test_schedules_jit_with_traced_step():
  optim = _optim(name='onecycle', cycle_momentum=True, warmup_epochs=1, restart_every_epochs=5)
  s = make_schedules(optim, 10, 200)
  for name in ('learning_rate', 'momentum'):
    jitted = jax.jit(s[name])
    for step in (0, 7, 33, 57, 120):
      np.testing.assert_allclose(float(jitted(jnp.int32(step))), float(s[name](step)), rtol=1e-6)


def test_every_schedule_is_listed_and_builds():
  assert set(SCHEDULES) >= {
    'constant',
    'step',
    'piecewise',
    'cosine',
    'cosine_restarts',
    'onecycle',
    'cyclic',
  }
  extra = {
    'step': dict(decay_every_epochs=1),
    'piecewise': dict(boundaries_steps=(5,), scales=(0.5,)),
    'cosine_restarts': dict(t0_epochs=1),
  }
  for name in SCHEDULES:
    s = make_schedules(_optim(name=name, **extra.get(name, {})), 10, 100)
    assert np.all(np.isfinite(_values(s['learning_rate'], range(0, 120, 7))))


@pytest.mark.parametrize(
  'schedule, key',
  [
    (dict(name='exponential'), 'optim.schedule.name'),
    (dict(name='cosine', cycle_momentum=True), 'optim.schedule.cycle_momentum'),
    (dict(name='cosine_restarts', t0_epochs=1, t_mult=0), 'optim.schedule.t_mult'),
    (dict(name='cosine_restarts', t0_epochs=0), 'optim.schedule.t0_epochs'),
    (dict(name='step', decay_every_epochs=0), 'optim.schedule.decay_every_epochs'),
    (
      dict(name='piecewise', boundaries_steps=(10, 5), scales=(0.1, 0.1)),
      'optim.schedule.boundaries_steps',
    ),
    (dict(name='piecewise', boundaries_steps=(10,), scales=(0.1, 0.1)), 'optim.schedule.scales'),
    (dict(name='onecycle', anneal='exp'), 'optim.schedule.anneal'),
    (dict(name='onecycle', pct_start=1.0), 'optim.schedule.pct_start'),
    (dict(name='cyclic', mode='sine'), 'optim.schedule.mode'),
    (dict(name='constant', warmup_epochs=20), 'optim.schedule.warmup_epochs'),
  ],
)
def test_bad_values_name_the_key(schedule, key):
  with pytest.raises(ValueError, match=key.replace('.', r'\.')):
    make_schedules(_optim(**schedule), 10, 100)
