"""Eigenpairs of a Problem's dataset loss, from jaxland.curvature (or a spectrum npz).

`Eigen` keeps every Ritz pair of one Lanczos run, in descending order: the first `num_top` are
the converged top eigenpairs; the rest are Ritz vectors from the interior of the Krylov spectrum
("bulk" directions: their Ritz value is exactly their Rayleigh quotient v^T H v, but they are not
converged eigenvectors -- the residual says how far) and the bottom ones (the most negative
curvature found). The trace (Hutchinson) gives the mean of the eigenvalues left outside the top
k, which is what an isotropic-bulk model predicts for v^T H v along a direction orthogonal to
the top k.
"""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxland import curvature
from jaxland.landscape.problem import Problem

KINDS = curvature.KINDS


@dataclasses.dataclass
class Eigen:
  """Ritz pairs (descending values [m], unit vectors [m, P] float32 numpy) at one point."""

  values: np.ndarray
  vectors: np.ndarray
  residuals: np.ndarray
  num_top: int
  trace: float = float('nan')  # tr(H) (Hutchinson), NaN when not estimated.
  trace_stderr: float = float('nan')
  step: int = 0

  @property
  def top_values(self) -> np.ndarray:
    return self.values[: self.num_top]

  @property
  def top_vectors(self) -> np.ndarray:
    return self.vectors[: self.num_top]

  @property
  def dim(self) -> int:
    return int(self.vectors.shape[1])

  def bulk_mean(self) -> float:
    """(tr H - sum of the top-k eigenvalues) / (P - k): mean eigenvalue outside the top k."""
    return float((self.trace - self.top_values.sum()) / (self.dim - self.num_top))

  def save(self, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(
      path,
      values=self.values,
      vectors=self.vectors,
      residuals=self.residuals,
      num_top=self.num_top,
      trace=self.trace,
      trace_stderr=self.trace_stderr,
      step=self.step,
    )
    return path


def load(path: str) -> Eigen:
  """An Eigen saved by Eigen.save, or a spectrum.npz of the `spectrum` task (keys eigenvalues,
  eigenvectors [k, P], residuals, trace, trace_stderr, step; see jaxland/spectrum.py):
  then every pair is a top pair and there are no bulk Ritz vectors."""
  with np.load(path) as f:
    keys = set(f.files)
    if 'values' in keys:
      return Eigen(
        values=f['values'],
        vectors=f['vectors'].astype(np.float32),
        residuals=f['residuals'],
        num_top=int(f['num_top']),
        trace=float(f['trace']),
        trace_stderr=float(f['trace_stderr']),
        step=int(f['step']),
      )
    value_key = next((k for k in ('eigenvalues', 'top_values', 'evals') if k in keys), None)
    vector_key = next((k for k in ('eigenvectors', 'top_vectors', 'evecs') if k in keys), None)
    if value_key is None or vector_key is None:
      raise ValueError(f'{path}: no eigenvalue / eigenvector arrays among its keys {sorted(keys)}')
    values = np.asarray(f[value_key], np.float64)
    vectors = np.asarray(f[vector_key], np.float32)
    if vectors.shape[0] != values.shape[0]:
      vectors = vectors.T  # Columns -> rows.
    order = np.argsort(-values)
    residuals = np.asarray(f['residuals'], np.float64) if 'residuals' in keys else 0 * values
    scalar = lambda k, default: float(f[k]) if k in keys else default
    return Eigen(
      values=values[order],
      vectors=vectors[order],
      residuals=residuals[order],
      num_top=len(values),
      trace=scalar('trace', float('nan')),
      trace_stderr=scalar('trace_stderr', float('nan')),
      step=int(scalar('step', 0)),
    )


def stacked_train(problem: Problem, batch_size: int, num_examples: int = 0) -> dict:
  """The train split as stacked, masked batches {'image', 'label', 'mask'} for the curvature."""
  x, y = problem.splits['train']
  if num_examples:
    x, y = x[:num_examples], y[:num_examples]
  return curvature.stack_batches({'image': np.asarray(x), 'label': np.asarray(y)}, batch_size)


def auto_unroll(batches, unroll=0):
  """unroll, or (0) a full unroll on CPU for up to 32 batches, where XLA runs convolution
  gradients inside a loop 10-30x slower (jax-ml/jax#12868), else 1."""
  if unroll:
    return unroll
  n = int(np.shape(batches['label'])[0])
  return True if jax.default_backend() == 'cpu' and n <= 32 else 1


def operator(problem: Problem, batches, kind: str = 'hessian', unroll=0):
  """The curvature Operator of the problem's train loss (BatchNorm in eval mode)."""
  unroll = auto_unroll(batches, unroll)
  return curvature.model_operator(
    problem.model,
    problem.unravel(problem.flat),
    problem.batch_stats,
    batches,
    kind=kind,
    bn_mode='eval',
    unroll=unroll,
  )


def compute(
  problem: Problem,
  *,
  num_top: int,
  num_steps: int,
  kind: str = 'hessian',
  batch_size: int = 1000,
  num_examples: int = 0,
  trace_probes: int = 0,
  seed: int = 0,
  unroll=0,
) -> Eigen:
  """All Ritz pairs of num_steps Lanczos steps on the train loss; the first num_top are the top.

  trace_probes > 1 adds a Hutchinson trace estimate (one HVP per probe).
  """
  if kind not in KINDS:
    raise ValueError(f'kind={kind!r}; choose from {KINDS}')
  num_steps = min(num_steps, problem.dim)
  if not 0 < num_top <= num_steps:
    raise ValueError(f'num_top={num_top} must lie in [1, lanczos steps={num_steps}]')
  op = operator(problem, stacked_train(problem, batch_size, num_examples), kind, unroll)
  res = curvature.lanczos(op.matvec, op.dim, num_steps, top_k=num_steps, seed=seed)
  trace, stderr = float('nan'), float('nan')
  if trace_probes > 1:
    est = curvature.hutchinson(op.matvec, op.dim, trace_probes, seed=seed + 1)
    trace, stderr = est.trace, est.stderr
  return Eigen(
    values=np.asarray(res.top.values, np.float64),
    vectors=np.asarray(res.top.vectors, np.float32),
    residuals=np.asarray(res.top.residuals, np.float64),
    num_top=num_top,
    trace=trace,
    trace_stderr=stderr,
    step=problem.step,
  )


def compute_from(problem: Problem, c, trace_probes: int = 0) -> Eigen:
  """`compute` with the settings of a config.landscape section `c` (top-k, Lanczos steps, kind,
  batch size, examples, seed)."""
  return compute(
    problem,
    num_top=c.num_top,
    num_steps=c.lanczos_steps,
    kind=c.kind,
    batch_size=c.batch_size,
    num_examples=c.curvature_examples,
    trace_probes=trace_probes,
    seed=c.seed,
  )


def hvp_fn(problem: Problem, batch_size: int = 1000, num_examples: int = 0, kind='hessian'):
  """v [P] -> H v of the train loss (the exact v^T H v oracle for random directions)."""
  op = operator(problem, stacked_train(problem, batch_size, num_examples), kind)
  return lambda v: np.asarray(op(jnp.asarray(v, jnp.float32)))


def select(eigen: Eigen, num_bulk: int, num_bottom: int) -> dict:
  """Indices (into eigen.values) of the probed directions: 'top', 'bulk' (spread in between,
  geometric in index), 'bottom' (the last Ritz pairs)."""
  m, k = len(eigen.values), eigen.num_top
  bottom = list(range(max(k, m - num_bottom), m)) if num_bottom else []
  inner = np.arange(k, m - len(bottom))
  bulk = []
  if num_bulk and inner.size:
    picks = np.unique(np.geomspace(1, inner.size, num_bulk).astype(int) - 1)
    bulk = [int(inner[i]) for i in picks]
  return {'top': list(range(k)), 'bulk': bulk, 'bottom': bottom}
