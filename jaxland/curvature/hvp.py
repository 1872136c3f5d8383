"""Curvature-vector products of a dataset loss: Hessian (forward-over-reverse) and Gauss-Newton.

The loss (losses.py) is a pure function of the params, averaged over a fixed list of batches
stacked along a leading axis and weighted by their real example counts (a padded last batch counts
only its real examples). Each product is one `lax.scan` over the batches inside jit; when the
batch arrays are sharded over a ('data',) mesh the same code runs data parallel, jit inserting the
reductions.

Products act on raveled vectors (`jax.flatten_util.ravel_pytree` order), so Lanczos and the trace
and density estimators see a plain matrix. An `Operator` carries its matvec as a
`jax.tree_util.Partial`: the params and batches are pytree leaves of it, so passing the matvec into
a jitted solver makes them arguments (not baked-in constants), and a new checkpoint of the same
model reuses the compiled solver.

Products are traced under `jax.default_matmul_precision(precision)`, 'highest' by default: on GPUs
XLA otherwise runs float32 matmuls and convolutions in TF32 (10-bit mantissa), and a Hessian
spectrum meant as a reference should not carry ~1e-3 relative errors from its products. CPUs
compute float32 in full either way; 'default' buys speed on GPUs where that accuracy is enough.
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.tree_util import Partial

from jaxland.curvature.losses import make_logits_fn, make_loss_fn

KINDS = ('hessian', 'ggn')
PRECISIONS = ('highest', 'high', 'default')


# -------------------------------------------------------------------------------- scans over data


def _tree_add(a, b):
  return jax.tree.map(jnp.add, a, b)


def _scan(body, init, batches, unroll):
  """lax.scan over the stacked batches, but a plain call for a single batch.

  With one batch an unrolled scan would still be a while loop, where XLA:CPU runs convolution
  gradients 15-30x slower (jax-ml/jax#12868).
  """
  if jax.tree.leaves(batches)[0].shape[0] == 1:
    carry, out = body(init, jax.tree.map(lambda a: a[0], batches))
    return carry, jax.tree.map(lambda a: a[None], out)
  return jax.lax.scan(body, init, batches, unroll=unroll)


def _hvp_scan(loss_fn, x, batches, v, unroll):
  """(sum_b H_b v) / (sum_b n_b), where loss_fn(x, batch) -> (loss sum, count)."""
  grad_fn = jax.grad(loss_fn, has_aux=True)
  dtype = ravel_pytree(x)[0].dtype

  def body(carry, batch):
    acc, total = carry
    (_, count), (hv, _) = jax.jvp(lambda y: grad_fn(y, batch), (x,), (v,))
    return (_tree_add(acc, hv), total + count.astype(dtype)), None

  init = (jax.tree.map(jnp.zeros_like, x), jnp.zeros((), dtype))
  (acc, total), _ = _scan(body, init, batches, unroll)
  return jax.tree.map(lambda a: a / total, acc)


def _ggn_scan(logits_fn, x, batches, v, unroll):
  """(sum_b J_b^T H_out J_b v) / (sum_b n_b), H_out the softmax-xent Hessian in logit space."""
  dtype = ravel_pytree(x)[0].dtype

  def body(carry, batch):
    acc, total = carry
    logits, f_lin, weights = jax.linearize(lambda y: logits_fn(y, batch), x, has_aux=True)
    jv = f_lin(v)
    p = jax.nn.softmax(logits, axis=-1)
    # Hessian of -log softmax(z)_y in z is diag(p) - p p^T, the same for every label.
    h_jv = p * jv - p * jnp.sum(p * jv, axis=-1, keepdims=True)
    (gv,) = jax.linear_transpose(f_lin, x)(weights[:, None] * h_jv)
    return (_tree_add(acc, gv), total + jnp.sum(weights).astype(dtype)), None

  init = (jax.tree.map(jnp.zeros_like, x), jnp.zeros((), dtype))
  (acc, total), _ = _scan(body, init, batches, unroll)
  return jax.tree.map(lambda a: a / total, acc)


def _leaf_paths(params):
  """'/'-joined path of every leaf, in ravel_pytree order."""
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return [jax.tree_util.keystr(path, simple=True, separator='/') for path, _ in leaves]


def block_leaf_ids(params, prefix):
  """Indices of the leaves under `prefix`: 'Conv_0', 'Block_1/Conv_0' or a tuple of keys."""
  parts = tuple(prefix.split('/')) if isinstance(prefix, str) else tuple(str(p) for p in prefix)
  paths = _leaf_paths(params)
  ids = tuple(i for i, p in enumerate(paths) if tuple(p.split('/'))[: len(parts)] == parts)
  if not ids:
    groups = sorted({p.rsplit('/', 1)[0] for p in paths})
    raise ValueError(f'no parameters under {prefix!r}; parameter groups are {groups}')
  return ids


def block_indices(params, prefix):
  """Positions in ravel_pytree(params) of the parameters under `prefix` (an int array)."""
  ids = set(block_leaf_ids(params, prefix))
  leaves = jax.tree.leaves(params)
  masks = [np.full(np.size(leaf), i in ids) for i, leaf in enumerate(leaves)]
  return np.flatnonzero(np.concatenate(masks))


@dataclasses.dataclass(frozen=True)
class _Product:
  """Flat matvec v -> C v of the curvature C ('hessian' | 'ggn') in the leaves `leaf_ids`."""

  kind: str
  leaf_ids: tuple | None = None
  unroll: int | bool = 1
  precision: str = 'highest'

  def __call__(self, fn, params, batches, v):
    x, merge = _split(params, self.leaf_ids)
    flat_x, unravel = ravel_pytree(x)
    v_tree = unravel(v.astype(flat_x.dtype))
    f = lambda y, batch: fn(merge(y), batch)
    scan = _hvp_scan if self.kind == 'hessian' else _ggn_scan
    with jax.default_matmul_precision(self.precision):
      product = scan(f, x, batches, v_tree, self.unroll)
    return ravel_pytree(product)[0].astype(v.dtype)


def _split(params, leaf_ids):
  """The variables (all params, or a list of selected leaves) and how to rebuild the params."""
  if leaf_ids is None:
    return params, lambda x: x
  leaves, treedef = jax.tree.flatten(params)

  def merge(selected):
    full = list(leaves)
    for i, leaf in zip(leaf_ids, selected, strict=True):
      full[i] = leaf
    return jax.tree.unflatten(treedef, full)

  return [leaves[i] for i in leaf_ids], merge


@jax.jit
def _apply(matvec, v):
  return matvec(v)


# ------------------------------------------------------------------------------------ operators


@dataclasses.dataclass(frozen=True)
class Operator:
  """A symmetric linear map on raveled vectors of length `dim`.

  matvec: a jax.tree_util.Partial (pass it to lanczos / slq / hutchinson, which jit it).
  to_tree: a raveled vector -> a params-shaped pytree (zeros outside a block).
  Calling the operator, op(v), applies the jitted matvec.
  """

  matvec: Callable
  dim: int
  to_tree: Callable

  def __call__(self, v):
    return _apply(self.matvec, v)


def _replicated_on_mesh_of(batches, *trees):
  """The trees replicated over the mesh of sharded batches (e.g. restored params that sit on one
  device), so one jit sees all its arrays on one device set; unchanged for unsharded batches."""
  for leaf in jax.tree.leaves(batches):
    sharding = getattr(leaf, 'sharding', None)
    if isinstance(sharding, NamedSharding):
      return jax.device_put(trees, NamedSharding(sharding.mesh, P()))
  return trees


def _operator(kind, fn, params, batches, block, unroll, precision):
  if kind not in KINDS:
    raise ValueError(f'kind={kind!r}; choose from {KINDS}')
  if precision not in PRECISIONS:
    raise ValueError(f'precision={precision!r}; choose from {PRECISIONS}')
  if not isinstance(fn, Partial):
    fn = Partial(fn)
  fn, params = _replicated_on_mesh_of(batches, fn, params)
  leaf_ids = None if block is None else block_leaf_ids(params, block)
  x, _ = _split(params, leaf_ids)
  flat_x, unravel = ravel_pytree(x)

  def to_tree(v):
    if leaf_ids is None:
      return unravel(jnp.asarray(v, flat_x.dtype))
    leaves, treedef = jax.tree.flatten(jax.tree.map(jnp.zeros_like, params))
    for i, leaf in zip(leaf_ids, unravel(jnp.asarray(v, flat_x.dtype)), strict=True):
      leaves[i] = leaf
    return jax.tree.unflatten(treedef, leaves)

  matvec = Partial(_Product(kind, leaf_ids, unroll, precision), fn, params, batches)
  return Operator(matvec=matvec, dim=int(flat_x.size), to_tree=to_tree)


def hessian_operator(loss_fn, params, batches, *, block=None, unroll=1, precision='highest'):
  """Hessian of the dataset loss as an Operator, by forward-over-reverse (jvp of grad).

  loss_fn(params, batch) -> (sum of per-example losses, example count), e.g. from make_loss_fn;
  batches: a pytree of arrays with a leading n_batches axis (see stack_batches). block: a param
  path prefix; then the operator is the block H_bb, differentiating only that block's params.
  unroll: passed to the lax.scan over batches. On CPU, XLA runs convolution gradients inside a
  loop 10-30x slower (jax-ml/jax#12868): there use unroll=True for conv models (compile time then
  grows with the number of batches) together with lanczos' host loop (its CPU default).
  precision: matmul precision of the products (PRECISIONS; module docstring).
  """
  return _operator('hessian', loss_fn, params, batches, block, unroll, precision)


def ggn_operator(logits_fn, params, batches, *, block=None, unroll=1, precision='highest'):
  """Generalised Gauss-Newton J^T H_out J of the softmax cross-entropy dataset loss.

  logits_fn(params, batch) -> (logits [B, K], weights [B]), e.g. from make_logits_fn; the loss
  Hessian in logit space, diag(p) - p p^T, is applied in closed form between the linearised
  network (J v) and its transpose (J^T u).
  block, unroll, precision: as in hessian_operator.
  """
  return _operator('ggn', logits_fn, params, batches, block, unroll, precision)


def model_operator(
  model,
  params,
  batch_stats,
  batches,
  *,
  kind='hessian',
  bn_mode='eval',
  loss='xent',
  block=None,
  unroll=1,
  precision='highest',
  mask_key='mask',
  **keys,
):
  """Curvature Operator of a Flax model on stacked batches: the one call a spectrum task needs.

  kind: 'hessian' | 'ggn' (GGN needs loss='xent'). block, unroll, precision: see
  hessian_operator.
  keys: image_key / label_key overrides.
  bn_mode='train' refuses padded batches, whose padding would enter the batch statistics.
  """
  if kind not in KINDS:
    raise ValueError(f'kind={kind!r}; choose from {KINDS}')
  if kind == 'ggn' and loss != 'xent':
    raise ValueError(f"kind='ggn' is implemented for loss='xent', got loss={loss!r}")
  mask = batches.get(mask_key) if isinstance(batches, dict) else None
  if bn_mode == 'train' and mask is not None and not np.all(np.asarray(mask)):
    raise ValueError(f"bn_mode='train' needs full batches, but batches[{mask_key!r}] has padding")
  if kind == 'ggn':
    keys.pop('label_key', None)
    fn = make_logits_fn(model, batch_stats, bn_mode, mask_key=mask_key, **keys)
    return ggn_operator(fn, params, batches, block=block, unroll=unroll, precision=precision)
  fn = make_loss_fn(model, batch_stats, bn_mode, loss, mask_key=mask_key, **keys)
  return hessian_operator(fn, params, batches, block=block, unroll=unroll, precision=precision)


@dataclasses.dataclass(frozen=True)
class _Restricted:
  """v -> (A P^T v)[indices] for an operator of dimension `dim` (static, so shapes are known)."""

  dim: int

  def __call__(self, matvec, indices, v):
    full = jnp.zeros((self.dim,), v.dtype).at[indices].set(v)
    return matvec(full)[indices]


def restrict(op, indices):
  """The principal sub-block P A P^T of any Operator on the coordinates `indices`.

  Generic (one full product per call); for a param block of a model prefer the `block=` argument
  of the operator constructors, which differentiates only that block.
  """
  indices = np.asarray(indices)
  if indices.ndim != 1 or indices.size == 0 or indices.min() < 0 or indices.max() >= op.dim:
    raise ValueError(f'indices must be a non-empty 1-D array of positions in [0, {op.dim})')
  dim = op.dim
  matvec = Partial(_Restricted(dim), op.matvec, jnp.asarray(indices))

  def to_tree(v):
    return op.to_tree(jnp.zeros((dim,), jnp.asarray(v).dtype).at[indices].set(v))

  return Operator(matvec=matvec, dim=int(indices.size), to_tree=to_tree)


# ------------------------------------------------------------------------------ data and gradient


@functools.partial(jax.jit, static_argnames=('unroll',))
def _loss_and_grad(loss_fn, params, batches, unroll):
  dtype = ravel_pytree(params)[0].dtype

  def body(carry, batch):
    loss_sum, grad_sum, total = carry
    (value, count), g = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
    return (loss_sum + value, _tree_add(grad_sum, g), total + count.astype(dtype)), None

  init = (jnp.zeros((), dtype), jax.tree.map(jnp.zeros_like, params), jnp.zeros((), dtype))
  (loss_sum, grad_sum, total), _ = _scan(body, init, batches, unroll)
  return loss_sum / total, jax.tree.map(lambda g: g / total, grad_sum)


def dataset_loss_and_grad(loss_fn, params, batches, *, unroll=1):
  """Dataset loss and gradient over stacked batches in one jitted scan (the HVP's data path)."""
  if not isinstance(loss_fn, Partial):
    loss_fn = Partial(loss_fn)
  return _loss_and_grad(loss_fn, params, batches, unroll)


def stack_batches(arrays, batch_size, *, mask_key='mask'):
  """Splits equal-length arrays {key: [N, ...]} into batches [n_batches, batch_size, ...].

  The last batch is zero-padded and batches[mask_key] marks the real examples (1) and the
  padding (0), so the dataset loss and its curvature weight every real example once.
  """
  lengths = {k: np.shape(a)[0] for k, a in arrays.items()}
  if len(set(lengths.values())) != 1:
    raise ValueError(f'arrays must share their first dimension, got {lengths}')
  if batch_size < 1:
    raise ValueError(f'batch_size={batch_size}; must be >= 1')
  n = next(iter(lengths.values()))
  n_batches = -(-n // batch_size)
  pad = n_batches * batch_size - n

  def split(a):
    a = np.asarray(a)
    a = np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)])
    return a.reshape((n_batches, batch_size) + a.shape[1:])

  out = {k: split(a) for k, a in arrays.items()}
  out[mask_key] = split(np.ones(n, np.float32))
  return out


def shard_batches(batches, mesh, axis='data'):
  """Puts stacked batches on `mesh`, each batch split along its example axis over `axis`."""
  size = mesh.shape[axis]
  for path, leaf in jax.tree_util.tree_flatten_with_path(batches)[0]:
    if np.ndim(leaf) < 2 or np.shape(leaf)[1] % size:
      raise ValueError(
        f'batch leaf {jax.tree_util.keystr(path)} of shape {np.shape(leaf)}: the batch size '
        f'(axis 1) must be divisible by the {size} devices of mesh axis {axis!r}'
      )
  return jax.device_put(batches, NamedSharding(mesh, P(None, axis)))


def ravel(tree):
  """A pytree as one flat vector, in the order every Operator uses."""
  return ravel_pytree(tree)[0]
