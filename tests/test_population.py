"""Populations against their oracle, the same members run one by one: per-epoch metrics and final
params, for an MLP and a BatchNorm CNN, members differing in seeds, learning rate, weight decay,
repulsion strength and width, label smoothing and dropout rates, one of them diverging; a
population of one equals the plain run bit for bit; values never recompile; a stopped population
resumes exactly.

Tolerance: vmap turns each member's matmuls into one batched matmul, whose float32 sums XLA may
accumulate in another order; over a few dozen SGD steps that moves params by a few float32 ulps
relative (measured ~1e-7; a BatchNorm CNN's near-zero weights move by up to 2e-7 absolute), so
rtol 1e-5 with atol 1e-6 on params and rtol 1e-5 on logged metrics, while anything a reordering
cannot touch (step counts, statuses, epochs) must match exactly."""

import json
import logging
import os

import jax
import numpy as np
import pytest

from jaxland import tasks, validation
from jaxland.rundir import checkpoints
from jaxland.train import callbacks, population
from tests.helpers import StopAt, digits_config, flat

RUN = {'data.val_size': 200, 'optim.learning_rate': 0.05, 'train.num_epochs': 2}
RUN |= {'train.log_every_steps': 5, 'train.keep_checkpoints': 3}
WALL_CLOCK = ('time', 'epoch_time', 'steps_per_sec', 'uptime', 'elapsed_time', 'train_time')


def population_config(axes: dict, base=None, mode='zip'):
  config = digits_config(RUN | (base or {}))
  config.population.mode = mode
  for key, values in axes.items():
    *sections, leaf = key.split('.')
    node = config.population
    for s in sections:
      node = node[s]
    node[leaf] = values if key in population.SETTINGS else tuple(values)
  return config


def records(run_dir):
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  kept = [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]
  return [r for r in kept if set(r) != {'step'}]  # Rows of wall-clock values only (progress).


def assert_close_records(a, b, rtol=1e-5):
  assert [sorted(r) for r in a] == [sorted(r) for r in b]
  for ra, rb in zip(a, b, strict=True):
    for k in ra:
      if isinstance(ra[k], str) or isinstance(rb[k], str):  # Non-finite: once a value has
        assert not np.isfinite(float(ra[k])) and not np.isfinite(float(rb[k])), k  # overflowed,
        #                                     inf or nan depends on the order of the operations.
      else:
        np.testing.assert_allclose(ra[k], rb[k], rtol=rtol, atol=1e-7, err_msg=k)


def check_members_equal_sequential(config, tmp_path, rtol=1e-5):
  """Runs the population, then each member alone; compares them member by member."""
  pop_dir = tmp_path / 'pop'
  summary = tasks.run(config, str(pop_dir))
  names = population.member_names(config)
  assert sorted(summary['members']) == sorted(names)
  for name, overrides in zip(names, population.members(config), strict=True):
    alone = tmp_path / 'alone' / name
    expected = tasks.run(population.member_config(config, overrides), str(alone))
    member = pop_dir / name
    got = json.load(open(member / 'summary.json'))
    assert got['status'] == expected['status'] == summary['members'][name], name
    assert (got['step'], got['epoch']) == (expected['step'], expected['epoch']), name
    assert sorted(got) == sorted(expected), name  # The plain run's summary keys, clock included.
    assert 0 < got['compile_seconds'] < got['seconds'], name
    assert got['train_seconds'] <= got['seconds'], name
    # A diverging member's values grow chaotically (to ~1e27 here), amplifying the reordering:
    # its status and step match exactly, its last values to 1e-3.
    loose = 1e-3 if got['status'] == 'diverged' else rtol
    assert_close_records(records(member), records(alone), loose)
    if checkpoints.exists(str(alone)):
      got_params = flat(checkpoints.load_params(str(member))[0])
      want_params = flat(checkpoints.load_params(str(alone))[0])
      np.testing.assert_allclose(
        got_params,
        want_params,
        rtol=rtol,
        atol=1e-6,  # Near-zero weights: 1e-6 of the weights' scale (~1), not of themselves.
      )
      drift = np.linalg.norm(got_params - want_params) / np.linalg.norm(want_params)
      assert checkpoints.relative_param_difference(str(member), str(alone)) == pytest.approx(
        drift, rel=1e-6, abs=1e-12
      )  # What results/{distance,lr_science}/population.py report.
    saved = json.load(open(member / 'config.json'))
    for key, value in overrides.items():
      node = saved
      for part in key.split('.'):
        node = node[part]
      assert node == value  # Each member's config.json holds its own values.
  return pop_dir


def test_members_zip_product_and_names():
  zipped = population_config({'seed': (0, 1), 'optim.learning_rate': (0.1, 0.2)})
  assert population.members(zipped) == [
    {'seed': 0, 'optim.learning_rate': 0.1},
    {'seed': 1, 'optim.learning_rate': 0.2},
  ]
  assert population.member_names(zipped) == ['learning_rate=0.1,seed=0', 'learning_rate=0.2,seed=1']
  crossed = population_config({'seed': (0, 1), 'optim.learning_rate': (0.1, 0.2)}, mode='product')
  assert len(population.members(crossed)) == 4
  member = population.member_config(crossed, population.members(crossed)[3])
  assert (member.seed, member.optim.learning_rate, population.axes(member)) == (1, 0.2, {})
  # A template is filled with each member's own values, so no axis order can mislabel one.
  crossed.population.names = ('s{seed}_lr{optim.learning_rate:g}x{learning_rate}',)
  tasks.validate(crossed, num_devices=1)
  assert population.member_names(crossed) == [
    f's{m["seed"]}_lr{m["optim.learning_rate"]:g}x{m["optim.learning_rate"]}'
    for m in population.members(crossed)
  ]
  assert population.member_names(crossed)[1] == 's1_lr0.1x0.1'  # Sorted keys: seed varies fastest.


def test_member_dirs_sit_in_the_workdir_however_it_is_spelled():
  """A relative workdir (`--workdir=runs/x`, as results/cifar/questions.py passes) holds its
  members directly, not under a second copy of itself; member_root is relative to the workdir
  unless absolute."""
  config = population_config({'seed': (0, 1)})
  assert population.member_dir(config, 'runs/x', 'seed=0') == os.path.join('runs', 'x', 'seed=0')
  assert population.member_dir(config, '/abs/x', 'seed=0') == '/abs/x/seed=0'
  config.population.member_root = 'members'
  inside = os.path.join('runs', 'x', 'members', 'seed=1')
  assert population.member_dir(config, 'runs/x', 'seed=1') == inside
  config.population.member_root = '/elsewhere'
  assert population.member_dir(config, 'runs/x', 'seed=1') == '/elsewhere/seed=1'


@pytest.mark.parametrize(
  'axes, message',
  [
    ({'seed': (0, 1, 2), 'optim.learning_rate': (0.1, 0.2)}, 'equal lengths'),
    ({'repulsion.strength': (1.0, 2.0)}, 'has no repulsion.strength'),
    ({'model.dropout2d': (0.0, 0.5)}, "model 'mlp'.* has no model.dropout2d"),
    ({'optim.learning_rate': (0.1, float('inf'))}, 'member 1'),
    ({'seed': (0, 1, 2), 'member_devices': 2}, 'must divide the device count'),
    ({'seed': (0, 1), 'names': ('a', 'a')}, 'distinct names'),
    ({'seed': (0, 1), 'names': ('run{lr}',)}, r"template fields among the axes \['seed'\]"),
    ({'seed': (0, 1), 'names': ('run{seed:.2q}',)}, 'format specs fit the values'),
  ],
)
def test_a_population_that_cannot_be_one_state_is_one_line(axes, message):
  with pytest.raises(validation.ConfigError, match=message):
    tasks.validate(population_config(axes), num_devices=8)


def test_mlp_members_in_seed_lr_wd_and_smoothing_with_one_diverging(tmp_path):
  config = population_config(
    {
      'seed': (0, 1, 2),
      'optim.learning_rate': (0.1, 0.05, 1e6),
      'optim.weight_decay': (1e-3, 1e-3, 0.0),
      'train.label_smoothing': (0.0, 0.1, 0.0),
    }
  )
  pop_dir = check_members_equal_sequential(config, tmp_path)
  statuses = json.load(open(pop_dir / 'summary.json'))['members']
  assert list(statuses.values()) == ['done', 'done', 'diverged']


def test_batchnorm_cnn_members_with_their_own_dropout_rates(tmp_path):
  # Rates whose keep probability 1 - r is exact in float32, so that a member's traced rate and
  # the run alone's python one scale by the same number and draw the same mask.
  base = {'model.name': 'convnet', 'model.num_conv_layers': 1, 'model.filters': 4}
  base |= {'model.kernel_size': 3, 'model.batch_norm': True, 'model.hidden_sizes': (16,)}
  axes = {'init_seed': (0, 1), 'data_seed': (5, 6)}
  axes |= {'model.dropout': (0.0, 0.5), 'model.dropout2d': (0.25, 0.0)}
  check_members_equal_sequential(population_config(axes, base), tmp_path)


def test_repulsion_strength_and_width_members_with_anchors(tmp_path):
  base = {'repulsion.enabled': True, 'repulsion.anchor_epochs': (1,)}
  base |= {'repulsion.snapshot_epochs': (1,)}
  axes = {'repulsion.strength': (0.0, 10.0, 10.0), 'repulsion.width': (1.0, 1.0, 2.0)}
  pop_dir = check_members_equal_sequential(population_config(axes, base), tmp_path)
  widths = [
    [r['optim/repulsion_width'] for r in records(pop_dir / name) if 'optim/repulsion_width' in r]
    for name in population.member_names(population_config(axes, base))
  ]
  assert [set(w) for w in widths] == [{1.0}, {1.0}, {2.0}]  # Each member pushed with its own.


def test_members_split_over_a_member_data_mesh_of_8_devices(tmp_path):
  # 4 members over 4 rows of 2 devices (conftest gives the session 8 CPU devices): each member's
  # state lives on its own row, and each trains as it does alone on all 8 (its batch split over
  # 2 devices instead of 8: the per-device sums regroup, within the tolerance above).
  axes = {'seed': (0, 1, 2, 3), 'optim.learning_rate': (0.05, 0.1, 0.05, 0.1)}
  config = population_config(axes)
  config.population.member_devices = 4
  assert jax.device_count() == 8
  people = [
    population.Member(i, name, population.member_config(config, m), str(tmp_path / name))
    for i, (name, m) in enumerate(
      zip(population.member_names(config), population.members(config), strict=True)
    )
  ]
  run = population._build(config, people)
  assert dict(run.mesh.shape) == {'member': 4, 'data': 2}
  for leaf in jax.tree.leaves(run.state):
    rows = [sorted(d.id for d in devices) for _, devices in _rows(leaf)]
    assert len(rows) == 4 and all(len(r) == 2 for r in rows), rows
  check_members_equal_sequential(config, tmp_path)


def _rows(array):
  """[(member index, devices holding it)] of a member-sharded array."""
  held = {}
  for device, index in array.sharding.devices_indices_map(array.shape).items():
    held.setdefault(index[0].start or 0, set()).add(device)
  return sorted(held.items())


def test_a_population_of_one_is_the_plain_run_bit_for_bit(tmp_path):
  config = population_config({'seed': (3,)})
  tasks.run(config, str(tmp_path / 'pop'))
  plain = population.member_config(config, {'seed': 3})
  tasks.run(plain, str(tmp_path / 'plain'))
  assert records(tmp_path / 'pop' / 'seed=3') == records(tmp_path / 'plain')
  np.testing.assert_array_equal(
    flat(checkpoints.load_params(str(tmp_path / 'pop' / 'seed=3'))[0]),
    flat(checkpoints.load_params(str(tmp_path / 'plain'))[0]),
  )


class CompileLog(logging.Handler, callbacks.Callback):
  """From the end of the first epoch on, records every compilation."""

  def __init__(self):
    logging.Handler.__init__(self)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())

  def on_epoch_end(self, run, epoch):
    if epoch == 1 and not jax.config.jax_log_compiles:
      jax.config.update('jax_log_compiles', True)
      logging.getLogger('jax').addHandler(self)
    return {}


def test_members_that_differ_in_values_never_recompile(tmp_path):
  watch = CompileLog()
  config = population_config({'seed': (0, 1), 'optim.learning_rate': (0.05, 0.1)})
  config.train.num_epochs = 3
  try:
    tasks.run(config, str(tmp_path), callbacks=[watch])
  finally:
    jax.config.update('jax_log_compiles', False)
    logging.getLogger('jax').removeHandler(watch)
  compiles = [m for m in watch.messages if 'ompil' in m and 'population' not in m]
  assert not compiles, compiles


def test_a_stopped_population_resumes_to_the_uninterrupted_one(tmp_path):
  config = population_config({'seed': (0, 1), 'optim.learning_rate': (0.05, 0.1)})
  full = tmp_path / 'full'
  tasks.run(config, str(full))
  cut = tmp_path / 'cut'
  first = tasks.run(config, str(cut), callbacks=[StopAt(27)])
  assert first['status'] == 'interrupted'
  assert tasks.run(config, str(cut))['status'] == 'done'
  for name in population.member_names(config):
    assert records(cut / name) == records(full / name)
    np.testing.assert_array_equal(
      flat(checkpoints.load_params(str(cut / name))[0]),
      flat(checkpoints.load_params(str(full / name))[0]),
    )


def test_sweep_vectorize_trains_groups_as_populations_and_skips_finished(tmp_path, capsys):
  import ml_collections

  from jaxland import sweep
  from jaxland.sweep import run as sweep_run

  config = ml_collections.ConfigDict()
  config.name = 'vectorized'
  config.base = digits_config(RUN)
  config.space = sweep.product(
    sweep.values('model.hidden_sizes', [(16,), (32,)]),
    sweep.values('optim.learning_rate', [0.05, 0.1]),
  )
  workdir = tmp_path / 'sweep'
  results = sweep_run.run(config, str(workdir), vectorize=4)
  assert len(results) == 4 and set(results.values()) == {'done'}
  assert '4 points in 2 population(s)' in capsys.readouterr().out
  points = sweep.resolve(config)
  for point in points[3:]:  # Against the same point run alone.
    alone = tmp_path / 'alone' / point.name
    tasks.run(sweep.point_config(config, point), str(alone))
    assert_close_records(records(workdir / point.name), records(alone))
  assert sweep_run.run(config, str(workdir), vectorize=4) == {}
  assert '4 finished, 0 to run' in capsys.readouterr().out


def test_a_population_with_a_diverged_member_resumes_to_the_uninterrupted_one(tmp_path, capsys):
  """The diverged member stays frozen, its record intact; the others go on from their checkpoint;
  a rerun of the finished population trains nothing and rewrites nothing."""
  config = population_config({'seed': (0, 1), 'optim.learning_rate': (0.05, 1e6)})
  full = tmp_path / 'full'
  statuses = ['done', 'diverged']
  assert list(tasks.run(config, str(full))['members'].values()) == statuses
  cut = tmp_path / 'cut'
  assert tasks.run(config, str(cut), callbacks=[StopAt(27)])['status'] == 'interrupted'
  assert list(tasks.run(config, str(cut))['members'].values()) == statuses
  for name in population.member_names(config):
    assert records(cut / name) == records(full / name)
    steps = [json.load(open(d / name / 'summary.json'))['step'] for d in (cut, full)]
    assert steps[0] == steps[1], name
  before = {p: p.read_bytes() for p in cut.rglob('*') if p.is_file() and p.suffix != '.lock'}
  capsys.readouterr()
  assert list(tasks.run(config, str(cut))['members'].values()) == statuses
  assert 'every member finished before: nothing to train' in capsys.readouterr().out
  for path, data in before.items():
    if path.name not in ('status.json', 'summary.json') or path.parent != cut:
      assert path.read_bytes() == data, path  # The population's own status is rewritten.
