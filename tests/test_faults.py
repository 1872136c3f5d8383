"""Faults injected into small digits runs: a failed checkpoint write, corrupt checkpoints, a stop on
an epoch's last step, two writers of one workdir, interrupted runs' records, late config errors,
values that cannot be right, and a new user's mistakes on the command line. The oracle is always
the same run done without the fault."""

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxland import tasks, validation
from jaxland.rundir import checkpoints, workdir
from tests.helpers import StopAt, digits_config, flat, num_train

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Three epochs of the digits MLP, a checkpoint after each (all kept), train metrics every 7 steps
# (not a divisor of the 20 steps per epoch, so logs straddle epoch ends and checkpoints).
RUN = {'data.val_size': 200, 'optim.learning_rate': 0.05, 'train.num_epochs': 3}
RUN |= {'train.log_every_steps': 7, 'train.keep_checkpoints': 5}
SPE = num_train(digits_config(RUN)) // 64
WALL_CLOCK = ('time', 'epoch_time', 'steps_per_sec', 'uptime', 'elapsed_time', 'train_time')


def records(run_dir):
  """metrics.jsonl without its wall-clock fields."""
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  kept = [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]
  return [r for r in kept if set(r) != {'step'}]  # Rows of wall-clock values only (progress).


def summary(run_dir):
  """summary.json without its wall-clock seconds (which differ between any two runs)."""
  with open(os.path.join(run_dir, 'summary.json')) as f:
    return {k: v for k, v in json.load(f).items() if 'seconds' not in k}


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """The oracle: the run done in one go."""
  run_dir = str(tmp_path_factory.mktemp('full'))
  assert tasks.run(digits_config(RUN), run_dir)['status'] == 'done'
  return run_dir


def assert_same_run(run_dir, oracle):
  assert records(run_dir) == records(oracle)
  assert summary(run_dir) == summary(oracle)
  np.testing.assert_array_equal(
    flat(checkpoints.load_params(run_dir)[0]), flat(checkpoints.load_params(oracle)[0])
  )


# --- 1. A failed checkpoint write -----------------------------------------------------------------

FAILING_WRITE = """
import os, sys
real = os.makedirs
def makedirs(path, *args, **kwargs):
  if 'orbax-checkpoint-tmp' in str(path):
    raise PermissionError(13, 'Permission denied (injected)', str(path))
  return real(path, *args, **kwargs)
os.makedirs = makedirs
sys.argv = ['jaxland.main', '--config=configs/fashion_mlp.py:smoke', '--workdir=' + sys.argv[1],
            '--config.data.name=digits', '--config.data.fallback=', '--config.data.batch_size=64']
from absl import app
from jaxland import cli, main
app.run(main.main, flags_parser=cli.flags_parser)
"""


def test_a_failed_checkpoint_write_exits_at_once_with_one_line(tmp_path):
  t0 = time.time()
  done = subprocess.run(
    [sys.executable, '-c', FAILING_WRITE, str(tmp_path)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=240,  # Today's async Orbax writer hung here forever.
  )
  assert done.returncode == 1, done.stderr[-2000:]
  last = done.stderr.strip().splitlines()[-1]
  assert (
    last.startswith('jaxland: failed: CheckpointError: writing checkpoint') and 'injected' in last
  )
  assert 'Traceback' not in done.stderr
  status = json.load(open(tmp_path / 'status.json'))
  assert status['status'] == 'failed' and 'injected' in status['message']
  assert time.time() - t0 < 240


# --- 2. Corrupt checkpoints -----------------------------------------------------------------------


def corrupt(run_dir, step, how):
  step_dir = pathlib.Path(run_dir) / 'checkpoints' / str(step)
  if how == 'metadata':
    (step_dir / '_CHECKPOINT_METADATA').unlink()
    return
  largest = max((p for p in (step_dir / 'state').rglob('*') if p.is_file()), key=os.path.getsize)
  data = bytearray(largest.read_bytes())
  if how == 'flip':
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
  else:  # truncate
    data = data[: len(data) // 2]
  largest.write_bytes(bytes(data))


@pytest.mark.parametrize('how', ['flip', 'truncate', 'metadata'])
def test_a_corrupt_last_checkpoint_is_skipped_for_the_newest_good_one(
  uninterrupted, tmp_path, capsys, how
):
  run_dir = str(tmp_path)
  tasks.run(digits_config(RUN), run_dir)
  corrupt(run_dir, 3 * SPE, how)
  capsys.readouterr()
  assert tasks.run(digits_config(RUN), run_dir)['status'] == 'done'
  out = capsys.readouterr().out
  assert f'skipping checkpoint {3 * SPE}' in out and f'resumed from step {2 * SPE}' in out
  assert_same_run(run_dir, uninterrupted)


def test_no_good_checkpoint_says_so_in_one_line(tmp_path):
  run_dir = str(tmp_path)
  tasks.run(digits_config(RUN | {'train.num_epochs': 1}), run_dir)
  corrupt(run_dir, SPE, 'flip')
  with pytest.raises(checkpoints.CheckpointError, match='no good checkpoint to resume from'):
    tasks.run(digits_config(RUN | {'train.num_epochs': 1}), run_dir)
  with pytest.raises(checkpoints.CheckpointError, match=f'checkpoint {SPE}: checksum mismatch'):
    checkpoints.load_params(f'{run_dir}:{SPE}')


# --- 3 and 5. Interrupted runs leave the records of an uninterrupted one -------------------------


@pytest.mark.parametrize('stop', [SPE, 3 * SPE, SPE + 9], ids=['epoch_end', 'last_step', 'mid'])
def test_a_stopped_and_resumed_run_equals_the_uninterrupted_one(uninterrupted, tmp_path, stop):
  run_dir = str(tmp_path)
  first = tasks.run(digits_config(RUN), run_dir, callbacks=[StopAt(stop)])
  assert first['status'] == ('done' if stop == 3 * SPE else 'interrupted')
  if first['status'] == 'interrupted':
    assert tasks.run(digits_config(RUN), run_dir)['status'] == 'done'
  assert_same_run(run_dir, uninterrupted)


def test_a_killed_run_logs_nothing_twice(uninterrupted, tmp_path):
  """SIGKILL after the last checkpoint: the rows logged since are written again on resume."""
  run_dir = str(tmp_path)
  tasks.run(digits_config(RUN), run_dir)
  for step in (3 * SPE,):  # As if killed before the last checkpoint was written.
    for p in sorted((pathlib.Path(run_dir) / 'checkpoints' / str(step)).rglob('*'), reverse=True):
      p.unlink() if p.is_file() else p.rmdir()
    (pathlib.Path(run_dir) / 'checkpoints' / str(step)).rmdir()
  assert tasks.run(digits_config(RUN), run_dir)['status'] == 'done'
  assert_same_run(run_dir, uninterrupted)


def test_resume_false_and_overwrite_start_afresh(uninterrupted, tmp_path, capsys):
  run_dir = str(tmp_path)
  tasks.run(digits_config(RUN), run_dir)
  for key in ('resume', 'overwrite'):
    config = digits_config(RUN)
    config[key] = key == 'overwrite'
    capsys.readouterr()
    assert tasks.run(config, run_dir)['status'] == 'done'
    assert 'resumed from' not in capsys.readouterr().out
    assert_same_run(run_dir, uninterrupted)


# --- 4. Two writers of one workdir ----------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
  with workdir.lock(str(tmp_path)):
    with pytest.raises(workdir.WorkdirLocked, match=f'in use by pid {os.getpid()} on '):
      tasks.run(digits_config(RUN | {'train.max_steps': 3}), str(tmp_path))
  assert not (tmp_path / 'config.json').exists()  # Refused before anything was written.


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
  dead = subprocess.run(
    [sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True
  )
  (tmp_path / workdir.LOCK_FILE).write_text(
    json.dumps({'pid': int(dead.stdout), 'host': 'gone', 'start': 0.0})
  )
  with caplog.at_level('WARNING'):
    assert tasks.run(digits_config(RUN | {'train.max_steps': 3}), str(tmp_path))['status'] == 'done'
  assert 'Taking over the lock' in caplog.text


# --- 6 and 7. Config errors found before anything is written; values that cannot be right ---------


@pytest.mark.parametrize(
  'overrides, message',
  [
    ({'repulsion.anchor_from': '/nonexistent/run'}, 'repulsion.anchor_from'),
    ({'data.batch_size': 4096, 'data.eval_batch_size': 64}, 'exceeds the'),
    ({'data.val_size': 1500}, 'val_size'),
  ],
)
def test_data_dependent_mistakes_are_found_before_anything_is_written(tmp_path, overrides, message):
  run_dir = tmp_path / 'run'
  with pytest.raises(validation.BadInput, match=message):
    tasks.run(digits_config(RUN | overrides), str(run_dir))
  assert not run_dir.exists()


def test_a_workdir_without_a_checkpoint_accepts_a_changed_config(tmp_path):
  workdir.write_config(str(tmp_path), digits_config(RUN | {'optim.learning_rate': 9.0}))
  assert tasks.run(digits_config(RUN | {'train.max_steps': 3}), str(tmp_path))['status'] == 'done'


def test_a_finite_loss_far_above_the_first_is_divergence(tmp_path):
  config = digits_config(RUN | {'optim.learning_rate': 1e-9, 'train.diverge_factor': 0.9})
  result = tasks.run(config, str(tmp_path))  # The loss stays put: above 0.9 x the first one.
  assert result['status'] == 'diverged' and 'train.diverge_factor' in result['message']


def test_an_unchanged_config_json_is_not_rewritten(tmp_path):
  tasks.run(digits_config(RUN | {'train.num_epochs': 1}), str(tmp_path))
  before = os.stat(tmp_path / 'config.json').st_mtime_ns
  time.sleep(0.01)
  tasks.run(digits_config(RUN | {'train.num_epochs': 1}), str(tmp_path))
  assert os.stat(tmp_path / 'config.json').st_mtime_ns == before


# --- A new user's mistakes: one line, exit code 2 -------------------------------------------------


@pytest.mark.parametrize(
  'args, expected',
  [
    (['--config=configs/fashion_mlp.py', '--config.optim.learnig_rate=0.1'], 'did you mean'),
    (['--config=configs/fashion_mlp.py', '--config.optim.learning_rate=abc'], 'learning_rate'),
    (['--config=configs/fashion_mlp.py', '--config.optim.learning_rate=inf'], 'finite'),
    (['--config=configs/does_not_exist.py'], 'no such config file'),
    (['--config=configs/cifar_resnet.py:jpeg76'], "Unknown config argument 'jpeg76'"),
  ],
)
def test_a_mistake_on_the_command_line_is_one_line(tmp_path, args, expected):
  done = subprocess.run(
    [sys.executable, '-m', 'jaxland.main', *args, f'--workdir={tmp_path / "run"}'],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert done.returncode == 2
  lines = [line for line in done.stderr.splitlines() if line.strip()]
  assert lines and lines[-1].startswith('jaxland: bad config: ') and expected in lines[-1]
  assert 'Traceback' not in done.stderr and 'USAGE' not in done.stderr
  assert not (tmp_path / 'run').exists()


def test_the_offline_headline_command_names_every_route(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != 'JAXLAND_DATA_DIR'}
  done = subprocess.run(
    [
      sys.executable,
      '-m',
      'jaxland.main',
      '--config=configs/cifar_distance.py',
      f'--config.data.data_dir={tmp_path / "tfds"}',
      f'--workdir={tmp_path / "run"}',
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
    env=env,
  )
  assert done.returncode == 2
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith('jaxland: data unavailable: ')
  for route in (':jpeg75', 'JAXLAND_DATA_DIR', 'config.data.manual_dir', 'cifar-10-binary.tar.gz'):
    assert route in last, route
  assert not (tmp_path / 'run').exists()
