"""Hessian / Gauss-Newton spectra of a trained run: top eigenpairs, density and trace per step.

Task `spectrum` (configs/spectrum.py):
  python -m jaxland.main --config=configs/spectrum.py --config.checkpoint=<run dir>[:step]
    [--config.spectrum.steps='(0,200,1000)'] --workdir=<out>
rebuilds the run's model and data from its config.json, takes the first N training examples
(config.spectrum.num_examples; 0 = all; normalised, no augmentation) as one fixed dataset loss,
and at each step computes with jaxland.curvature: the top-k eigenpairs (Lanczos with full
reorthogonalisation), the spectral density (stochastic Lanczos quadrature) and the trace
(Hutchinson). With an empty config.checkpoint the workdir is the run dir.

Params of a step come from the run's Orbax checkpoint at that step, else from its trajectory
file (trajectory/params_XXXXXXXX.npz, config.train.trajectory_every_steps). Trajectory files hold
params only. BatchNorm statistics (bn_mode='eval') then come from: the initial ones at step 0
(exact: BatchNorm starts at mean 0, var 1), else the checkpoint nearest in step (approximate:
recorded in summary.json as batch_stats_source). Models without BatchNorm need none; with
bn_mode='train' each batch's own statistics are used and stored ones never matter. For exact
BatchNorm spectra choose steps at checkpoints (epoch ends, with train.keep_checkpoints large).

Options (config.spectrum): kind 'hessian' | 'ggn' (Gauss-Newton, PSD); bn_mode 'eval' | 'train';
block: a parameter-group prefix ('Dense_0', 'Conv_1/kernel'): the spectrum of that diagonal block
of the curvature; float64: params, data, Lanczos basis and sums in float64 (jax x64 inside the
task only; the models' float32 classifier heads still compute in float32); precision: the
products' matmul precision, 'highest' by default (GPUs otherwise use TF32; see curvature/hvp.py).

Output: <workdir>/<out>/<step>/spectrum.npz + summary.json + PNGs (jaxland.spectrum_report),
TensorBoard / metrics.jsonl scalars spectrum/top_<i>, spectrum/trace, spectrum/time. The npz keys
(below, and jaxland.spectrum_report):
  eigenvalues [k] (descending), eigenvectors [k, n_params] (unit rows, raveled in
  jax.flatten_util.ravel_pytree order of the full params pytree; zeros outside a block),
  residuals [k], bottom_eigenvalues [b], density_grid [G], density [G], slq_nodes / slq_weights,
  trace, trace_stderr, trace_samples, step, loss, gradient_overlaps [k], num_examples,
  param_paths [L], param_offsets [L+1].

Callback (spectrum_callback.py): with config.spectrum.every_steps > 0 a training run computes the
same spectrum every that many steps (and at step 0) on the same examples, logs spectrum/top_<i>
and spectrum/trace, and (callback_save) writes <run dir>/<out>/<step>/spectrum.npz and
summary.json.
"""

import contextlib
import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxland import checkpoints, curvature, spectrum_report
from jaxland.data import pipeline, sources
from jaxland.metrics import RunWriter

OUT_DIR = 'spectrum'


# ------------------------------------------------------------------------------------- options


@dataclasses.dataclass(frozen=True)
class Options:
  """The validated config.spectrum section (see configs/default.py for each key)."""

  steps: tuple
  num_examples: int
  batch_size: int
  kind: str
  bn_mode: str
  block: str
  float64: bool
  precision: str
  top_k: int
  bottom_k: int
  lanczos_steps: int
  slq_probes: int
  slq_steps: int
  density_sigma: float
  trace_probes: int
  seed: int
  unroll: int
  out_dir: str
  every_steps: int
  callback_save: bool
  plots: bool


def _bad(key, value, allowed):
  raise ValueError(f'config.spectrum.{key} = {value!r} is not allowed; {allowed}')


def _int(section, key, low):
  value = section[key]
  if isinstance(value, bool) or not isinstance(value, int) or value < low:
    _bad(key, value, f'must be an int >= {low}')
  return value


def options(config) -> Options:
  """Options from config.spectrum; ValueError naming the key for a bad value."""
  s = config.spectrum
  if s.kind not in curvature.KINDS:
    _bad('kind', s.kind, f'choose from {curvature.KINDS}')
  if s.bn_mode not in curvature.BN_MODES:
    _bad('bn_mode', s.bn_mode, f'choose from {curvature.BN_MODES}')
  if s.precision not in curvature.PRECISIONS:
    _bad('precision', s.precision, f'choose from {curvature.PRECISIONS}')
  steps = tuple(s.steps) if isinstance(s.steps, (list, tuple)) else (s.steps,)
  if any(isinstance(x, bool) or not isinstance(x, int) or x < -1 for x in steps):
    _bad('steps', s.steps, 'a tuple of training steps (ints >= 0; -1 = the latest checkpoint)')
  ints = {k: _int(s, k, 0) for k in ('num_examples', 'batch_size', 'bottom_k', 'slq_probes')}
  ints.update({k: _int(s, k, 0) for k in ('seed', 'unroll', 'every_steps')})
  ints.update({k: _int(s, k, 1) for k in ('top_k', 'lanczos_steps', 'slq_steps')})
  trace_probes = _int(s, 'trace_probes', 0)
  if trace_probes == 1:
    _bad('trace_probes', 1, 'use 0 (off) or >= 2 (a standard error needs two samples)')
  if ints['top_k'] > ints['lanczos_steps'] or ints['bottom_k'] > ints['lanczos_steps']:
    _bad('top_k', s.top_k, f'top_k and bottom_k must be <= lanczos_steps ({s.lanczos_steps})')
  if not s.density_sigma >= 0:
    _bad('density_sigma', s.density_sigma, 'must be >= 0 (0 = (max - min eigenvalue) / 200)')
  return Options(
    steps=tuple(sorted(set(steps))),
    kind=s.kind,
    bn_mode=s.bn_mode,
    block=str(s.block),
    float64=bool(s.float64),
    precision=str(s.precision),
    density_sigma=float(s.density_sigma),
    trace_probes=trace_probes,
    out_dir=str(s.out_dir),
    callback_save=bool(s.callback_save),
    plots=bool(s.plots),
    **ints,
  )


def out_name(opts: Options) -> str:
  """'spectrum' for the default options, else with suffixes naming what differs (or out_dir)."""
  if opts.out_dir:
    return opts.out_dir
  parts = [OUT_DIR]
  if opts.kind != 'hessian':
    parts.append(opts.kind)
  if opts.bn_mode != 'eval':
    parts.append('bn' + opts.bn_mode)
  if opts.block:
    parts.append(opts.block.replace('/', '-'))
  return '_'.join(parts)


# ----------------------------------------------------------------------------------------- data


def example_batches(dataset, opts: Options, run_batch_size: int, eval_batch_size: int, mesh):
  """The first N training examples, normalised, stacked into batches (sharded when divisible).

  Returns (batches, num_examples). bn_mode='train' keeps whole batches only (padding would enter
  the batch statistics), so N is rounded down to a multiple of the batch size there.
  """
  images, labels = dataset.train
  n = len(labels) if opts.num_examples == 0 else min(opts.num_examples, len(labels))
  default = run_batch_size if opts.bn_mode == 'train' else eval_batch_size
  batch_size = min(opts.batch_size or default, n)
  if opts.bn_mode == 'train':
    n -= n % batch_size
  elif batch_size == n > 1 and jax.default_backend() == 'cpu':
    # A one-batch lax.scan stays a while loop even with unroll=True (unroll = length = 1), and
    # XLA:CPU runs convolutions inside loops 10-30x slower (jax-ml/jax#12868): use two batches.
    batch_size = -(-n // 2)
  x = np.asarray(pipeline.normalize(images[:n], dataset.mean, dataset.std))
  x = x.astype(np.float64 if opts.float64 else np.float32)
  batches = curvature.stack_batches({'image': x, 'label': labels[:n].astype(np.int32)}, batch_size)
  if mesh is not None and batch_size % mesh.size == 0:
    return curvature.shard_batches(batches, mesh), n
  return jax.device_put(batches), n


def _unroll(opts: Options, batches):
  """opts.unroll, or (0) a full unroll on CPU for up to 32 batches (jax-ml/jax#12868), else 1."""
  if opts.unroll:
    return opts.unroll
  return jax.default_backend() == 'cpu' and batches['label'].shape[0] <= 32


def _on_mesh_of(batches, tree, dtype):
  """The tree in `dtype`, replicated where the batches live (their mesh, or their one device)."""
  sharding = batches['label'].sharding
  if isinstance(sharding, NamedSharding):
    sharding = NamedSharding(sharding.mesh, P())
  return jax.device_put(jax.tree.map(lambda a: np.asarray(a, dtype), tree), sharding)


# ------------------------------------------------------------------------------------- compute


def leaf_layout(params) -> tuple[list[str], np.ndarray, dict]:
  """'/'-joined leaf paths in ravel order, their offsets [L+1] and shapes {path: shape}."""
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  paths = [jax.tree_util.keystr(p, simple=True, separator='/') for p, _ in leaves]
  sizes = [int(np.size(v)) for _, v in leaves]
  shapes = {path: list(np.shape(v)) for path, (_, v) in zip(paths, leaves, strict=True)}
  return paths, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), shapes


def compute(model, params, batch_stats, batches, opts: Options) -> dict:
  """Eigenpairs, density and trace of the dataset loss at `params`: arrays and timings."""
  dtype = jnp.float64 if opts.float64 else jnp.float32
  if opts.float64 and hasattr(model, 'dtype'):
    model = model.clone(dtype=jnp.float64)
  params = _on_mesh_of(batches, params, dtype)
  batch_stats = _on_mesh_of(batches, batch_stats or {}, dtype)
  unroll, times, out = _unroll(opts, batches), {}, {}
  try:
    op = curvature.model_operator(
      model,
      params,
      batch_stats,
      batches,
      kind=opts.kind,
      bn_mode=opts.bn_mode,
      block=opts.block or None,
      unroll=unroll,
      precision=opts.precision,
    )
  except ValueError as e:
    if opts.block and 'parameter groups' in str(e):
      raise ValueError(f'config.spectrum.block = {opts.block!r}: {e}') from e
    raise
  t = time.perf_counter()
  loss_fn = curvature.make_loss_fn(model, batch_stats, opts.bn_mode)
  loss, grad = curvature.dataset_loss_and_grad(loss_fn, params, batches, unroll=unroll)
  grad = np.asarray(curvature.ravel(grad), np.float64)
  times['gradient'] = time.perf_counter() - t

  t = time.perf_counter()
  top_k, bottom_k = min(opts.top_k, op.dim), min(opts.bottom_k, op.dim)
  res = curvature.lanczos(
    op.matvec,
    op.dim,
    opts.lanczos_steps,
    top_k=top_k,
    bottom_k=bottom_k,
    seed=opts.seed,
    dtype=dtype,
  )
  vectors = np.asarray(res.top.vectors)
  times['lanczos'] = time.perf_counter() - t
  if opts.block:
    full = np.zeros((len(vectors), grad.size), vectors.dtype)
    full[:, curvature.block_indices(params, opts.block)] = vectors
    vectors = full
  out.update(
    eigenvalues=res.top.values,
    eigenvectors=vectors,
    residuals=res.top.residuals,
    bottom_eigenvalues=res.bottom.values,
    bottom_residuals=res.bottom.residuals,
    ritz_values=res.ritz_values,
    loss=float(loss),
    gradient_overlaps=vectors @ grad,
    gradient_norm=float(np.linalg.norm(grad)),
    num_params=op.dim,
  )
  out.update(_density(op, opts, dtype, times))
  out.update(_trace(op, opts, dtype, times))
  return out | {'times': times}


def _density(op, opts: Options, dtype, times) -> dict:
  empty = np.zeros(0)
  if not opts.slq_probes:
    return dict(
      density_grid=empty, density=empty, slq_nodes=empty, slq_weights=empty, density_sigma=np.nan
    )
  t = time.perf_counter()
  res = curvature.slq(
    op.matvec, op.dim, opts.slq_probes, opts.slq_steps, seed=opts.seed + 1, dtype=dtype
  )
  sigma = opts.density_sigma or max(float(np.ptp(res.nodes)) / 200, 1e-12)
  grid = curvature.density_grid(res, sigma)
  density = curvature.spectral_density(res, grid, sigma)
  times['density'] = time.perf_counter() - t
  return dict(
    density_grid=grid,
    density=density,
    slq_nodes=res.nodes,
    slq_weights=res.weights,
    density_sigma=sigma,
  )


def _trace(op, opts: Options, dtype, times) -> dict:
  if not opts.trace_probes:
    return dict(trace=np.nan, trace_stderr=np.nan, trace_samples=np.zeros(0))
  t = time.perf_counter()
  est = curvature.hutchinson(op.matvec, op.dim, opts.trace_probes, seed=opts.seed + 2, dtype=dtype)
  times['trace'] = time.perf_counter() - t
  return dict(trace=est.trace, trace_stderr=est.stderr, trace_samples=est.samples)


def spectrum_at(model, params, batch_stats, batches, opts: Options, step: int, info: dict):
  """compute() plus everything write_step stores: (arrays, summary dict)."""
  t = time.perf_counter()
  with jax.enable_x64(True) if opts.float64 else contextlib.nullcontext():
    result = compute(model, params, batch_stats, batches, opts)
  result['times']['total'] = time.perf_counter() - t + info.pop('load_time', 0.0)
  paths, offsets, shapes = leaf_layout(params)
  result.update(step=step, param_paths=np.array(paths), param_offsets=offsets)
  summary = {
    'step': step,
    'kind': opts.kind,
    'bn_mode': opts.bn_mode,
    'block': opts.block,
    'dtype': 'float64' if opts.float64 else 'float32',
    'lanczos_steps': opts.lanczos_steps,
    'slq_probes': opts.slq_probes,
    'slq_steps': opts.slq_steps,
    'trace_probes': opts.trace_probes,
    'seed': opts.seed,
    'param_shapes': shapes,
    **info,
  }
  return result, summary


def scalars(result: dict, prefix: str = 'spectrum/') -> dict:
  """TensorBoard scalars: top_<i>, trace (when estimated), loss and time."""
  out = {f'{prefix}top_{i}': v for i, v in enumerate(result['eigenvalues'])}
  if np.isfinite(result['trace']):
    out[f'{prefix}trace'] = result['trace']
  out[f'{prefix}loss'] = result['loss']
  out[f'{prefix}time'] = result['times']['total']
  return out


# ----------------------------------------------------------------------------------------- task


def run_task(config, workdir: str) -> dict:
  """Task `spectrum`: spectra of config.checkpoint's run at config.spectrum.steps."""
  opts = options(config)
  ref = config.get('checkpoint') or workdir
  run_dir, ref_step = checkpoints.parse_checkpoint_ref(ref)
  run_config = spectrum_report.load_run_config(run_dir)
  steps = spectrum_report.resolve_steps(run_dir, ref_step, opts.steps)
  t = time.perf_counter()
  dataset = sources.load_dataset(run_config.data)
  model = spectrum_report.build_model(run_config, dataset.num_classes)
  init_stats = spectrum_report.init_variables(model, dataset.train[0].shape[1:]).get(
    'batch_stats', {}
  )
  mesh = pipeline.make_mesh()
  batches, n = example_batches(
    dataset, opts, run_config.data.batch_size, run_config.data.eval_batch_size, mesh
  )
  data_time = time.perf_counter() - t
  root = os.path.join(workdir, out_name(opts))
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  writer, per_step = RunWriter(workdir), {}
  try:
    for step in steps:
      t = time.perf_counter()
      params, stats, info = spectrum_report.load_step(run_dir, step, init_stats, opts.bn_mode)
      info.update(
        run_dir=os.path.abspath(run_dir),
        dataset=dataset.name,
        num_examples=n,
        load_time=time.perf_counter() - t,
      )
      result, summary = spectrum_at(model, params, stats, batches, opts, step, info)
      summary['times_data'] = data_time
      per_step[step] = spectrum_report.write_step(root, result, summary, plots=opts.plots)
      writer.write_scalars(step, scalars(result))
      print(f'[jaxland] spectrum {spectrum_report.line(per_step[step])}', flush=True)
  finally:
    writer.close()
  return spectrum_report.write_run(root, per_step, plots=opts.plots)
