"""Tests of jaxland.output.metrics: a training run imports no TensorFlow, its events file reads back
in TensorBoard's own reader with metrics.jsonl's values, ReportProgress's steps_per_sec reaches the
JSONL, and a resume drops what was logged past the restored step (JSONL and TensorBoard)."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from clu import periodic_actions
from tensorboard.backend.event_processing import event_accumulator

from jaxland.output import metrics

REPO = pathlib.Path(__file__).parents[1]

TRAIN_WITHOUT_TF = textwrap.dedent("""
  import json, sys
  import jaxland.tasks
  from tests.helpers import digits_config
  config = digits_config({'train.num_epochs': 2, 'train.log_every_steps': 5})
  summary = jaxland.tasks.run(config, sys.argv[1])
  loaded = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tensorflow_datasets'})
  print('RESULT', json.dumps({'status': summary['status'], 'loaded': loaded}))
""")


def _scalars(logdir) -> dict:
  """{tag: {step: value}} as TensorBoard's Python loader sees the directory (all its files)."""
  acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={'scalars': 0})
  acc.Reload()
  return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()['scalars']}


def _jsonl(logdir) -> dict:
  """{key: {step: value}} of metrics.jsonl (one value per key and step, as the loop logs)."""
  out = {}
  for record in metrics.read_jsonl(str(logdir)):
    for key, value in record.items():
      if key not in ('step', 'time'):
        assert record['step'] not in out.setdefault(key, {}), (key, record['step'])
        out[key][record['step']] = value
  return out


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
  """A digits training run through jaxland.tasks, in a fresh process; its directory."""
  workdir = tmp_path_factory.mktemp('run') / 'digits'
  env = {**os.environ, 'PYTHONPATH': str(REPO), 'JAXLAND_CACHE_DIR': ''}
  proc = subprocess.run(
    [sys.executable, '-c', TRAIN_WITHOUT_TF, str(workdir)],
    cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.split('RESULT ')[-1])
  assert result['status'] == 'done'
  return workdir, result['loaded']


def test_training_imports_no_tensorflow(run_dir):
  _, loaded = run_dir
  assert loaded == []  # Neither TensorFlow nor TFDS: digits needs neither.


def test_events_file_reads_back_with_the_jsonl_values(run_dir):
  workdir, _ = run_dir
  events = [f for f in os.listdir(workdir) if f.startswith(metrics.EVENTS_PREFIX)]
  assert len(events) == 1
  logged, board = _jsonl(workdir), _scalars(workdir)
  assert {'train/loss', 'test/accuracy', 'optim/learning_rate', 'steps_per_sec'} <= set(logged)
  assert set(board) == set(logged)
  for key, by_step in logged.items():
    assert set(board[key]) == set(by_step), key
    for step, value in by_step.items():  # TensorBoard holds float32, JSONL the float64.
      assert board[key][step] == np.float32(value), (key, step)


def test_report_progress_writes_steps_per_sec_to_the_jsonl(tmp_path):
  writer = metrics.RunWriter(str(tmp_path))
  report = periodic_actions.ReportProgress(num_train_steps=3, writer=writer.writer)
  for step in (1, 2, 3):
    report(step)
  writer.close()
  records = [r for r in metrics.read_jsonl(str(tmp_path)) if 'steps_per_sec' in r]
  assert [(r['step'], sorted(r)) for r in records] == [(3, ['step', 'steps_per_sec', 'time'])]
  assert _scalars(tmp_path)['steps_per_sec'][3] == np.float32(records[0]['steps_per_sec'])


def _write_steps(writer, steps, offset):
  for step in steps:
    writer.write_scalars(step, {'x': offset + step})
    writer.write_scalars(step, {'y': -step})  # Two records at one step.


def test_truncate_jsonl_keeps_exactly_the_records_up_to_a_step(tmp_path):
  writer = metrics.RunWriter(str(tmp_path))
  _write_steps(writer, range(11), 0)
  writer.close()
  path = tmp_path / metrics.JSONL_NAME
  lines = path.read_text().splitlines(keepends=True)
  path.write_text(''.join(lines) + '{"step": 3, "x": 1')  # A torn line, as a kill may leave.
  assert metrics.truncate_jsonl(str(tmp_path), 5) == 11
  kept = path.read_text().splitlines(keepends=True)
  assert kept == [line for line in lines if json.loads(line)['step'] <= 5] == lines[:12]
  assert metrics.truncate_jsonl(str(path), 5) == 0 and path.read_text() == ''.join(kept)
  assert metrics.truncate_jsonl(str(tmp_path / 'elsewhere'), 5) == 0
  assert [f for f in os.listdir(tmp_path) if 'tmp' in f] == []


def test_resume_gives_the_uninterrupted_metrics_in_jsonl_and_tensorboard(tmp_path):
  """A run logs steps 0..10, dies, resumes from step 5 and logs 6..10 again (other values)."""
  first = metrics.RunWriter(str(tmp_path))
  _write_steps(first, range(11), 0)
  first.close()
  second = metrics.RunWriter(str(tmp_path))  # Built before the restore, as the loop does.
  second.resume(5)
  _write_steps(second, range(6, 11), 100)
  second.close()
  names = sorted(f for f in os.listdir(tmp_path) if f.startswith(metrics.EVENTS_PREFIX))
  assert names == [os.path.basename(first.events.path), os.path.basename(second.events.path)]
  expected = {s: float(s if s <= 5 else 100 + s) for s in range(11)}
  assert _jsonl(tmp_path)['x'] == expected
  board = _scalars(tmp_path)  # Both files merged: each step once, the resumed run's past 5.
  assert board['x'] == expected and board['y'] == {s: -s for s in range(11)}


def test_other_processes_only_log(tmp_path, monkeypatch):
  monkeypatch.setattr(metrics.jax, 'process_index', lambda: 1)
  writer = metrics.RunWriter(str(tmp_path))
  writer.write_scalars(1, {'x': 1.0})
  writer.resume(0)
  writer.close()
  assert os.listdir(tmp_path) == []
