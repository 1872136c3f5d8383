"""Snapshot-ensemble statistics against numpy and hand counts; the `ensemble` task end to end."""

import csv
import json
import os

import numpy as np
import pytest

from configs import default
from jaxland import tasks
from jaxland.distance import ensemble
from jaxland.output import metrics
from jaxland.rundir import checkpoints
from tests import helpers

RNG = np.random.default_rng(3)

# Three members, six examples, three classes; predictions by hand:
LABELS = np.array([0, 1, 2, 0, 1, 2])
PREDS = np.array(
  [
    [0, 1, 2, 1, 1, 0],  # wrong on 3, 5
    [0, 1, 1, 2, 1, 0],  # wrong on 2, 3, 5
    [0, 2, 2, 1, 0, 2],  # wrong on 1, 3, 4
  ]
)


def one_hot_probs(preds, k=3):
  return np.eye(k)[preds] * 0.8 + 0.2 / k


def test_ensemble_probs_equal_numpy_average():
  probs = RNG.dirichlet(np.ones(5), size=(4, 7))  # [M=4, N=7, C=5]
  np.testing.assert_allclose(ensemble.ensemble_probs(probs), probs.mean(axis=0), rtol=1e-12)
  w = np.array([1.0, 0.0, 2.0, 1.0])
  expected = (probs[0] + 2 * probs[2] + probs[3]) / 4
  np.testing.assert_allclose(ensemble.ensemble_probs(probs, w), expected, rtol=1e-12)
  np.testing.assert_allclose(ensemble.softmax(np.log(probs[0])), probs[0], rtol=1e-12)


def test_cumulative_and_member_accuracy():
  probs = one_hot_probs(PREDS)
  np.testing.assert_allclose(ensemble.member_accuracy(probs, LABELS), [4 / 6, 3 / 6, 3 / 6])
  # Members 1+2: ex2 ties (2 vs 1) and argmax takes class 1, wrong; ex3, ex5 wrong -> 3/6.
  # Members 1+2+3 vote by hand:
  # ex0: 0 0 0 -> 0 ok; ex1: 1 1 2 -> 1 ok; ex2: 2 1 2 -> 2 ok; ex3: 1 2 1 -> 1 wrong;
  # ex4: 1 1 0 -> 1 ok; ex5: 0 0 2 -> 0 wrong.
  cumulative = ensemble.cumulative_accuracy(probs, LABELS)
  np.testing.assert_allclose(cumulative, [4 / 6, 3 / 6, 4 / 6])


def test_agreement_matrix_by_hand():
  a = ensemble.agreement_matrix(PREDS)
  np.testing.assert_array_equal(a, a.T)
  np.testing.assert_array_equal(np.diag(a), np.ones(3))
  # Members 0 and 1 agree on examples 0, 1, 4, 5; 0 and 2 on 0, 2, 3; 1 and 2 on 0.
  np.testing.assert_allclose(a[0, 1], 4 / 6)
  np.testing.assert_allclose(a[0, 2], 3 / 6)
  np.testing.assert_allclose(a[1, 2], 1 / 6)


def test_shared_error_disagreement_by_hand():
  d = ensemble.shared_error_disagreement(PREDS, LABELS)
  # 0 and 1 both wrong on 3 (1 vs 2: differ) and 5 (0 vs 0: same) -> 1/2.
  assert d[0, 1] == 0.5 and d[1, 0] == 0.5
  assert d[0, 2] == 0.0  # Shared error on 3 only, both say 1.
  assert d[1, 2] == 1.0  # Shared error on 3 only: 2 vs 1.
  assert d[0, 0] == 0.0
  no_errors = ensemble.shared_error_disagreement(LABELS[None].repeat(2, 0), LABELS)
  assert np.isnan(no_errors).all()


def test_error_correlation_equals_numpy_corrcoef():
  labels = RNG.integers(0, 4, 50)
  preds = np.where(RNG.random((5, 50)) < 0.7, labels, RNG.integers(0, 4, (5, 50)))
  errors = (preds != labels).astype(float)
  np.testing.assert_allclose(
    ensemble.error_correlation(preds, labels), np.corrcoef(errors), rtol=1e-10, atol=1e-12
  )
  perfect = np.stack([labels, preds[0]])  # A member without errors: correlation undefined.
  assert np.isnan(ensemble.error_correlation(perfect, labels)[0, 1])


def test_param_distances_equal_numpy_norm():
  params = [{'a': RNG.normal(size=(3, 2)), 'b': RNG.normal(size=4)} for _ in range(3)]
  d = ensemble.param_distances(params)
  flat = [np.concatenate([p['a'].ravel(), p['b'].ravel()]) for p in params]
  for i in range(3):
    for j in range(3):
      np.testing.assert_allclose(d[i, j], np.linalg.norm(flat[i] - flat[j]), atol=1e-9)


def test_bad_weights_name_the_problem():
  with pytest.raises(ValueError, match='weights'):
    ensemble.ensemble_probs(one_hot_probs(PREDS), [1.0, -1.0, 1.0])
  with pytest.raises(ValueError, match='3 values'):
    ensemble.ensemble_probs(one_hot_probs(PREDS), [1.0, 1.0])


def test_report_files(tmp_path):
  report = ensemble.analyse(one_hot_probs(PREDS), LABELS, ['a', 'b', 'c'])
  paths = ensemble.write_report(report, str(tmp_path))
  for path in paths.values():
    assert os.path.getsize(path) > 0
  rows = list(csv.DictReader(open(paths['pairs'])))
  row = next(r for r in rows if r['a'] == 'a' and r['b'] == 'c')
  np.testing.assert_allclose(float(row['agreement']), 3 / 6)
  assert '| a | 1.0000 | 0.6667 | 0.5000 |' in open(paths['markdown']).read()


def test_ensemble_task_on_a_run_with_snapshots(tmp_path):
  overrides = {'optim.learning_rate': 0.05, 'train.num_epochs': 3}
  overrides['train.checkpoint_every_epochs'] = 3
  overrides['repulsion.snapshot_every'] = 1  # Snapshots after epochs 1 and 2, then the final model.
  config = helpers.digits_config(overrides)
  workdir = str(tmp_path)
  summary = tasks.run(config, workdir)
  config.task = 'ensemble'
  result = tasks.run(config, workdir)
  assert result['members'] == ['epoch 1', 'epoch 2', 'final']
  # The final member's accuracy is the loop's own test evaluation (a separate code path).
  np.testing.assert_allclose(result['member_accuracy'][-1], summary['final_test_accuracy'])
  last = [r for r in metrics.read_jsonl(workdir) if 'ensemble/accuracy' in r][-1]
  assert last['ensemble/size'] == 3
  np.testing.assert_allclose(last['ensemble/accuracy'], result['ensemble_accuracy'])
  saved = json.load(open(tmp_path / 'ensemble' / 'summary.json'))
  assert saved['ensemble_accuracy'] == result['ensemble_accuracy']
  assert os.path.exists(tmp_path / 'ensemble' / 'heatmap.png')
  other = default.get_config()
  other.task = 'ensemble'
  with pytest.raises(ValueError, match='config.data'):
    ensemble.run(other, workdir)


def test_ensemble_task_on_a_population_member(tmp_path):
  """results/cifar/questions.py's q5 runs the ensemble task on each member of a population (its
  own folder, its own seed): the members' snapshots and final model are that member's, so the
  ensemble's accuracy is the one its training logged beside them (a separate code path)."""
  overrides = {'optim.learning_rate': 0.05, 'train.num_epochs': 3}
  overrides |= {'train.checkpoint_every_epochs': 3, 'repulsion.snapshot_every': 1}
  config = helpers.digits_config(overrides)
  config.population.seed = (0, 1)
  summary = tasks.run(config, str(tmp_path))
  assert summary['members'] == {'seed=0': 'done', 'seed=1': 'done'}
  results = {}
  for seed in (0, 1):
    member = helpers.digits_config(overrides | {'seed': seed, 'task': 'ensemble'})
    results[seed] = tasks.run(member, str(tmp_path / f'seed={seed}'))
    assert results[seed]['members'] == ['epoch 1', 'epoch 2', 'final']
    logged = metrics.read_jsonl(str(tmp_path / f'seed={seed}'))
    last = [r for r in logged if 'ensemble/accuracy' in r][-1]
    np.testing.assert_allclose(last['ensemble/accuracy'], results[seed]['ensemble_accuracy'])
    final = json.load(open(tmp_path / f'seed={seed}' / 'summary.json'))['final_test_accuracy']
    np.testing.assert_allclose(results[seed]['member_accuracy'][-1], final)
  assert results[0]['member_accuracy'] != results[1]['member_accuracy']  # Each read its own.


def test_evaluating_less_often_leaves_a_population_bit_identical(tmp_path):
  """What results/cifar/questions.py turns off only evaluates: the ensemble logged each epoch
  (off for q2-q5; q1 keeps it) and the test set each epoch (q2, q3 and q5 evaluate once, at the
  end). A population of two seeds, as those runs are, has the same params either way, the same
  final accuracies, and the same anchor distances every epoch."""
  overrides = {'optim.learning_rate': 0.05, 'train.num_epochs': 3}
  overrides |= {'train.checkpoint_every_epochs': 3, 'repulsion.snapshot_every': 1}
  overrides |= {'repulsion.enabled': True, 'repulsion.anchor_every': 1, 'repulsion.strength': 1.0}
  arms = {'logged': (True, 1), 'quiet': (False, 1), 'at_end': (False, 3)}
  runs = {}
  for arm, (log, every) in arms.items():
    config = helpers.digits_config(
      overrides | {'repulsion.log_ensemble': log, 'train.eval_every_epochs': every}
    )
    config.population.seed = (0, 1)
    tasks.run(config, str(tmp_path / arm))
    for seed in (0, 1):
      member = str(tmp_path / arm / f'seed={seed}')
      records = metrics.read_jsonl(member)
      runs[arm, seed] = (
        helpers.flat(checkpoints.load_params(member)[0]),
        [(r['step'], r['test/accuracy']) for r in records if 'test/accuracy' in r],
        [(r['step'], r['anchor/0/distance']) for r in records if 'anchor/0/distance' in r],
        len([r for r in records if 'ensemble/accuracy' in r]),
      )
  for seed in (0, 1):
    logged, quiet, at_end = (runs[arm, seed] for arm in arms)
    for other in (quiet, at_end):
      np.testing.assert_array_equal(logged[0], other[0])
      assert logged[2] == other[2] and len(logged[2]) == 3  # Epochs 1, 2, 3 (anchor of epoch 1).
    assert logged[1] == quiet[1] and len(logged[1]) == 3 and at_end[1] == logged[1][-1:]
    assert (logged[3], quiet[3], at_end[3]) == (2, 0, 0)  # After the snapshots of epochs 1, 2.
  assert not np.array_equal(runs['logged', 0][0], runs['logged', 1][0])  # The seeds differ.
