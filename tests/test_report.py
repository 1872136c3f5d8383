"""The sweep report on fabricated run directories, against tables written out by hand."""

import json
import math
import os

import pytest

from jaxland.sweep import report

POINTS = [
  ('p0', 0.1, 2),
  ('p1', 0.2, 2),
  ('p2', 0.1, 3),
  ('p3', 0.2, 3),  # Never started: no run directory.
]
# Per run: status and epoch records (epoch, test accuracy, train loss, epoch time).
RUNS = {
  'p0': ('done', [(1, 0.50, 1.5, 3.0), (2, 0.70, 1.0, 1.0), (3, 0.70, 0.8, 1.0)]),
  'p1': ('diverged', [(1, 0.60, 1.2, 2.0), (2, 'nan', 'nan', 2.0)]),
  # Interrupted during epoch 2 and resumed: epoch 1 was logged twice; the later record counts.
  'p2': ('interrupted', [(1, 0.55, 1.4, 5.0), (1, 0.56, 1.3, 4.0), (2, 0.80, 0.9, 1.5)]),
}

# Worked out by hand from RUNS: best accuracy (first epoch reaching it), last train loss, epochs,
# summed epoch times; sorted by best accuracy, the never-started run last.
TABLE = """\
name,learning_rate,layers,status,best_test_accuracy,best_epoch,final_train_loss,epochs,wall_s
p2,0.1,3,interrupted,0.8000,2,0.9000,2,5.5000
p0,0.1,2,done,0.7000,2,0.8000,3,5.0000
p1,0.2,2,diverged,0.6000,1,nan,2,4.0000
p3,0.2,3,missing,-,-,-,0,-
"""
BEST_PER_LAYERS = """\
name,learning_rate,layers,status,best_test_accuracy,best_epoch,final_train_loss,epochs,wall_s
p0,0.1,2,done,0.7000,2,0.8000,3,5.0000
p2,0.1,3,interrupted,0.8000,2,0.9000,2,5.5000
"""


def write_jsonl(path, records):
  with open(path, 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in records)


def fabricate(root, name='fab'):
  """A sweep directory as jaxland.sweep and the training loop leave it."""
  os.makedirs(root)
  sweep_record = {
    'name': name,
    'command': f'python -m jaxland.sweep --config=x.py --workdir={root}',
    'report': {
      'group_by': ['tag.layers'],
      'heatmaps': [['tag.layers', 'optim.learning_rate']],
      'colour_by': 'optim.learning_rate',
      'strength': 'optim.learning_rate',
    },
    'points': [
      {'index': i, 'name': n, 'overrides': {'optim.learning_rate': lr}, 'tags': {'tag.layers': k}}
      for i, (n, lr, k) in enumerate(POINTS)
    ],
  }
  with open(os.path.join(root, 'sweep.json'), 'w') as f:
    json.dump(sweep_record, f)
  for name_, (status, epochs) in RUNS.items():
    run = os.path.join(root, name_)
    os.makedirs(run)
    with open(os.path.join(run, 'status.json'), 'w') as f:
      json.dump({'status': status, 'time': 0.0}, f)
    records = [{'step': 5, 'time': 0.0, 'train/loss': 9.0, 'test/accuracy': 0.99}]  # No epoch.
    records += [
      {
        'step': 10 * e,
        'time': 0.0,
        'epoch': float(e),
        'epoch_time': t,
        'test/accuracy': acc,
        'test/loss': 1.0,
        'train_epoch/loss': loss,
        'train_epoch/accuracy': 0.5,
      }
      for e, acc, loss, t in epochs
    ]
    write_jsonl(os.path.join(run, 'metrics.jsonl'), records)
  return str(root)


def test_table_equals_hand_computed(tmp_path):
  sweep_dir = fabricate(tmp_path / 'sweep')
  out = tmp_path / 'out'
  rows = report.report([sweep_dir], str(out))
  assert [r['name'] for r in rows] == ['p2', 'p0', 'p1', 'p3']
  assert (out / 'table.csv').read_text() == TABLE
  assert (out / 'best_per_group.csv').read_text() == BEST_PER_LAYERS
  md = (out / 'table.md').read_text()
  assert '| p2 | 0.1 | 3 | interrupted | 0.8000 | 2 | 0.9000 | 2 | 5.5000 |' in md
  assert 'interrupted 1' in md and 'missing 1' in md
  for name in (
    'curves.png',
    'train_vs_test.png',
    'heatmap_layers_x_learning_rate.png',
    'best_vs_learning_rate.png',
  ):
    assert (out / name).stat().st_size > 5000, name
    assert f']({name})' in md


def test_heatmap_is_best_over_other_keys(tmp_path):
  rows, _, _ = report.load([fabricate(tmp_path / 'sweep')])
  row_vals, col_vals, matrix = report.heatmap_matrix(rows, 'tag.layers', 'optim.learning_rate')
  assert row_vals == [2, 3] and col_vals == [0.1, 0.2]
  assert matrix[0] == [0.70, 0.60] and matrix[1][0] == 0.80 and math.isnan(matrix[1][1])
  # One row key only: each cell is the best over learning rates.
  _, _, by_layers = report.heatmap_matrix(rows, 'tag.layers', 'sweep')
  assert by_layers == [[0.70], [0.80]]


def test_several_sweeps_share_a_table(tmp_path):
  a = fabricate(tmp_path / 'a', name='mlp')
  b = fabricate(tmp_path / 'b', name='cnn')
  out = tmp_path / 'out'
  report.report([a, b], str(out), heatmaps=[('sweep', 'optim.learning_rate')], group_by=['sweep'])
  lines = (out / 'table.csv').read_text().splitlines()
  assert lines[0].startswith('sweep,name,learning_rate,layers,')
  assert len(lines) == 9 and {line.split(',')[0] for line in lines[1:]} == {'mlp', 'cnn'}
  assert (out / 'heatmap_sweep_x_learning_rate.png').exists()
  assert len((out / 'best_per_group.csv').read_text().splitlines()) == 3


def test_short_names_keep_clashing_keys_apart():
  names = report.short_names(['optim.learning_rate', 'model.dropout', 'other.dropout', 'tag.w'])
  assert names == {
    'optim.learning_rate': 'learning_rate',
    'model.dropout': 'model.dropout',
    'other.dropout': 'other.dropout',
    'tag.w': 'w',
  }


def test_unknown_report_key_fails(tmp_path):
  with pytest.raises(ValueError, match="report key 'model.width' is not swept"):
    report.report([fabricate(tmp_path / 's')], str(tmp_path / 'o'), heatmaps=[('model.width', 'x')])


def test_over_seeds_mean_and_sample_std_by_hand():
  row = lambda lr, seed, acc, loss: {
    'sweep': 's',
    'optim.learning_rate': lr,
    'seed': seed,
    'best_test_accuracy': acc,
    'final_train_loss': loss,
  }
  rows = [
    row(0.1, 0, 0.5, 1.0),
    row(0.1, 1, 0.6, 2.0),
    row(0.1, 2, 0.7, 3.0),
    row(0.2, 0, 0.8, 0.5),
    row(0.2, 1, None, math.nan),  # Diverged before its first evaluation.
  ]
  merged = report.over_seeds(rows, ['optim.learning_rate', 'seed'])
  assert [m['optim.learning_rate'] for m in merged] == [0.2, 0.1]  # Best mean first.
  high, low = merged
  assert (high['n_runs'], high['n_seeds'], high['std_best_test_accuracy']) == (2, 1, None)
  assert high['mean_best_test_accuracy'] == 0.8 and high['mean_final_train_loss'] == 0.5
  assert (low['n_runs'], low['n_seeds']) == (3, 3)
  assert low['mean_best_test_accuracy'] == pytest.approx(0.6)
  assert low['std_best_test_accuracy'] == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
  assert low['mean_final_train_loss'] == pytest.approx(2.0)
  assert 'seed' not in low
