"""Sweeps: axis expansion, point names, bad specs, real runs on digits, skip / resume, SLURM."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from jaxland import sweep, tasks
from jaxland.sweep import run as sweep_run
from jaxland.train import callbacks
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_base():
  """A digits MLP run of 2 epochs x 23 steps (1500 examples, batch 64)."""
  overrides = {'data.eval_batch_size': 96, 'model.hidden_sizes': (16,), 'optim.momentum': 0.0}
  return helpers.digits_config(overrides | {'train.num_epochs': 2, 'train.log_every_steps': 5})


def tiny_sweep(space):
  config = ml_collections.ConfigDict()
  config.name = 'tiny'
  config.base = tiny_base()
  config.space = space
  config.report = ml_collections.ConfigDict({'colour_by': 'optim.learning_rate'})
  return config


# --- Expansion --------------------------------------------------------------------------------


def test_product_counts_order_and_names():
  space = sweep.product(
    sweep.values('optim.learning_rate', [0.1, 0.2, 0.5]),
    sweep.values('model.hidden_sizes', [(8,), (8, 8)]),
  )
  points = sweep.make_points(space)
  assert len(points) == 6
  # The first axis varies slowest, as itertools.product.
  assert [p.overrides['optim.learning_rate'] for p in points] == [0.1, 0.1, 0.2, 0.2, 0.5, 0.5]
  assert points[1].overrides['model.hidden_sizes'] == [8, 8]
  assert points[1].name == 'learning_rate=0.1,hidden_sizes=8-8'
  assert [p.index for p in points] == list(range(6))


def test_zipped_with_tags_and_nesting():
  grid = [(2, 32), (3, 32), (2, 64)]
  space = sweep.product(
    sweep.zipped(
      sweep.values('model.hidden_sizes', [(w,) * (n - 1) for n, w in grid]),
      sweep.values('tag.layers', [n for n, _ in grid]),
    ),
    sweep.values('optim.learning_rate', [0.01, 0.02]),
  )
  points = sweep.make_points(space)
  assert len(points) == 6
  assert points[2].overrides == {'model.hidden_sizes': [32, 32], 'optim.learning_rate': 0.01}
  assert points[2].tags == {'tag.layers': 3}
  assert 'layers' not in points[2].name  # Tags join the name only when needed to tell points apart.


def test_tags_name_points_when_overrides_repeat():
  space = sweep.zipped(sweep.values('tag.rep', [0, 1]), sweep.values('seed', [3, 3]))
  names = [p.name for p in sweep.make_points(space)]
  assert names == ['rep=0,seed=3', 'rep=1,seed=3']  # Keys in axis order.


def test_sample_is_reproducible_and_in_range():
  dists = {
    'optim.learning_rate': sweep.loguniform(1e-4, 1e-1),
    'seed': sweep.randint(1, 3),
    'model.activation': sweep.choice(['relu', 'tanh']),
    'optim.momentum': sweep.uniform(0.5, 0.9),
  }
  a = sweep.expand(sweep.sample(200, dists, seed=1))
  assert a == sweep.expand(sweep.sample(200, dists, seed=1))
  assert a != sweep.expand(sweep.sample(200, dists, seed=2))
  lr = np.array([p['optim.learning_rate'] for p in a])
  assert lr.min() >= 1e-4 and lr.max() <= 1e-1
  # Log-uniform: about half the draws lie below the geometric midpoint 10^-2.5.
  assert 0.35 < np.mean(lr < 10**-2.5) < 0.65
  assert {p['seed'] for p in a} == {1, 2, 3}
  assert {p['model.activation'] for p in a} == {'relu', 'tanh'}
  assert all(0.5 <= p['optim.momentum'] <= 0.9 for p in a)


def test_truncate_keeps_first_values():
  space = sweep.product(sweep.values('a', [1, 2, 3]), sweep.sample(9, {'b': sweep.uniform(0, 1)}))
  assert len(sweep.expand(sweep.truncate(space, 2))) == 4


@pytest.mark.parametrize(
  'space, message',
  [
    (sweep.values('optim.learning_rate', []), 'has no values'),
    (sweep.values('optim.learning_rat', [0.1]), "'optim.learning_rat' is not a config key"),
    (sweep.values('optimizer.learning_rate', [0.1]), "'optimizer' is not a config section"),
    (sweep.product(), 'needs at least one axis'),
    (sweep.zipped(sweep.values('seed', [1, 2]), sweep.values('data_seed', [1])), 'lengths'),
    (sweep.product(sweep.values('seed', [1]), sweep.values('seed', [2])), 'two combined axes'),
    (sweep.values('optim.learning_rate', [0.1, -1.0]), 'learning_rate=-1'),
    (sweep.values('train.num_epochs', [1.5]), "'train.num_epochs' = 1.5"),
    (sweep.sample(3, {'seed': ['normal', 0, 1]}), 'use one of'),
    ({'kind': 'grid'}, 'Unknown sweep axis kind'),
    (sweep.zipped(sweep.values('seed', [1, 1]), sweep.values('tag.x', [2, 2])), 'repeat'),
  ],
)
def test_bad_specs_fail_clearly(space, message):
  with pytest.raises(ValueError, match=message.replace('(', r'\(')):
    sweep.resolve(tiny_sweep(space))


def test_apply_converts_lists_and_keeps_base():
  base = tiny_base()
  config = sweep.apply(base, {'model.hidden_sizes': [4, 4], 'optim.learning_rate': 0.3})
  assert config.model.hidden_sizes == (4, 4) and config.optim.learning_rate == 0.3
  assert base.model.hidden_sizes == (16,) and base.optim.learning_rate == 0.01


def test_slot_env_shares_cores_and_gpus():
  env, cpus = sweep_run.slot_env(1, 2, cpus=[0, 1, 2, 3])
  assert cpus == [2, 3] and env['JAX_PLATFORMS'] == 'cpu'
  assert sweep_run.slot_env(2, 3, cpus=[0, 1])[1] == [0]  # More workers than cores: wrap around.
  env, _ = sweep_run.slot_env(3, 4, gpus=['0', '1'])
  assert env['CUDA_VISIBLE_DEVICES'] == '1' and env['XLA_PYTHON_CLIENT_PREALLOCATE'] == 'false'


# --- Real runs --------------------------------------------------------------------------------


class StopAt(callbacks.Callback):
  """Asks the loop to stop (as SIGTERM does) after step `step`."""

  def __init__(self, step):
    self.every_steps = step

  def on_step(self, run):
    run.stop_requested = True
    return {}


def _steps(run_dir):
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    return [json.loads(line)['step'] for line in f]


def test_runs_skip_done_and_resume_interrupted(tmp_path, capsys):
  config = tiny_sweep(sweep.values('optim.learning_rate', [0.05, 0.2]))
  workdir = str(tmp_path / 'sweep')
  points = sweep.resolve(config)
  a, b = (os.path.join(workdir, p.name) for p in points)
  # Point b is interrupted at step 10, as a killed job would leave it (checkpoint + status).
  summary = tasks.run(sweep.point_config(config, points[1]), b, callbacks=[StopAt(10)])
  assert summary['status'] == 'interrupted'

  assert sweep_run.run(config, workdir) == {points[0].name: 'done', points[1].name: 'done'}
  out = capsys.readouterr().out
  assert '2 points, 0 finished, 2 to run' in out and f'resumed from step 10 in {b}' in out
  for run_dir, lr in ((a, 0.05), (b, 0.2)):
    with open(os.path.join(run_dir, 'config.json')) as f:
      saved = json.load(f)
    assert saved['optim']['learning_rate'] == lr and saved['data']['name'] == 'digits'
    with open(os.path.join(run_dir, 'point.json')) as f:
      assert json.load(f)['overrides'] == {'optim.learning_rate': lr}
  assert _steps(b)[-1] == 46 and 15 in _steps(b)  # Resumed at 10, went on to 2 x 23 steps.
  with open(os.path.join(workdir, 'sweep.json')) as f:
    assert [p['name'] for p in json.load(f)['points']] == [p.name for p in points]

  assert sweep_run.write_slurm(config, points, workdir, ['--config=x.py']) is None  # Nothing left.
  size_a = os.path.getsize(os.path.join(a, 'metrics.jsonl'))
  assert sweep_run.run(config, workdir) == {}  # Both done: nothing reruns.
  assert '2 points, 2 finished, 0 to run' in capsys.readouterr().out
  assert os.path.getsize(os.path.join(a, 'metrics.jsonl')) == size_a

  # A failed point is retried; the SLURM array covers only unfinished points.
  with open(os.path.join(a, 'status.json'), 'w') as f:
    json.dump({'status': 'failed'}, f)
  assert [p.name for p in sweep_run.pending(workdir, points)] == [points[0].name]
  script = sweep_run.write_slurm(config, points, workdir, ['--config=x.py'], ['partition=gpu'], 4)
  with open(script) as f:
    text = f.read()
  assert '#SBATCH --array=0-0%4' in text and '#SBATCH --partition=gpu' in text
  assert '--point="${POINT}"' in text and f'--workdir={workdir}' in text
  with open(os.path.join(workdir, 'slurm', 'points.txt')) as f:
    assert f.read() == points[0].name + '\n'
  subprocess.run(['bash', '-n', script], check=True)


SWEEP_FILE = """
import ml_collections
from configs import default
from jaxland import sweep

def get_config(arg=None):
  base = default.get_config()
  base.data.name = 'digits'
  base.data.batch_size = 64
  base.data.eval_batch_size = 96
  base.model.hidden_sizes = (8,)
  base.train.num_epochs = 1
  base.train.max_steps = 3
  config = ml_collections.ConfigDict()
  config.name = 'cli'
  config.base = base
  config.space = sweep.values('seed', [1, 2])
  return config
"""


@pytest.mark.slow  # Three python processes: about 20 s on 2 idle cores.
def test_command_line_with_worker_processes(tmp_path):
  config_file = tmp_path / 'cli_sweep.py'
  config_file.write_text(SWEEP_FILE)
  workdir = tmp_path / 'sweep'
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  cmd = [
    sys.executable,
    '-m',
    'jaxland.sweep',
    f'--config={config_file}',
    f'--workdir={workdir}',
    '--parallel=2',
    '--config.base.optim.learning_rate=0.2',
  ]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  for seed in (1, 2):
    run_dir = workdir / f'seed={seed}'
    assert json.loads((run_dir / 'status.json').read_text())['status'] == 'done'
    saved = json.loads((run_dir / 'config.json').read_text())
    assert saved['seed'] == seed and saved['optim']['learning_rate'] == 0.2  # Override reached.
    assert (workdir / 'logs' / f'seed={seed}.log').exists()
