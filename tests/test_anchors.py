"""Anchors in the training loop: schedule, no retracing, resume, anchor_from, logged distances."""

import importlib
import logging
import math

import jax
import numpy as np
import pytest

from jaxland import distance, tasks, training
from jaxland.distance import anchors
from jaxland.optim import get_anchors
from jaxland.output import metrics
from jaxland.rundir import artifacts
from jaxland.train import callbacks
from tests import helpers
from tests.helpers import StopAt, flat


def digits_config(num_epochs=3, **repulsion):
  """A seconds-long run (MLP on scikit-learn's digits) with repulsion settings."""
  overrides = {'data.val_size': 200, 'optim.learning_rate': 0.05, 'optim.weight_decay': 1e-3}
  overrides |= {'train.num_epochs': num_epochs, 'train.log_every_steps': 10}
  overrides['train.checkpoint_every_epochs'] = num_epochs  # Only the final one: orbax is slow.
  overrides['repulsion.width'] = 1.0
  return helpers.digits_config(overrides | {f'repulsion.{k}': v for k, v in repulsion.items()})


SPE = helpers.num_train(digits_config()) // 64  # digits less the validation slice: 20 steps/epoch


class Capture(callbacks.Callback):
  """Keeps host copies of the state at the end of every epoch."""

  def __init__(self):
    self.states = {}

  def on_epoch_end(self, run, epoch):
    self.states[epoch] = jax.device_get(run.state)
    return {}


def record_callbacks(monkeypatch):
  """Makes the loop's anchor callbacks reachable from the test: returns the list they go into."""
  made = []
  factory = anchors.anchor_callback

  def recording(config):
    cb = factory(config)
    made.append(cb)
    return cb

  table = [recording if f is factory else f for f in training.CALLBACKS]
  monkeypatch.setattr(training, 'CALLBACKS', table)
  return made


def epoch_records(workdir):
  return {int(r['epoch']): r for r in metrics.read_jsonl(workdir) if 'epoch' in r}


class WatchCompiles(callbacks.Callback, logging.Handler):
  """Records every compilation from step `start` on (after the first anchor's own compile)."""

  every_steps = 1

  def __init__(self, start):
    logging.Handler.__init__(self)
    self.start, self.messages = start, []

  def emit(self, record):
    self.messages.append(record.getMessage())

  def on_step(self, run):
    if run.step == self.start:
      jax.config.update('jax_log_compiles', True)
      logging.getLogger('jax').addHandler(self)
    return {}


@pytest.fixture(scope='module')
def anchored_run(tmp_path_factory):
  """Repulsion on, anchors after epochs 1 and 2 of 3; every epoch's state kept; compiles watched
  from the first step of epoch 2 on (so the anchor after epoch 2 and epoch 3's steps count)."""
  workdir = str(tmp_path_factory.mktemp('anchored'))
  capture, watch = Capture(), WatchCompiles(start=SPE + 1)
  config = digits_config(enabled=True, strength=1.0, anchor_epochs=(1, 2))
  config.train.checkpoint_every_epochs = 1  # Orbax compiles its own slicing on the first save.
  try:
    with pytest.MonkeyPatch.context() as monkeypatch:
      made = record_callbacks(monkeypatch)
      summary = training.train(config, workdir, callbacks=[capture, watch])
  finally:
    jax.config.update('jax_log_compiles', False)
    logging.getLogger('jax').removeHandler(watch)
  assert summary['status'] == 'done'
  return workdir, capture.states, made[0], watch.messages


def test_schedules():
  config = digits_config(num_epochs=600, anchor_every=150)
  assert anchors.anchor_schedule(config) == (150, 300, 450)  # The thesis: 3 anchors in 600.
  config.repulsion.anchor_epochs = (100,)
  config.repulsion.snapshot_every = 200
  config.repulsion.snapshot_epochs = (600,)
  assert anchors.anchor_schedule(config) == (100, 150, 300, 450)
  assert anchors.snapshot_schedule(config) == (100, 150, 200, 300, 400, 450, 600)
  assert anchors.anchor_callback(digits_config()) is None
  assert anchors.anchor_callback(digits_config(snapshot_every=1)) is not None


@pytest.mark.parametrize(
  'key, value', [('anchor_epochs', (0,)), ('snapshot_epochs', (4,)), ('snapshot_every', -1)]
)
def test_bad_schedule_names_the_key(key, value):
  with pytest.raises(ValueError, match=f'repulsion.{key}'):
    distance.validate_section(digits_config(**{key: value}))


def test_distance_metric_equals_numpy_norm(anchored_run):
  workdir, states = anchored_run[:2]
  records = epoch_records(workdir)
  anchor0 = flat(states[1].params)  # Params after epoch 1, by the test's own callback.
  anchor1 = flat(states[2].params)
  for epoch in (2, 3):
    params = flat(states[epoch].params)
    d0 = np.linalg.norm(params - anchor0)
    np.testing.assert_allclose(records[epoch]['anchor/0/distance'], d0, rtol=1e-4)
    np.testing.assert_allclose(
      records[epoch]['anchor/0/kernel'], math.exp(-(d0**2) / 2), rtol=1e-4, atol=1e-12
    )
    np.testing.assert_allclose(
      records[epoch]['anchor/1/distance'], np.linalg.norm(params - anchor1), rtol=1e-4, atol=1e-6
    )
  assert records[1]['anchor/count'] == 1 and records[3]['anchor/count'] == 2
  assert 'anchor/1/distance' not in records[1]  # Slot 1 was still empty after epoch 1.
  assert records[0]['anchor/init_distance'] == 0.0 and records[3]['anchor/init_distance'] > 0
  assert records[3]['anchor/grad_norm'] > 0 and records[3]['anchor/grad_ratio'] > 0


def test_anchors_are_the_params_and_snapshots(anchored_run):
  workdir, states = anchored_run[:2]
  stacked, active = get_anchors(states[3].opt_state)
  assert np.asarray(active).tolist()[:2] == [True, True]
  for slot, epoch in ((0, 1), (1, 2)):
    anchor = jax.tree.map(lambda a, s=slot: a[s], stacked)
    np.testing.assert_array_equal(flat(anchor), flat(states[epoch].params))
    params, batch_stats, info = artifacts.load_snapshot(artifacts.snapshot_path(workdir, epoch))
    assert info == {'epoch': epoch, 'step': epoch * SPE}
    np.testing.assert_array_equal(flat(params), flat(states[epoch].params))
  assert [e for e, _ in artifacts.list_snapshots(workdir)] == [1, 2]


def test_anchors_survive_interrupt_and_resume(anchored_run, tmp_path):
  full_dir, full_states = anchored_run[:2]
  config = digits_config(enabled=True, strength=1.0, anchor_epochs=(1, 2))
  cut = str(tmp_path / 'cut')
  first = training.train(config, cut, callbacks=[StopAt(SPE + 7)])
  assert first['status'] == 'interrupted'
  restored = {}

  class AtStart(callbacks.Callback):
    def on_start(self, run):
      restored['opt_state'] = jax.device_get(run.state.opt_state)

  capture = Capture()
  second = training.train(config, cut, callbacks=[AtStart(), capture])
  assert second['status'] == 'done'
  stacked, active = get_anchors(restored['opt_state'])  # As restored from the checkpoint.
  assert np.asarray(active).tolist()[:2] == [True, False]
  np.testing.assert_array_equal(
    flat(jax.tree.map(lambda a: a[0], stacked)), flat(full_states[1].params)
  )
  np.testing.assert_array_equal(flat(capture.states[3].opt_state), flat(full_states[3].opt_state))
  np.testing.assert_array_equal(flat(capture.states[3].params), flat(full_states[3].params))
  full, resumed = epoch_records(full_dir)[3], epoch_records(cut)[3]
  for key in ('anchor/0/distance', 'anchor/1/distance', 'anchor/init_distance'):
    np.testing.assert_allclose(resumed[key], full[key], rtol=1e-6)  # Init rebuilt from its seed.


def test_anchor_from_other_run_gives_exactly_its_params(anchored_run, tmp_path, monkeypatch):
  source_dir, source_states = anchored_run[:2]
  made = record_callbacks(monkeypatch)
  capture = Capture()
  config = digits_config(
    num_epochs=1, enabled=True, anchor_from=f'{source_dir}:{3 * SPE}', start_from_anchor=True
  )
  training.train(config, str(tmp_path), callbacks=[capture])
  stacked, active = get_anchors(capture.states[1].opt_state)
  assert np.asarray(active).tolist() == [True, False, False, False]
  np.testing.assert_array_equal(
    flat(jax.tree.map(lambda a: a[0], stacked)), flat(source_states[3].params)
  )
  records = epoch_records(str(tmp_path))
  assert records[0]['anchor/0/distance'] == 0.0  # start_from_anchor: training starts there.
  assert records[1]['anchor/0/distance'] > 0.0
  assert made[0].traces['add_anchor'] == 1


def test_setting_anchors_in_the_loop_does_not_retrace(anchored_run):
  _, _, callback, compile_messages = anchored_run
  assert callback.traces == {'add_anchor': 1, 'probe': 1}
  compiles = [m for m in compile_messages if 'ompil' in m]
  assert not compiles, compiles


def test_virtual_anchors_log_but_do_not_change_training(anchored_run, tmp_path):
  plain = Capture()
  training.train(digits_config(), str(tmp_path / 'plain'), callbacks=[plain])
  virtual = Capture()
  vdir = str(tmp_path / 'virtual')
  training.train(digits_config(anchor_epochs=(1, 2)), vdir, callbacks=[virtual])
  np.testing.assert_array_equal(flat(virtual.states[3].params), flat(plain.states[3].params))
  records = epoch_records(vdir)
  assert records[3]['anchor/0/distance'] > 0 and records[3]['anchor/grad_norm'] == 0.0
  # With the force on, the run ends farther from the first anchor than the baseline.
  assert epoch_records(anchored_run[0])[3]['anchor/0/distance'] > records[3]['anchor/0/distance']


@pytest.mark.parametrize(
  'module, arg',
  [
    ('cifar_distance', ''),
    ('cifar_distance', 'net=mobilenetv2,baseline'),
    ('cifar_distance', 'smoke,anchors=every,schedule=cosine'),
    ('mnist_distance', ''),
    ('mnist_distance', 'fashion,cpu,anchors=merged,schedule=step,wd=0'),
    ('mnist_distance', 'smoke,anchors=every,schedule=cosine,lr=0.01'),
  ],
)
def test_distance_configs_validate(module, arg):
  config = importlib.import_module(f'configs.{module}').get_config(arg)
  tasks.validate(config)
  assert anchors.anchor_schedule(config)
  if 'schedule=' in arg:  # Snapshots at every restart boundary.
    period = config.optim.schedule.t0_epochs or config.optim.schedule.restart_every_epochs
    assert set(range(period, config.train.num_epochs, period)) <= set(
      anchors.snapshot_schedule(config)
    )
