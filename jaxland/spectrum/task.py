"""Hessian / Gauss-Newton spectra of a run: top eigenpairs, density and trace per step.

Task `spectrum` rebuilds the run's model and data from its config.json, takes the first N
training examples (normalised, no augmentation) as one fixed dataset loss, and at each step
computes with jaxland.curvature the top-k eigenpairs (Lanczos), the spectral density (SLQ) and
the trace (Hutchinson). Params come from the step's checkpoint, else its trajectory file
(rundir.artifacts.load_step says where BatchNorm statistics then come from). The npz layout is
in jaxland.spectrum.report; options and examples in WORKSPACE.md.
"""

import contextlib
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxland import curvature, data, models
from jaxland.data import pipeline
from jaxland.output.metrics import RunWriter
from jaxland.output.progress import Progress
from jaxland.rundir import artifacts, checkpoints
from jaxland.spectrum import report
from jaxland.spectrum.settings import Options, options
from jaxland.train import loop

OUT_DIR = 'spectrum'


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
      raise ValueError(f'config.spectrum.block = {opts.block!r} is not allowed; {e}') from e
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


def record_dir(config, workdir: str) -> str:
  """Where the task writes: <workdir>/<spectrum[_kind...]> (out_name)."""
  return os.path.join(workdir, out_name(options(config)))


def run(config, workdir: str) -> dict:
  """Task `spectrum`: spectra of config.checkpoint's run at config.spectrum.steps."""
  opts = options(config)
  run_dir, ref_step = checkpoints.parse_checkpoint_ref(config.get('checkpoint') or workdir)
  run_config = artifacts.load_config(run_dir)
  t = time.perf_counter()
  dataset = data.load_dataset(run_config.data)
  steps_per_epoch, _ = loop.schedule_steps(run_config, len(dataset.train[1]))
  wanted = opts.steps + tuple(e * steps_per_epoch for e in opts.epochs)
  steps = report.resolve_steps(run_dir, ref_step, tuple(sorted(set(wanted))))
  model = models.from_config(run_config.model, dataset.num_classes)
  _, init_stats = models.init_variables(model, dataset.train[0].shape[1:], 0)
  mesh = pipeline.make_mesh()
  batches, n = example_batches(
    dataset, opts, run_config.data.batch_size, run_config.data.eval_batch_size, mesh
  )
  data_time = time.perf_counter() - t
  root = record_dir(config, workdir)
  writer, per_step = RunWriter(workdir), {}
  try:
    progress = Progress('spectrum step', len(steps))
    for step in steps:
      t = time.perf_counter()
      params, stats, info = artifacts.load_step(run_dir, step, init_stats, opts.bn_mode)
      info.update(
        run_dir=os.path.abspath(run_dir),
        dataset=dataset.name,
        num_examples=n,
        load_time=time.perf_counter() - t,
      )
      result, summary = spectrum_at(model, params, stats, batches, opts, step, info)
      summary['times_data'] = data_time
      per_step[step] = report.write_step(root, result, summary, plots=opts.plots)
      writer.write_scalars(step, scalars(result))
      progress.tick(note=report.line(per_step[step]))
  finally:
    writer.close()
  return report.write_run(root, per_step, plots=opts.plots)
