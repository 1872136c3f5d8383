"""Every results/ and bench/ script imports on the current package (so a moved module shows here,
not months later), and every shell script parses. Running them is their SMOKE / --smoke forms'
job (WORKSPACE.md), too slow for this suite."""

import csv
import importlib.util
import json
import pathlib
import statistics
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCHERS = {'without_tensorflow.py'}  # Their top level is their work (they exec a script).
PYTHON_SCRIPTS = sorted(
  p
  for d in ('results', 'bench')
  for p in (ROOT / d).rglob('*.py')
  if p.name != '__init__.py' and p.name not in LAUNCHERS and not p.name.startswith('torch_')
)  # bench/torch_*.py run under the separate PyTorch venv (bench-only; not a project dependency).
SHELL_SCRIPTS = sorted(p for d in ('results', 'launch') for p in (ROOT / d).rglob('*.sh'))


@pytest.mark.parametrize('path', PYTHON_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_imports(path, monkeypatch):
  monkeypatch.syspath_prepend(str(path.parent))
  spec = importlib.util.spec_from_file_location(f'script_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  monkeypatch.setattr(sys, 'argv', [str(path)])
  spec.loader.exec_module(module)  # Top level only: every script keeps its work under __main__.


@pytest.mark.parametrize('path', SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_script_parses(path):
  subprocess.run(['bash', '-n', str(path)], check=True)


def _load(relative: str):
  """The module of a results/ script, by path (they are not a package)."""
  path = ROOT / relative
  spec = importlib.util.spec_from_file_location(f'script_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize('variant', ['jpeg75', 'jpeg75,cpu'])
def test_every_cifar_question_is_a_valid_run(variant):
  """results/cifar/questions.py's runs (issue 16) wait for hardware: each config validates now
  (as jaxland.main would before writing anything) on all 50k training images."""
  from jaxland import tasks

  questions = _load('results/cifar/questions.py')
  chosen = questions.questions(variant, lr_max=2.0)
  assert set(chosen) == {f'q{i}' for i in range(1, 11)}
  for qid, (_, runs) in chosen.items():
    for name, run in runs.items():
      configs = questions.config_of(variant, run)
      for config in configs if isinstance(configs, list) else [configs]:
        tasks.validate(config, num_devices=1)
        if config.task in ('train', 'lr_range'):  # The analyses read their run's data.
          assert config.data.train_subset == 0 and 'jpeg75' in str(config.data), (qid, name)
        if qid in ('q1', 'q4') and config.task == 'train':  # Accuracy after each anchor, cycle.
          assert config.train.eval_every_epochs == 1, (qid, name)
        if qid in ('q2', 'q3', 'q5') and config.task == 'train':  # Distances, final accuracy.
          assert config.train.eval_every_epochs == config.train.num_epochs, (qid, name)
        if qid in ('q1', 'q2', 'q3', 'q4', 'q5') and 'repulsion' in config:  # q5's task reads it.
          assert not config.repulsion.log_ensemble, (qid, name)
      if '@same_as' in run:  # Read from another question's run: the same config.
        other_q, other = run['@same_as']
        same = questions.config_of(variant, chosen[other_q][1][other])
        assert configs.to_dict() == same.to_dict(), (qid, name)
        assert questions.command(variant, qid, name, run)[-1] == '--workdir=' + (
          questions.run_dir(variant, other_q, other)
        )
  # q5: the ensemble task reads each trained member with that member's data and model.
  runs = chosen['q5'][1]
  for name in ('snapshots_s0', 'snapshots_s10', 'restart_snapshots'):
    ensemble = questions.config_of(variant, runs[f'ensemble_{name}_seed2'])
    trained = questions.config_of(variant, runs[name])
    assert ensemble.task == 'ensemble' and ensemble.seed == 2, name
    for section in ('data', 'model', 'repulsion'):
      assert ensemble[section].to_dict() == trained[section].to_dict(), (name, section)
    of = runs[name].get('@same_as', ('q5', name))
    cmd = questions.command(variant, 'q5', f'ensemble_{name}_seed2', runs[f'ensemble_{name}_seed2'])
    assert cmd[-1] == f'--workdir={questions.run_dir(variant, *of)}/seed=2', cmd
  # q9: seed 003's sweeps choose their epoch on a validation split, 3 seeds a point.
  for name, run in chosen['q9'][1].items():
    points = questions.config_of(variant, run)
    assert {p.data.val_size for p in points} == {5000} and len(points) % 3 == 0, name
    assert {p.train.best_metric for p in points} == {'val/accuracy'}, name
    assert {p.seed for p in points} == {0, 1, 2}, name
  # q10: the spectrum reads the training run's saved params at init, epoch 1, middle and end.
  runs = chosen['q10'][1]
  train = questions.config_of(variant, runs['train_seed1'])
  spectrum = questions.config_of(variant, runs['spectrum_seed1'])
  per_epoch = train.train.trajectory_every_steps
  assert per_epoch == 50000 // train.data.batch_size and train.seed == 1
  last = train.train.num_epochs * per_epoch
  assert tuple(spectrum.spectrum.steps) == (0, per_epoch, last // 2 // per_epoch * per_epoch, last)
  cmd = questions.command(variant, 'q10', 'spectrum_seed1', runs['spectrum_seed1'])
  assert cmd[-1] == '--workdir=' + questions.run_dir(variant, 'q10', 'train_seed1')


def test_q1_measures_the_drop_recovery_and_distance_after_the_anchor(tmp_path):
  """results/cifar/q1.py on hand-made population members (anchor at epoch 2): the drop, the
  recovery epoch, the distance's growth and the differences from strength 0 by seed, by hand;
  a member still running is skipped."""
  q1 = _load('results/cifar/q1.py')
  runs, out = tmp_path / 'runs', tmp_path / 'out'
  members = {  # (run, seed): (strength, accuracy by epoch 2-5, distance by epoch 3 and 5, final)
    ('strength0', 0): (0.0, (0.60, 0.55, 0.58, 0.62), (1.0, 3.0), 0.70),
    ('strength0', 1): (0.0, (0.61, 0.60, 0.62, 0.63), (1.0, 2.0), 0.72),
    ('strength10', 0): (10.0, (0.60, 0.62, 0.64, 0.66), (2.0, 8.0), 0.68),
    ('strength10', 1): (10.0, (0.61, 0.50, 0.55, 0.58), (2.0, 6.0), 0.71),
  }
  for (run, seed), (strength, accuracy, distance, final) in members.items():
    member = runs / run / f'seed={seed}'
    member.mkdir(parents=True)
    (member / 'summary.json').write_text(
      json.dumps({'status': 'done', 'final_test_accuracy': final})
    )
    config = {'repulsion': {'anchor_epochs': [2], 'strength': strength, 'width': 10.0}}
    (member / 'config.json').write_text(json.dumps(config))
    lines = [{'step': 0, 'epoch': 0, 'anchor/init_distance': 0.0}]
    lines += [
      {'step': 10 * e, 'epoch': e, 'test/accuracy': a}
      for e, a in zip((2, 3, 4, 5), accuracy, strict=True)
    ]
    lines += [{'step': 30, 'epoch': 3, 'anchor/0/distance': distance[0]}]
    lines += [
      {'step': 50, 'epoch': 5, 'anchor/0/distance': distance[1], 'anchor/init_distance': 9.0}
    ]
    (member / 'metrics.jsonl').write_text('\n'.join(map(json.dumps, lines)) + '\n')
  (runs / 'strength10' / 'seed=2').mkdir()  # Still running: no summary.
  q1.collect(str(runs), str(out))
  summary = q1.render(str(out))
  rows = {(r['run'], r['seed']): r for r in summary['rows']}
  assert list(rows) == [('strength0', 0), ('strength0', 1), ('strength10', 0), ('strength10', 1)]
  base = rows['strength0', 0]
  assert base['drop'] == pytest.approx(0.05) and base['recovery_epoch'] == 5
  assert (
    base['distance_growth_per_epoch'] == pytest.approx(1.0) and base['init_distance_end'] == 9.0
  )
  assert rows['strength0', 1]['recovery_epoch'] == 4  # Lowest at 3, back to 0.61 at 4.
  rising = rows['strength10', 0]
  assert rising['drop'] == pytest.approx(-0.02) and rising['recovery_epoch'] is None
  assert rows['strength10', 1]['recovery_epoch'] is None  # Never back to 0.61.
  versus = summary['by_run']['strength10']['minus_strength0']
  assert versus['final_test_accuracy']['per_seed_points'] == {
    0: pytest.approx(-2.0),
    1: pytest.approx(-1.0),
  }
  assert versus['distance_end']['difference']['mean'] == pytest.approx(4.5)  # (5 + 4) / 2.
  assert summary['by_run']['strength0']['drop']['mean'] == pytest.approx(0.03)  # (0.05 + 0.01) / 2.
  assert (out / 'q1.png').exists() and (out / 'q1.csv').exists()


def _member(root, run, seed, config, lines, final=0.7):
  """A hand-made finished population member: summary, config and metrics (epoch records)."""
  member = root / run / f'seed={seed}'
  member.mkdir(parents=True)
  (member / 'summary.json').write_text(json.dumps({'status': 'done', 'final_test_accuracy': final}))
  (member / 'config.json').write_text(json.dumps(config))
  (member / 'metrics.jsonl').write_text('\n'.join(map(json.dumps, lines)) + '\n')


def _anchored(mode='sum', strength=10.0, weight_decay=5e-4, **extra):
  """A config.json's sections that q2-q5's collectors read: anchors every 2 of 8 epochs."""
  repulsion = {'anchor_epochs': [], 'anchor_every': 2, 'capacity': 4, 'mode': mode}
  repulsion |= {'strength': strength, 'snapshot_epochs': [], 'snapshot_every': 2}
  optim = {'weight_decay': weight_decay, 'schedule': extra.pop('schedule', {'name': 'triangle'})}
  return {'repulsion': repulsion, 'optim': optim, 'train': {'num_epochs': 8}, **extra}


def _distances(by_slot: dict) -> list[dict]:
  """Epoch records of anchor/<slot>/distance from {slot: {epoch: distance}}."""
  epochs = sorted({e for d in by_slot.values() for e in d})
  return [
    {'step': 48 * e, 'epoch': e}
    | {f'anchor/{i}/distance': d[e] for i, d in by_slot.items() if e in d}
    | {'anchor/init_distance': float(e)}
    for e in epochs
  ]


def test_q2_measures_how_a_new_anchor_changes_the_distance_to_the_older_ones(tmp_path):
  """results/cifar/q2.py on hand-made members (anchors at epochs 2, 4, 6): the growth of the
  distance to each older anchor before and after each newer one, by hand; pairings by seed."""
  q2 = _load('results/cifar/q2.py')
  linear = _distances({i: {e: float(e - a) for e in range(a, 9)} for i, a in enumerate((2, 4, 6))})
  shrinking = _distances(
    {
      0: {2: 0.0, 3: 1.0, 4: 2.0, 5: 1.5, 6: 2.5, 7: 2.0, 8: 3.0},  # Falls after 4 and after 6.
      1: {4: 0.0, 5: 1.0, 6: 2.0, 7: 2.5, 8: 3.0},  # Slows after 6.
      2: {6: 0.0, 7: 1.0, 8: 2.0},
    }
  )
  runs = tmp_path / 'runs'
  _member(runs / 'q2', 'sum_l2', 0, _anchored(), shrinking, final=0.70)
  _member(runs / 'q2', 'sum_l2', 1, _anchored(), linear, final=0.72)
  _member(runs / 'q2', 'sum_nol2', 0, _anchored(weight_decay=0.0), linear, final=0.71)
  (runs / 'q2' / 'sum_nol2' / 'seed=1').mkdir()  # Still running: no summary.
  doubled = _distances(
    {i: {e: 2.0 * (e - a) for e in range(a, 9)} for i, a in enumerate((2, 4, 6))}
  )
  for seed in (0, 1):
    _member(runs / 'q5', 'snapshots_s0', seed, _anchored(strength=0.0), doubled, final=0.75)
  one_anchor = _distances({0: {2: 0.0, 3: 1.0, 4: 2.0, 5: 3.0, 6: 3.5, 7: 3.5, 8: 4.0}})
  _member(runs / 'q1', 'strength10', 0, _anchored(), one_anchor)  # sum_l2 seed 0's until 4.
  copies = tmp_path / 'q1_copies'  # q1's committed copies: seed 1's (runs/q1 lacks it).
  _member(
    copies, 'x', 1, _anchored(), _distances({0: {2: 0.0, 3: 1.0} | dict.fromkeys(range(4, 9), 2.0)})
  )
  for name, suffix in zip(q2.q1.FILES, q2.q1.SUFFIXES, strict=True):
    (copies / f'strength10_seed1{suffix}').write_text((copies / 'x' / 'seed=1' / name).read_text())
  out = tmp_path / 'out'
  q2.collect(str(runs), str(out), str(copies))
  summary = q2.render(str(out))
  rows = {(r['run'], r['seed']): r for r in summary['rows']}
  assert list(rows) == [('sum_l2', 0), ('sum_l2', 1), ('sum_nol2', 0), ('snapshots_s0', 0),
                        ('snapshots_s0', 1)]  # fmt: skip
  first = rows['sum_l2', 0]
  assert first['anchor_epochs'] == '2 4 6' and first['pairs'] == 3 and first['shrunk'] == 2
  assert first['mean_before'] == pytest.approx(1.0)
  assert first['mean_after'] == pytest.approx((-0.5 - 0.5 + 0.5) / 3)
  assert first['mean_change'] == pytest.approx((-1.5 - 1.5 - 0.5) / 3)
  assert first['mean_later'] == pytest.approx((1.0 + 1.0 + 0.5) / 3)  # d(a_j + 2) - d(a_j + 1).
  assert first['mean_net'] == pytest.approx((1.0 + 0.5 + 1.0) / 3) and first['net_shrunk'] == 0
  assert rows['sum_l2', 1]['mean_net'] == pytest.approx((4 + 2 + 2) / 3)  # d(8) - d(a_j).
  # Against the one-anchor run (seed 1's from q1's copies): d_0 at epochs 5 and 8 minus its; the
  # control, which differs from it at the second anchor (epoch 4), gets none.
  versus_one = lambda r: (r['old_vs_one_anchor_next'], r['old_vs_one_anchor_end'])
  assert versus_one(first) == (-1.5, -1.0) and versus_one(rows['sum_l2', 1]) == (1.0, 4.0)
  assert versus_one(rows['snapshots_s0', 0]) == (None, None)
  assert rows['snapshots_s0', 0]['mean_change'] == 0.0 and rows['snapshots_s0', 0]['shrunk'] == 0
  pairs = [(p['old_epoch'], p['new_epoch']) for p in summary['pairs'] if p['run'] == 'sum_l2']
  assert pairs == [(2, 4), (2, 6), (4, 6)] * 2
  versus = summary['by_run']['sum_l2']['minus_snapshots_s0']
  assert versus['mean_change']['per_seed_difference'] == {0: pytest.approx(-3.5 / 3), 1: 0.0}
  assert versus['final_test_accuracy']['per_seed_points'] == {
    0: pytest.approx(-5.0),
    1: pytest.approx(-3.0),
  }
  nol2 = summary['by_run']['sum_nol2']['minus_sum_l2']['mean_change']
  assert nol2['per_seed_difference'] == {0: pytest.approx(3.5 / 3)} and nol2['difference']['n'] == 1
  assert (out / 'q2.png').exists() and (out / 'q2_pairs.csv').exists()


def test_q3_correlates_the_distances_growth_with_the_learning_rate(tmp_path):
  """results/cifar/q3.py on hand-made members (48 steps an epoch, anchors at 2, 4, 6): without
  repulsion the distances grow by the epoch's mean LR (correlation 1), with it by 2 - LR (-1);
  the means, the latest anchor and the pairing by seed, by hand."""
  q3 = _load('results/cifar/q3.py')
  lr = {1: 1.0, 2: 1.0, 3: 0.5, 4: 0.5, 5: 0.2, 6: 0.2, 7: 0.1, 8: 0.1}

  def lines(growth):
    out = []
    for e in range(9):
      distances = {f'anchor/{i}/distance': sum(growth(lr[t]) for t in range(a + 1, e + 1))
                   for i, a in enumerate((2, 4, 6)) if a <= e}  # fmt: skip
      out.append({'step': 48 * e, 'epoch': e, 'anchor/init_distance': sum(
        growth(lr[t]) for t in range(1, e + 1)), **distances})  # fmt: skip
      out += (
        [  # The epoch's LR records average to lr[e] (the next epoch's would not).
          {'step': 48 * (e - 1) + 16 * k, 'optim/learning_rate': lr[e] * k / 2} for k in (1, 2, 3)
        ]
        if e
        else []
      )
    return out

  runs = tmp_path / 'runs'
  step = {'name': 'step'}
  for seed in (0, 1):
    config = _anchored(strength=0.0, schedule=step)
    _member(runs, 'step_norep', seed, config, lines(lambda x: x), final=0.80)
    config = _anchored(strength=10.0, schedule=step)
    _member(runs, 'step_rep', seed, config, lines(lambda x: 2 - x), final=0.79 + seed / 100)
  out = tmp_path / 'out'
  q3.q1.collect(str(runs), str(out), q3.RUNS)
  summary = q3.render(str(out))
  rows = {(r['run'], r['seed']): r for r in summary['rows']}
  assert list(rows) == [('step_norep', 0), ('step_norep', 1), ('step_rep', 0), ('step_rep', 1)]
  norep, rep = rows['step_norep', 0], rows['step_rep', 0]
  assert norep['lr_vs_init_growth'] == pytest.approx(1.0)
  assert norep['lr_vs_anchor_growth'] == pytest.approx(1.0)
  assert rep['lr_vs_init_growth'] == pytest.approx(-1.0)
  assert rep['lr_vs_anchor_growth'] == pytest.approx(-1.0)
  assert norep['mean_init_growth'] == pytest.approx(3.6 / 8)
  assert norep['mean_anchor_growth'] == pytest.approx(1.6 / 6)  # Epochs 3-8.
  assert norep['init_distance_end'] == pytest.approx(3.6) and norep['schedule'] == 'step'
  epochs = list(csv.DictReader(open(out / 'q3_epochs.csv')))
  latest = {
    int(e['epoch']): e['anchor'] for e in epochs if (e['run'], e['seed']) == ('step_rep', '0')
  }
  assert latest == {1: '', 2: '', 3: '2', 4: '2', 5: '4', 6: '4', 7: '6', 8: '6'}
  versus = summary['by_run']['step_rep']['minus_step_norep']
  assert versus['lr_vs_init_growth']['difference']['mean'] == pytest.approx(-2.0)
  assert versus['mean_init_growth']['difference']['mean'] == pytest.approx(2 - 2 * 3.6 / 8)
  assert versus['final_test_accuracy']['per_seed_points'] == {
    0: pytest.approx(-1.0),
    1: pytest.approx(0.0, abs=1e-9),
  }
  assert (out / 'q3.png').exists()


def test_q4_reads_each_restart_cycles_best_accuracy_and_its_drift(tmp_path):
  """results/cifar/q4.py on hand-made members (restarts every 2 of 8 epochs: cycles 1-2, 3-4,
  5-6, 7-8): each cycle's best, their std and drift, a diverged member, rep minus norep by seed,
  by hand."""
  q4 = _load('results/cifar/q4.py')
  schedule = {'name': 'cosine_restarts', 't0_epochs': 2, 't_mult': 1}
  assert q4.cycles(schedule | {'t_mult': 2}, 8) == [(1, 2), (3, 6), (7, 8)]  # Cut by the end.

  def member(run, seed, strength, accuracy, status='done'):
    config = _anchored(strength=strength, schedule=schedule)
    config['optim']['learning_rate'] = 15.0
    lines = [{'step': 48 * e, 'epoch': e, 'test/accuracy': a} for e, a in accuracy.items()]
    _member(tmp_path / 'runs', run, seed, config, lines, final=accuracy[max(accuracy)])
    if status != 'done':
      path = tmp_path / 'runs' / run / f'seed={seed}' / 'summary.json'
      path.write_text(json.dumps({'status': status, 'final_test_accuracy': None}))

  drifting = dict(zip(range(1, 9), (0.5, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3), strict=True))
  steady = dict(zip(range(1, 9), (0.5, 0.6, 0.55, 0.6, 0.5, 0.6, 0.58, 0.6), strict=True))
  member('lr10x_norep', 0, 0.0, drifting)
  member('lr10x_norep', 1, 0.0, {1: 0.3, 2: 0.1, 3: float('nan')}, status='diverged')
  member('lr10x_rep', 0, 10.0, steady)
  member('lr10x_rep', 1, 10.0, steady)
  out = tmp_path / 'out'
  q4.q1.collect(str(tmp_path / 'runs'), str(out), q4.RUNS)
  summary = q4.render(str(out))
  rows = {(r['run'], r['seed']): r for r in summary['rows']}
  norep = rows['lr10x_norep', 0]
  assert [norep[f'cycle{i}_best'] for i in (1, 2, 3, 4)] == [0.6, 0.55, 0.45, 0.35]
  assert norep['cycle_best_drift'] == pytest.approx(-0.25) and norep['cycles'] == '1-2 3-4 5-6 7-8'
  assert norep['cycle_best_std'] == pytest.approx(statistics.stdev([0.6, 0.55, 0.45, 0.35]))
  diverged = rows['lr10x_norep', 1]
  assert diverged['status'] == 'diverged' and diverged['cycle2_best'] is None
  assert diverged['cycle_best_std'] is None and diverged['best_accuracy'] == 0.3
  assert (
    rows['lr10x_rep', 0]['cycle_best_std'] == 0.0
    and rows['lr10x_rep', 0]['cycle_best_drift'] == 0.0
  )
  versus = summary['by_run']['lr10x_rep']['minus_lr10x_norep']
  assert versus['cycle_best_drift']['per_seed_difference'] == {0: pytest.approx(0.25)}
  assert versus['best_accuracy']['per_seed_points'] == {0: 0.0, 1: pytest.approx(30.0)}
  assert (out / 'q4.png').exists() and (out / 'q4.csv').exists()


def test_q5_reads_each_members_ensemble_and_pairs_strengths_by_seed(tmp_path):
  """results/cifar/q5.py on hand-made members with the ensemble task's files: accuracy as members
  are added, whether each raised it, the mean pairwise numbers over distinct members, q2's run
  read as strength 10, one run whose ensemble task has not run yet; by hand."""
  q5 = _load('results/cifar/q5.py')
  runs = tmp_path / 'runs'

  def member(folder, run, seed, strength, members=None, pairs=(0.8, 0.7, 0.9)):
    _member(runs / folder, run, seed, _anchored(strength=strength), [{'step': 0, 'epoch': 0}])
    if members is None:
      return
    accuracy, cumulative = members
    ensemble = runs / folder / run / f'seed={seed}' / 'ensemble'
    ensemble.mkdir()
    names = ['epoch 2', 'epoch 4', 'final']
    (ensemble / 'summary.json').write_text(json.dumps({
      'members': names, 'member_accuracy': accuracy, 'cumulative_accuracy': cumulative,
      'ensemble_accuracy': cumulative[-1]}))  # fmt: skip
    off = {('epoch 2', 'epoch 4'): 0, ('epoch 2', 'final'): 1, ('epoch 4', 'final'): 2}
    lines = ['a,b,agreement,shared_error_disagreement,error_correlation,param_distance']
    for a in names:
      for b in names:
        k = off.get((a, b), off.get((b, a)))
        values = (1.0, 0.0, 1.0, 0.0) if k is None else (pairs[k], 0.5, pairs[k] - 0.3, k + 1.0)
        lines.append(','.join([a, b, *map(str, values)]))
    (ensemble / 'pairs.csv').write_text('\n'.join(lines) + '\n')

  for seed in (0, 1):
    member('q5', 'snapshots_s0', seed, 0.0, ([0.80, 0.79, 0.81], [0.80, 0.82, 0.83]))
    member('q2', 'sum_l2', seed, 10.0, ([0.78, 0.77, 0.79], [0.78, 0.81, 0.80]))
  member('q5', 'restart_snapshots', 0, 0.0)  # Trained; its ensemble task not run yet.
  out = tmp_path / 'out'
  q5.collect(str(runs), str(out))
  summary = q5.render(str(out))
  rows = {(r['run'], r['seed']): r for r in summary['rows']}
  assert list(rows) == [('snapshots_s0', 0), ('snapshots_s0', 1), ('snapshots_s10', 0),
                        ('snapshots_s10', 1), ('restart_snapshots', 0)]  # fmt: skip
  base, repulsed = rows['snapshots_s0', 0], rows['snapshots_s10', 0]
  assert base['gain'] == pytest.approx(0.02) and base['rises_every_member'] is True
  assert repulsed['strength'] == 10.0 and repulsed['rises_every_member'] is False
  assert repulsed['last_member_gain'] == pytest.approx(-0.01)
  assert base['mean_agreement'] == pytest.approx(0.8)
  assert base['mean_error_correlation'] == pytest.approx(0.5)
  assert base['mean_param_distance'] == pytest.approx(2.0) and base['members'] == 'e2 e4 final'
  assert rows['restart_snapshots', 0]['ensemble_accuracy'] is None
  versus = summary['by_run']['snapshots_s10']['minus_snapshots_s0']
  assert versus['ensemble_accuracy']['per_seed_points'] == {
    0: pytest.approx(-3.0),
    1: pytest.approx(-3.0),
  }
  assert summary['by_run']['snapshots_s10']['rises_every_member'] == [False, False]
  assert (out / 'q5.png').exists() and not (out / 'q2').exists()


def test_the_fast_ablation_pairs_each_arm_with_the_baseline_by_seed(tmp_path, monkeypatch):
  """results/fast/ablation.py on hand-made run.py outputs: differences by seed, by hand."""
  ablation = _load('results/fast/ablation.py')

  def write(arm, accuracies):
    rows = [
      {'variant': arm, 'seed': s, 'summary': {'final_test_accuracy': a, 'seconds': 10.0}}
      for s, a in accuracies.items()
    ]
    (tmp_path / arm).mkdir()
    (tmp_path / arm / 'results.json').write_text(json.dumps({'hardware': 'cpu', 'rows': rows}))

  write('recipe', {0: 0.86, 1: 0.85, 2: 0.87})
  write('no_x', {2: 0.86, 0: 0.85, 1: 0.83, 3: 0.5})  # Seed 3 has no baseline: not paired.
  monkeypatch.setattr(sys, 'argv', ['ablation.py', f'--dir={tmp_path}'])
  ablation.main()
  arm = json.loads((tmp_path / 'ablation.json').read_text())['arms']['no_x']
  assert arm['paired_seeds'] == ['0', '1', '2']
  d = arm['difference_spread']
  assert d['n'] == 3 and d['mean'] == pytest.approx(-0.04 / 3)
  assert d['std'] == pytest.approx((((0.01 / 3) ** 2 * 2 + (0.02 / 3) ** 2) / 2) ** 0.5)
  assert arm['accuracy_spread']['n'] == 4
  assert 'no_x' in (tmp_path / 'ablation.md').read_text()


def test_fast_run_keeps_the_seeds_already_recorded(tmp_path):
  """results/fast/run.py's merge: a seed run now replaces its old row; other seeds and variants
  stay, taking their file's hardware line; another dataset's file is not mixed in."""
  run = _load('results/fast/run.py')
  path = tmp_path / 'results.json'
  old = [{'variant': 'v', 'seed': s, 'acc': f'old{s}'} for s in (2, 0)] + [
    {'variant': 'w', 'seed': 1, 'acc': 'w1', 'hardware': 'B'}
  ]
  path.write_text(json.dumps({'hardware': 'A', 'dataset': 'd', 'rows': old}))
  new = [{'variant': 'v', 'seed': 2, 'acc': 'new2', 'hardware': 'C'}]
  merged = run.merged_rows(str(path), new, 'd')
  assert [(r['variant'], r['seed'], r['acc'], r['hardware']) for r in merged] == [
    ('v', 0, 'old0', 'A'),
    ('v', 2, 'new2', 'C'),
    ('w', 1, 'w1', 'B'),
  ]
  assert run.merged_rows(str(path), new, 'other') == new
  assert run.merged_rows(str(tmp_path / 'absent.json'), new, 'd') == new


def test_q6_reads_range_tests_by_spacing_and_seed(tmp_path):
  """results/cifar/q6.py on hand-made range-test outputs: the copied folders, the learning-start
  LR (the smoothed loss at half its fall) and the share of the sweep below it, counted by hand."""
  q6 = _load('results/cifar/q6.py')
  runs, out = tmp_path / 'runs', tmp_path / 'out'
  values = [0.1 * (i + 1) for i in range(10)]  # Linear, 0.1 .. 1.0.
  smooth = [2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.0, 1.2, 1.3]  # Half the fall (1.5) at 0.6.
  accuracy = {0: 0.1, 3: 0.3, 6: 0.9, 9: 0.5}
  for name, seed in (('range_linear', 0), ('range_linear_seed2', 2), ('not_a_test', 0)):
    folder = runs / name
    folder.mkdir(parents=True)
    analysis = {'shape': 'hill', 'status': 'completed', 'iterations': 10, 'stop_value': None}
    analysis |= {'best_val_accuracy': 0.9 + seed, 'recommended': {'max_lr': 0.7}}
    analysis['suggestions'] = {'peak_accuracy': 0.7, 'collapse': 0.8, 'robust': 0.3}
    (folder / 'lr-test.json').write_text(json.dumps(analysis))
    (folder / 'config.json').write_text('{}')  # Not an analysis: skipped.
    lines = ['iteration,value,loss,smooth_loss,accuracy,val_loss,val_accuracy']
    for i, v in enumerate(values):
      val = f'1.0,{accuracy[i]}' if i in accuracy else ','
      lines.append(f'{i},{v},1.0,{smooth[i]},0.5,{val}')
    (folder / 'lr-test.csv').write_text('\n'.join(lines) + '\n')
  q6.collect(str(runs), str(out))
  assert sorted(p.name for p in out.iterdir()) == [
    'linear_seed0.csv',
    'linear_seed0.json',
    'linear_seed2.csv',
    'linear_seed2.json',
  ]
  summary = q6.render(str(out))
  first = summary['rows'][0]
  assert (first['seed'], first['learning_start_lr']) == (0, pytest.approx(0.6))
  assert first['share_below_learning_start'] == pytest.approx(0.6)  # 0.1 .. 0.6: 6 of 10.
  assert first['peak_at_first_eval'] is False
  assert first['best_accuracy_after_collapse'] == 0.5  # Past LR 0.8 only the 1.0 evaluation.
  best = summary['by_spacing']['linear']['best_val_accuracy']
  assert best == {'n': 2, 'mean': pytest.approx(1.9), 'std': pytest.approx(2**0.5), 'median': 1.9}
  assert (out / 'range_tests.png').exists() and (out / 'q6.csv').exists()


def test_q7_pairs_each_schedule_with_onecycle_and_the_recipe_by_seed(tmp_path):
  """results/cifar/q7.py on hand-made population members: the paired differences (points, by
  seed) and the peak logged LR, worked out by hand; an unfinished member is skipped."""
  q7 = _load('results/cifar/q7.py')
  runs, out = tmp_path / 'runs', tmp_path / 'out'
  final = {('onecycle', 0): 0.80, ('onecycle', 1): 0.84, ('constant', 0): 0.75}
  final |= {('constant', 1): 0.77}
  for (schedule, seed), acc in final.items():
    member = runs / schedule / f'seed={seed}'
    member.mkdir(parents=True)
    summary = {'status': 'done', 'final_test_accuracy': acc}  # A member's: no seconds.
    (member / 'summary.json').write_text(json.dumps(summary))
    lines = [{'step': 1, 'optim/learning_rate': 0.5}, {'step': 2, 'optim/learning_rate': 1.1}]
    lines += [{'step': 2, 'epoch': 1.0, 'test/accuracy': acc - 0.1, 'epoch_time': 10.0}]
    lines += [{'step': 3, 'epoch': 2.0, 'test/accuracy': acc, 'epoch_time': 50.0 + seed}]
    (member / 'metrics.jsonl').write_text('\n'.join(map(json.dumps, lines)) + '\n')
  (runs / 'piecewise' / 'seed=0').mkdir(parents=True)  # Still running: no summary.
  recipe = tmp_path / 'recipe.json'
  rows = [{'seed': s, 'summary': {'final_test_accuracy': a}} for s, a in ((0, 0.81), (1, 0.82))]
  recipe.write_text(json.dumps({'hardware': 'cpu', 'rows': rows}))
  q7.collect(str(runs), str(out))
  summary = q7.render(str(out), str(recipe))
  assert [(r['schedule'], r['seed']) for r in summary['rows']] == [
    ('onecycle', 0),
    ('onecycle', 1),
    ('constant', 0),
    ('constant', 1),
  ]
  first = summary['rows'][0]
  assert (first['peak_logged_lr'], first['first_eval_epoch']) == (1.1, 1.0)
  assert first['first_eval_test_accuracy'] == pytest.approx(0.70)
  assert summary['rows'][1]['epoch_seconds'] == 61.0  # 10 + 51.
  constant = summary['by_schedule']['constant']['minus_onecycle']
  assert constant['per_seed_points'] == {0: pytest.approx(-5.0), 1: pytest.approx(-7.0)}
  assert constant['points']['mean'] == pytest.approx(-6.0)
  versus_recipe = summary['recipe']['onecycle_minus_recipe']['per_seed_points']
  assert versus_recipe == {0: pytest.approx(-1.0), 1: pytest.approx(2.0)}
  assert (out / 'schedules.png').exists() and (out / 'q7.csv').exists()


def test_q8_compares_the_momentum_sweep_with_the_grid_by_seed(tmp_path):
  """results/cifar/q8.py on hand-made q8 run folders: the grid's best by accuracy and by loss,
  and the regret of the sweep's pick (the nearest grid momentum), worked out by hand; an
  unfinished run is skipped."""
  q8 = _load('results/cifar/q8.py')
  runs, out = tmp_path / 'runs', tmp_path / 'out'
  grid = {0: {'0.5': (0.40, 1.2), '0.9': (0.55, 1.0), '0.95': (0.50, 0.9)}}
  grid[1] = {'0.5': (0.45, 1.1), '0.9': (0.42, 1.3), '0.95': (0.10, 9.0)}
  picks = {0: 0.93, 1: 0.88}  # Nearest grid momenta: 0.95 and 0.9.
  for seed in (0, 1, 2):
    folder = runs / ('range_momentum' if seed == 0 else f'range_momentum_seed{seed}')
    folder.mkdir(parents=True)
    if seed == 2:  # Still running: no summary.
      continue
    sweep = {'shape': 'hill', 'status': 'completed', 'stop_value': None}
    sweep |= {'best_val_accuracy': 0.5, 'suggestions': {'peak_accuracy': picks[seed]}}
    sweep['suggestions']['minimum_loss'] = 0.97
    momentum_runs = {
      m: {'status': 'diverged' if loss > 5 else 'completed', 'final_smooth_loss': loss}
      | {'final_val_accuracy': acc}
      for m, (acc, loss) in grid[seed].items()
    }
    summary = {'status': 'done', 'tests': {'momentum_linear': sweep}}
    summary['momentum_grid'] = {'learning_rate': 1.5, 'runs': momentum_runs}
    (folder / 'summary.json').write_text(json.dumps(summary))
    (folder / 'momentum_linear.json').write_text(json.dumps(sweep))
    lines = ['iteration,value,loss,smooth_loss,accuracy,val_loss,val_accuracy']
    lines += ['0,0.5,2.0,2.0,0.1,2.0,0.1', '1,0.9,1.0,1.5,0.4,1.0,0.5']
    (folder / 'momentum_linear.csv').write_text('\n'.join(lines) + '\n')
    for m in grid[seed]:
      (folder / f'momentum_grid-momentum{m}.csv').write_text(lines[0] + '\n')
  q8.collect(str(runs), str(out))
  assert sorted(p.name for p in out.iterdir()) == ['seed0', 'seed1']
  summary = q8.render(str(out))
  first, second = summary['rows']
  assert (first['grid_best_accuracy_momentum'], first['grid_best_loss_momentum']) == (0.9, 0.95)
  assert first['regret_points'] == pytest.approx(5.0)  # 0.55 at 0.9 against 0.50 at 0.95.
  assert (second['grid_best_accuracy_momentum'], second['grid_best_loss_momentum']) == (0.5, 0.5)
  assert second['regret_points'] == pytest.approx(3.0)  # 0.45 at 0.5 against 0.42 at 0.9.
  assert second['grid_status_m0.95'] == 'diverged'
  assert summary['regret_points']['mean'] == pytest.approx(4.0)
  assert summary['grid_accuracy']['0.9']['mean'] == pytest.approx(0.485)
  assert (out / 'momentum.png').exists() and (out / 'q8.csv').exists()
