"""Curvature of a dataset loss: Hessian / Gauss-Newton products, Lanczos, SLQ density, trace.

Typical use on a trained Flax model (stacked batches from stack_batches, optionally sharded):

  op = model_operator(model, params, batch_stats, batches)      # Hessian, BN eval mode
  res = lanczos(op.matvec, op.dim, num_steps=100, top_k=20)      # top eigenpairs
  direction = op.to_tree(res.top.vectors[0])                     # params-shaped eigenvector
  dens = slq(op.matvec, op.dim, num_probes=10, num_steps=80)     # spectral density
  grid = density_grid(dens, sigma=0.1); rho = spectral_density(dens, grid, sigma=0.1)
  tr = hutchinson(op.matvec, op.dim, num_probes=100)

On CPU with convolutional models pass unroll=True to the operator (see hessian_operator).
"""

from jaxland.curvature.density import (
  SLQResult,
  density_grid,
  moment,
  quadrature,
  slq,
  spectral_density,
)
from jaxland.curvature.exact import dense_hessian, dense_matrix, eigh
from jaxland.curvature.hvp import (
  KINDS,
  PRECISIONS,
  Operator,
  block_indices,
  block_leaf_ids,
  dataset_loss_and_grad,
  ggn_operator,
  hessian_operator,
  model_operator,
  ravel,
  restrict,
  shard_batches,
  stack_batches,
)
from jaxland.curvature.lanczos import LanczosResult, Ritz, lanczos, lanczos_tridiag, tridiag_eigh
from jaxland.curvature.losses import BN_MODES, LOSSES, make_logits_fn, make_loss_fn
from jaxland.curvature.trace import TraceEstimate, hutchinson

__all__ = [
  'BN_MODES',
  'KINDS',
  'LOSSES',
  'PRECISIONS',
  'LanczosResult',
  'Operator',
  'Ritz',
  'SLQResult',
  'TraceEstimate',
  'block_indices',
  'block_leaf_ids',
  'dataset_loss_and_grad',
  'dense_hessian',
  'dense_matrix',
  'density_grid',
  'eigh',
  'ggn_operator',
  'hessian_operator',
  'hutchinson',
  'lanczos',
  'lanczos_tridiag',
  'make_logits_fn',
  'make_loss_fn',
  'model_operator',
  'moment',
  'quadrature',
  'ravel',
  'restrict',
  'shard_batches',
  'slq',
  'spectral_density',
  'stack_batches',
  'tridiag_eigh',
]
