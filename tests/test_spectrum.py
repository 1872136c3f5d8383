"""Tests of the spectrum task and callback on a just-trained tiny digits MLP.

Oracles are independent of jaxland.curvature: the dense jax.hessian (and a Jacobian-built
Gauss-Newton matrix) of the mean cross-entropy written out here over the same examples,
diagonalised by numpy.linalg.eigh.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from configs import default
from configs import spectrum as spectrum_config
from jaxland import data, models, spectrum, tasks
from jaxland.output.metrics import read_jsonl
from jaxland.rundir import artifacts, checkpoints
from jaxland.spectrum import report

NUM_EXAMPLES = 592  # Two batches of 296 (the eval batch), divisible by the 8 test devices.
TOP_K = 4
CALLBACK_EVERY = 20


def _train_config():
  c = default.get_config()
  c.data.name = 'digits'
  c.data.batch_size = 64
  c.data.eval_batch_size = 296
  c.model.hidden_sizes = (8,)  # 64*8 + 8 + 8*10 + 10 = 610 params.
  c.optim.learning_rate = 0.1
  c.train.num_epochs = 2  # 23 steps per epoch: checkpoints at 23 and 46.
  c.train.log_every_steps = 23
  c.train.trajectory_every_steps = 10
  c.train.keep_checkpoints = 5
  c.spectrum = spectrum.defaults()
  _small_spectrum(c.spectrum)
  c.spectrum.every_steps = CALLBACK_EVERY
  return c


def _small_spectrum(s):
  s.num_examples = NUM_EXAMPLES
  s.top_k = TOP_K
  s.bottom_k = 2
  s.lanczos_steps = 40
  s.slq_probes = 2
  s.slq_steps = 40  # As many as lanczos_steps: SLQ then reuses Lanczos' compiled step.
  s.trace_probes = 4


def _task_config(run_dir, **overrides):
  c = spectrum_config.get_config()
  c.checkpoint = run_dir
  _small_spectrum(c.spectrum)
  for key, value in overrides.items():
    c.spectrum[key] = value
  return c


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A 46-step digits MLP run with trajectory files and the spectrum callback every 20 steps."""
  run_dir = str(tmp_path_factory.mktemp('run'))
  summary = tasks.run(_train_config(), run_dir)
  assert summary['status'] == 'done'
  return run_dir


@pytest.fixture(scope='module')
def task(trained, tmp_path_factory):
  """The task over steps 0 (trajectory), 20 (trajectory) and 46 (checkpoint) in one call."""
  out = str(tmp_path_factory.mktemp('spectrum'))
  result = tasks.run(_task_config(trained, steps=(0, 20, 46)), out)
  return out, result


# ------------------------------------------------------------------------------------- oracles


def _examples(run_dir):
  """The first NUM_EXAMPLES train images, normalised here by hand, and labels."""
  with open(os.path.join(run_dir, 'config.json')) as f:
    data_cfg = json.load(f)['data']
  import ml_collections

  ds = data.load_dataset(ml_collections.ConfigDict(data_cfg))
  images, labels = ds.train[0][:NUM_EXAMPLES], ds.train[1][:NUM_EXAMPLES]
  x = (images.astype(np.float64) / 255.0 - ds.mean) / ds.std
  return x, labels


def _params(run_dir, step):
  if step in checkpoints.list_steps(run_dir):
    return checkpoints.load_params(f'{run_dir}:{step}')[0]
  with np.load(os.path.join(run_dir, 'trajectory', f'params_{step:08d}.npz')) as f:
    return {
      'Dense_0': {'kernel': f['Dense_0/kernel'], 'bias': f['Dense_0/bias']},
      'Dense_1': {'kernel': f['Dense_1/kernel'], 'bias': f['Dense_1/bias']},
    }


def _model():
  return models.get_model('mlp', hidden_sizes=(8,), num_classes=10)


def _dense(run_dir, step, kind='hessian'):
  """Dense Hessian (or GGN) of the mean cross-entropy over the examples, float64 numpy."""
  model, (x, y) = _model(), _examples(run_dir)
  params = _params(run_dir, step)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    flat, unravel = ravel_pytree(params)
    x = jnp.asarray(x)

    def logits(p):
      return model.apply({'params': unravel(p)}, x, train=False).astype(jnp.float64)

    def loss(p):
      logp = jax.nn.log_softmax(logits(p))
      return -jnp.mean(logp[jnp.arange(len(y)), y])

    def ggn(p):
      z, j = logits(p), jax.jacobian(logits)(p)  # [N, C], [N, C, n]
      q = jax.nn.softmax(z)
      h_out = jax.vmap(jnp.diag)(q) - q[:, :, None] * q[:, None, :]
      return jnp.einsum('nci,ncd,ndj->ij', j, h_out, j) / len(y)

    fn = jax.hessian(loss) if kind == 'hessian' else ggn
    return np.asarray(jax.jit(fn)(flat)), np.asarray(flat)


def _eigh(m):
  values, vectors = np.linalg.eigh(0.5 * (m + m.T))
  return values[::-1], vectors[:, ::-1].T


def _check_vectors(npz, values, vectors, min_gap=0.05):
  """Saved rows are unit-norm and match the dense eigenvectors up to sign where separated."""
  got = npz['eigenvectors']
  np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
  for i in range(len(got)):
    gap = min(abs(values[i] - values[j]) for j in range(len(values)) if j != i)
    if gap > min_gap * abs(values[i]):
      assert abs(np.dot(got[i], vectors[i])) > 0.999, i


# --------------------------------------------------------------------------------------- tests


def test_task_files_shapes_and_several_steps(task):
  out, result = task
  root = os.path.join(out, 'spectrum')
  assert result['status'] == 'done' and result['steps'] == [0, 20, 46]
  for step in (0, 20, 46):
    d = os.path.join(root, str(step))
    for name in ('spectrum.npz', 'summary.json', 'density.png', 'top_eigenvalues.png'):
      assert os.path.getsize(os.path.join(d, name)) > 0, (step, name)
    with np.load(os.path.join(d, 'spectrum.npz')) as f:
      assert f['eigenvalues'].shape == (TOP_K,) and f['residuals'].shape == (TOP_K,)
      assert f['eigenvectors'].shape == (TOP_K, 610)
      assert np.all(np.diff(f['eigenvalues']) <= 0)
      assert f['density_grid'].shape == f['density'].shape == (1001,)
      width = f['density_grid'][1] - f['density_grid'][0]
      np.testing.assert_allclose(f['density'].sum() * width, 1.0, rtol=1e-3)
      assert int(f['step']) == step and int(f['num_examples']) == NUM_EXAMPLES
      assert np.isfinite(f['trace']) and f['trace_stderr'] > 0
      assert list(f['param_paths']) == [
        'Dense_0/bias',
        'Dense_0/kernel',
        'Dense_1/bias',
        'Dense_1/kernel',
      ]
      assert f['param_offsets'].tolist() == [0, 8, 520, 530, 610]
    with open(os.path.join(d, 'summary.json')) as f:
      summary = json.load(f)
    assert summary['source'] == ('checkpoint' if step == 46 else 'trajectory')
    assert set(summary['times']) >= {'lanczos', 'density', 'trace', 'total'}
  for name in ('top_eigenvalues.png', 'density.png', 'trace.png', 'summary.json'):
    assert os.path.getsize(os.path.join(root, name)) > 0
  logged = read_jsonl(out)
  assert [r['step'] for r in logged if 'spectrum/top_0' in r] == [0, 20, 46]


@pytest.mark.parametrize('step', [0, 20, 46])
def test_task_eigenpairs_equal_dense_hessian(trained, task, step):
  h, _ = _dense(trained, step)
  values, vectors = _eigh(h)
  npz = report.load(os.path.join(task[0], 'spectrum'), step)
  np.testing.assert_allclose(npz['eigenvalues'], values[:TOP_K], rtol=2e-4)
  np.testing.assert_allclose(npz['bottom_eigenvalues'], values[::-1][:2], rtol=2e-3, atol=1e-4)
  assert np.all(npz['residuals'] < 1e-2 * np.abs(npz['eigenvalues']))
  _check_vectors(npz, values, vectors)
  # The trace estimate (4 probes) lies within 5 standard errors of the exact trace.
  assert abs(float(npz['trace']) - np.trace(h)) < 5 * float(npz['trace_stderr'])


def test_callback_logs_top_eigenvalues_that_match_the_task(trained, task):
  records = read_jsonl(trained)
  logged = {int(r['step']): r for r in records if 'spectrum/top_0' in r}
  assert sorted(logged) == [0, 20, 40]
  npz = report.load(os.path.join(task[0], 'spectrum'), 20)
  for i in range(TOP_K):
    np.testing.assert_allclose(logged[20][f'spectrum/top_{i}'], npz['eigenvalues'][i], rtol=1e-5)
  saved = report.load(os.path.join(trained, 'spectrum'), 40)
  assert saved['eigenvectors'].shape == (TOP_K, 610)


def test_one_step_says_why_it_draws_no_figures_across_steps(trained, tmp_path, capsys):
  result = tasks.run(_task_config(trained + ':46', slq_probes=0, trace_probes=0), str(tmp_path))
  root = tmp_path / 'spectrum'
  assert result['steps'] == [46] and result['note'] == report.one_step_note([46])
  assert f'[spectrum] {result["note"]}' in capsys.readouterr().out
  assert 'no figures across steps' in result['note']
  assert (root / '46' / 'top_eigenvalues.png').exists()
  assert not any((root / name).exists() for name in ('top_eigenvalues.png', 'density.png'))
  with open(root / 'summary.json') as f:
    assert json.load(f)['note'] == result['note']


def test_ggn_and_block_match_dense_oracles(trained, tmp_path):
  ggn, _ = _dense(trained, 46, kind='ggn')
  fast = dict(plots=False, slq_probes=0, trace_probes=0)
  tasks.run(_task_config(trained + ':46', kind='ggn', **fast), str(tmp_path))
  npz = report.load(str(tmp_path / 'spectrum_ggn'), 46)
  values, vectors = _eigh(ggn)
  np.testing.assert_allclose(npz['eigenvalues'], values[:TOP_K], rtol=2e-4)
  _check_vectors(npz, values, vectors)

  h, _ = _dense(trained, 46)
  tasks.run(_task_config(trained + ':46', block='Dense_1', **fast), str(tmp_path))
  npz = report.load(str(tmp_path / 'spectrum_Dense_1'), 46)
  idx = np.arange(520, 610)  # Dense_1's bias and kernel in ravel order (sorted keys).
  values, vectors = _eigh(h[np.ix_(idx, idx)])
  np.testing.assert_allclose(npz['eigenvalues'], values[:TOP_K], rtol=2e-4)
  assert np.all(npz['eigenvectors'][:, :520] == 0)
  full = np.zeros((len(vectors), 610))
  full[:, idx] = vectors
  _check_vectors(npz, values, full)


def test_float64_matches_dense_hessian_more_tightly(trained, tmp_path):
  tasks.run(
    _task_config(trained, float64=True, plots=False, slq_probes=0, trace_probes=0), str(tmp_path)
  )
  npz = report.load(str(tmp_path / 'spectrum'), 46)
  assert npz['eigenvectors'].dtype == np.float64 and not np.size(npz['density'])
  values, _ = _eigh(_dense(trained, 46)[0])
  np.testing.assert_allclose(npz['eigenvalues'], values[:TOP_K], rtol=1e-6)


@pytest.mark.parametrize(
  'key,value,match',
  [
    ('kind', 'fisher', 'config.spectrum.kind'),
    ('bn_mode', 'batch', 'config.spectrum.bn_mode'),
    ('trace_probes', 1, 'config.spectrum.trace_probes'),
    ('top_k', 100, 'config.spectrum.top_k'),
    ('steps', (5,), 'config.spectrum.steps'),
    ('block', 'Conv_9', 'config.spectrum.block'),
    ('precision', 'tf32', 'config.spectrum.precision'),
  ],
)
def test_bad_options_raise_value_errors_naming_the_key(trained, tmp_path, key, value, match):
  with pytest.raises(ValueError, match=match):
    tasks.run(_task_config(trained, **{key: value}), str(tmp_path))


def test_trajectory_steps_take_batch_stats_from_init_or_the_nearest_checkpoint(tmp_path):
  """Trajectory files hold params only: BatchNorm statistics at step 0 are the initial ones,
  elsewhere the nearest checkpoint's; a checkpoint step gives its own; train mode needs none."""
  model = models.get_model('mlp', hidden_sizes=(4,), batch_norm=True, num_classes=10)
  params, init_stats = models.init_variables(model, (8, 8, 1), 0)
  run_dir = str(tmp_path)
  manager = checkpoints.make_manager(run_dir, keep=5)
  marked = {}
  for step in (10, 30):
    marked[step] = jax.tree.map(
      lambda a, s=step: np.full(a.shape, float(s), np.float32), init_stats
    )
    checkpoints.save(manager, step, {'params': params, 'batch_stats': marked[step]}, {})
  manager.wait_until_finished()
  manager.close()
  shifted = jax.tree.map(lambda a: np.asarray(a) + 1.0, params)
  for step in (0, 15):
    artifacts.save_trajectory(run_dir, step, shifted)

  def stats_value(stats):
    return float(np.asarray(stats['BatchNorm_0']['mean']).ravel()[0])

  p, stats, info = artifacts.load_step(run_dir, 0, init_stats, 'eval')
  assert stats_value(stats) == 0.0 and info['source'] == 'trajectory'
  np.testing.assert_array_equal(p['Dense_0']['kernel'], shifted['Dense_0']['kernel'])
  _, stats, info = artifacts.load_step(run_dir, 15, init_stats, 'eval')
  assert stats_value(stats) == 10.0 and info['batch_stats_source'] == 'checkpoint 10 (nearest)'
  _, stats, info = artifacts.load_step(run_dir, 30, init_stats, 'eval')
  assert stats_value(stats) == 30.0 and info['source'] == 'checkpoint'
  _, stats, info = artifacts.load_step(run_dir, 15, init_stats, 'train')
  assert stats_value(stats) == 0.0 and 'unused' in info['batch_stats_source']
  assert report.resolve_steps(run_dir, None, (-1, 0, 15)) == [0, 15, 30]
  with pytest.raises(ValueError, match='no checkpoint'):
    report.resolve_steps(run_dir, None, (20,))
  no_ckpt = str(tmp_path / 'traj_only')
  artifacts.save_trajectory(no_ckpt, 15, shifted)
  with pytest.raises(ValueError, match="bn_mode='train'"):
    artifacts.load_step(no_ckpt, 15, init_stats, 'eval')
