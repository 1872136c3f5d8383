"""The training loop end to end on small data: resume, recompiles, divergence, logs, devices."""

import json
import logging
import os
import signal

import jax
import ml_collections
import numpy as np
import pytest

from jaxland import tasks
from jaxland.data import pipeline
from jaxland.output import metrics
from jaxland.rundir import checkpoints, workdir
from jaxland.train import callbacks, loop
from tests.helpers import digits_config, flat, num_train

# The runs below: 3 epochs of the digits MLP, 200 examples held out, logged every 5 steps.
RUN = {'data.val_size': 200, 'optim.learning_rate': 0.05}
RUN |= {'train.num_epochs': 3, 'train.log_every_steps': 5}


class StopAt(callbacks.Callback):
  """Asks the loop to stop at a given step, as SIGTERM does (or sends a real signal)."""

  every_steps = 1

  def __init__(self, step, send_signal=None):
    self.stop_step, self.send_signal = step, send_signal

  def on_step(self, run):
    if run.step == self.stop_step:
      if self.send_signal is None:
        run.stop_requested = True
      else:
        os.kill(os.getpid(), self.send_signal)
    return {}


def test_run_logs_metrics_status_and_learns(tmp_path):
  summary = tasks.run(digits_config(RUN), str(tmp_path))
  assert summary['status'] == 'done'
  assert summary['final_test_accuracy'] > 0.85  # digits MLP: ~0.95 after 3 epochs
  records = metrics.read_jsonl(str(tmp_path))
  keys = set().union(*records)
  for key in (
    'train/loss',
    'train/accuracy',
    'optim/learning_rate',
    'val/accuracy',
    'test/accuracy',
    'test/loss',
    'epoch_time',
  ):
    assert key in keys, key
  losses = metrics.series(records, 'train/loss')[1]
  assert losses[-1] < losses[0]
  assert json.load(open(tmp_path / 'status.json'))['status'] == 'done'
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(tmp_path))
  assert checkpoints.exists(str(tmp_path))


@pytest.mark.parametrize('send_signal', [None, signal.SIGTERM])
def test_kill_and_resume_equals_uninterrupted(tmp_path, send_signal):
  full = tasks.run(digits_config(RUN), str(tmp_path / 'full'))
  cut = str(tmp_path / 'cut')
  first = tasks.run(digits_config(RUN), cut, callbacks=[StopAt(13, send_signal)])
  assert first['status'] == 'interrupted' and first['step'] == 13
  assert json.load(open(os.path.join(cut, 'status.json')))['status'] == 'interrupted'
  second = tasks.run(digits_config(RUN), cut)
  assert second['status'] == 'done' and second['step'] == full['step']
  a, _, _ = checkpoints.load_params(str(tmp_path / 'full'))
  b, _, _ = checkpoints.load_params(cut)
  np.testing.assert_array_equal(flat(a), flat(b))


class CompileLog(logging.Handler):
  def __init__(self):
    super().__init__()
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


class WatchCompiles(callbacks.Callback):
  """From the end of epoch 1 on, records every compilation."""

  def __init__(self, handler):
    self.handler = handler

  def on_epoch_end(self, run, epoch):
    if epoch == 1:
      jax.config.update('jax_log_compiles', True)
      logging.getLogger('jax').addHandler(self.handler)
    return {}


def test_no_recompilation_after_first_epoch(tmp_path):
  handler = CompileLog()
  try:
    loop.train_and_evaluate(
      digits_config(RUN | {'train.trajectory_every_steps': 7}),
      str(tmp_path),
      callbacks=[WatchCompiles(handler)],
    )
  finally:
    jax.config.update('jax_log_compiles', False)
    logging.getLogger('jax').removeHandler(handler)
  compiles = [m for m in handler.messages if 'ompil' in m]
  assert not compiles, compiles


def test_trajectory_and_batch_order_are_saved_and_replayable(tmp_path):
  overrides = {'train.trajectory_every_steps': 10, 'train.save_batch_order': True}
  config = digits_config(RUN | overrides | {'train.num_epochs': 2})
  loop.train_and_evaluate(config, str(tmp_path))
  saved = sorted(os.listdir(tmp_path / 'trajectory'))
  n_train = num_train(config)
  spe = n_train // 64
  assert saved[0] == 'params_00000000.npz'
  assert [int(s[7:15]) for s in saved] == list(range(0, 2 * spe + 1, 10))
  order = np.load(tmp_path / 'batch_order' / 'epoch_0002.npy')
  np.testing.assert_array_equal(order, np.asarray(pipeline.epoch_batches(0, 1, n_train, 64)))


def test_diverging_run_stops_cleanly(tmp_path):
  config = digits_config(RUN | {'train.log_every_steps': 1, 'train.diverge_factor': 0.0})
  config.optim.learning_rate = 1e6  # Non-finite at once (the factor test: tests/test_faults.py).
  summary = tasks.run(config, str(tmp_path))
  assert summary['status'] == 'diverged'
  assert 'non-finite' in summary['message']
  assert json.load(open(tmp_path / 'status.json'))['status'] == 'diverged'


def test_early_stopping_keeps_best(tmp_path):
  config = digits_config(RUN | {'train.early_stopping_patience': 1, 'train.num_epochs': 6})
  config.optim.learning_rate = 1e-12  # nothing improves after epoch 1
  summary = loop.train_and_evaluate(config, str(tmp_path))
  assert summary['epoch'] == 2 and 'early stopping' in summary['message']
  assert summary['best_epoch'] == 1


def test_workdir_with_other_config_is_refused(tmp_path):
  tasks.run(digits_config(RUN | {'train.num_epochs': 1}), str(tmp_path))
  other = digits_config(RUN | {'train.num_epochs': 1})
  other.optim.learning_rate = 0.1
  with pytest.raises(ValueError, match='different config.*optim.learning_rate'):
    tasks.run(other, str(tmp_path))
  other.overwrite = True
  assert tasks.run(other, str(tmp_path))['status'] == 'done'


def test_workdir_accepts_keys_added_since_the_run_was_saved(tmp_path):
  """An old run's config.json lacks options added later: resuming takes them at their values."""

  def config(**extra):
    c = ml_collections.ConfigDict({'overwrite': False, 'optim': {'lr': 0.1, **extra}})
    return c

  workdir.prepare(str(tmp_path), config())
  (tmp_path / 'metrics.jsonl').write_text('{}\n')
  (tmp_path / 'checkpoints' / '5').mkdir(parents=True)  # A checkpoint: a changed config is refused.
  workdir.prepare(str(tmp_path), config(new_option=3, new_section={'a': 1}))
  assert (tmp_path / 'metrics.jsonl').exists()  # Resumed, not cleared.
  assert json.load(open(tmp_path / 'config.json'))['optim']['new_option'] == 3
  with pytest.raises(ValueError, match='different config.*optim.new_option'):
    workdir.prepare(str(tmp_path), config(new_option=4, new_section={'a': 1}))
  with pytest.raises(ValueError, match='different config.*optim.new_section'):
    workdir.prepare(str(tmp_path), config(new_option=3))  # A key that went away.


def test_eight_devices_equal_one_device():
  """Same global batch over an 8-device mesh and a 1-device mesh: same losses and params."""
  assert jax.device_count() == 8
  config = digits_config(RUN)
  config.model.batch_norm = True
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    run = loop.build_run(config, '/tmp/unused', writer=None, mesh=pipeline.make_mesh(devices))
    step = loop.make_train_step(run)
    images, labels = run.device_data['train']
    idx = pipeline.epoch_batches(0, 0, len(run.dataset.train[1]), 64)
    losses = []
    for _ in range(4):
      run.state, m = step(run.state, images, labels, idx)
      losses.append(float(m['loss']))
    results.append((losses, flat(run.state.params)))
  np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
  np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)


BAD_CONFIGS = [
  ('task', 'trian', 'task'),
  ('data.name', 'imagenet', 'data.name'),
  ('model.name', 'resnet21', 'resnet20'),
  ('optim.name', 'sgdm', 'optim.name'),
  ('optim.schedule.name', 'cosin', 'cosine'),
  ('optim.learning_rate', -0.1, 'optim.learning_rate'),
  ('data.batch_size', 100, 'divisible by the device count'),
  ('data.batch_size', 0, 'data.batch_size'),
  ('train.num_epochs', 0, 'train.num_epochs'),
  ('repulsion.mode', 'product', 'merged'),
  ('repulsion.anchor_every', -2, 'repulsion.anchor_every'),
  ('repulsion.snapshot_epochs', (0,), 'repulsion.snapshot_epochs'),
  ('repulsion.snapshot_every', -1, 'repulsion.snapshot_every'),
  ('repulsion.start_from_anchor', True, 'repulsion.anchor_from'),
  ('train.best_metric', 'val/f1', 'val/accuracy'),
]


@pytest.mark.parametrize('key,value,message', BAD_CONFIGS)
def test_bad_config_names_key_and_choices(key, value, message):
  config = digits_config({key: value})
  with pytest.raises(ValueError, match=message):
    tasks.validate(config, num_devices=8)


@pytest.mark.realdata
def test_demo_reaches_84_percent_on_real_fashion_mnist(tmp_path, fashion_mnist_dir, tfds_data_dir):
  """The README's demo: the Fashion-MNIST MLP reaches >= 84% test accuracy in 2 epochs."""
  from configs import fashion_mlp

  config = fashion_mlp.get_config()
  config.data.manual_dir = str(fashion_mnist_dir)
  config.data.data_dir = tfds_data_dir
  config.data.fallback = ''  # real data or fail, never digits
  summary = loop.train_and_evaluate(config, str(tmp_path))
  assert summary['dataset'] == 'fashion_mnist'
  assert summary['status'] == 'done' and summary['epoch'] == 2
  assert summary['final_test_accuracy'] >= 0.84
