"""A convolution whose CPU weight gradient is fast, for the CIFAR ResNets.

XLA:CPU computes a convolution's weight gradient as a second convolution with the batch as its
contracted feature axis, over the whole batch at once. Once its operands leave the cache that
kernel slows down about 8x: ResNet-20's 32x32x16 layer took 176 ms for a batch of 128 in one call
and 22 ms as 16 calls of 8 examples (results/foundation/bench_train_step.md). Here the weight
gradient is that same kernel summed over chunks of `WEIGHT_GRAD_CHUNK` examples: exact algebra,
the same sum grouped by example. The input and the output gradient are laid out once per layer in
the chunked layout the kernel reads ([chunk, C, H, W, example] and [chunk, H, W, example, C]), so
XLA inserts no transpose per chunk. The input gradient and the forward pass are XLA's own.

The forward pass stores that chunked copy of the input from inside a conditional: XLA:CPU drops
optimization barriers before fusion and would otherwise fuse the whole elementwise chain that made
the input (BatchNorm, ReLU, the residual sums of every earlier block) into each backward read, a
recomputation that grows with depth; a conditional's result is a buffer fusion cannot see through.

`Conv` is a drop-in for flax's `nn.Conv` without bias (same 'kernel' parameter, init and dtype
promotion, so parameter trees and initial values are unchanged). On other platforms it is exactly
`lax.conv_general_dilated` with its ordinary gradient (GPU libraries' backward is fast).
"""

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')
# A chunk's input as [C, H, W, example] and its output gradient as [H, W, example, C]: the
# weight-gradient kernel then reads both without a transpose.
CHUNK_DIMENSIONS = ('CHWN', 'HWIO', 'HWNC')
BACKWARDS = ('chunked', 'matmul')  # Conv.backward on the CPU.
WEIGHT_GRAD_CHUNK = 8  # Examples per weight-gradient call (bench/train_step.py --parts=layers).


def _conv(x, kernel, strides, padding):
  return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=DIMENSIONS)


def _chunks(a, chunk, order):
  """a [N, ...] zero-padded to whole chunks, as [N / chunk, *transpose of (chunk, ...)]."""
  pad = -a.shape[0] % chunk
  if pad:
    a = jnp.pad(a, ((0, pad),) + ((0, 0),) * (a.ndim - 1))
  a = a.reshape(a.shape[0] // chunk, chunk, *a.shape[1:])
  return a.transpose(0, *(1 + i for i in order))


def chunked_input(x, chunk):
  """x [N, H, W, C] -> [N / chunk, C, H, W, chunk] (zero examples pad the last chunk)."""
  return _chunks(x, chunk, (3, 1, 2, 0))


def chunked_grad(g, chunk):
  """g [N, H, W, C] -> [N / chunk, H, W, chunk, C]."""
  return _chunks(g, chunk, (1, 2, 0, 3))


def weight_grad_chunked(xt, gt, kernel_shape, strides, padding):
  """dL/dW from chunked_input(x) and chunked_grad(g): XLA's weight-gradient kernel per chunk,
  summed in float32."""

  def one(xs, gs):
    zeros = jnp.zeros(kernel_shape, xs.dtype)
    conv = lambda w: lax.conv_general_dilated(
      xs, w, strides, padding, dimension_numbers=CHUNK_DIMENSIONS
    )
    return jax.vjp(conv, zeros)[1](gs)[0].astype(jnp.float32)

  total = one(xt[0], gt[0])
  for i in range(1, xt.shape[0]):
    total = total + one(xt[i], gt[i])
  return total


def weight_grad(x, g, kernel_shape, strides, padding, chunk=WEIGHT_GRAD_CHUNK):
  """dL/dW of the convolution from its NHWC input x and output gradient g, chunk by chunk."""
  return weight_grad_chunked(
    chunked_input(x, chunk), chunked_grad(g, chunk), kernel_shape, strides, padding
  )


def _stored(x, kernel, layout=lambda x: x):
  """layout(x), computed once into its own buffer (module docstring). The other branch runs only
  for a NaN kernel and gives NaN, as the convolution would; two identical branches would be
  folded away."""
  k = kernel.reshape(-1)[0]
  return lax.cond(k == k, layout, lambda x: layout(x) * k.astype(x.dtype), x)


def _stored_input(x, kernel):
  """chunked_input(x) in its own buffer."""
  return _stored(x, kernel, lambda x: chunked_input(x, WEIGHT_GRAD_CHUNK))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_chunked_grad(x, kernel, strides, padding):
  """lax.conv_general_dilated (NHWC, HWIO) whose weight gradient is `weight_grad_chunked`."""
  return _conv(x, kernel, strides, padding)


def _fwd(x, kernel, strides, padding):
  xt = _stored_input(x, lax.stop_gradient(kernel))
  return _conv(x, kernel, strides, padding), (xt, kernel)


def _bwd(strides, padding, res, g):
  xt, kernel = res
  x_shape = jax.ShapeDtypeStruct((g.shape[0], *xt.shape[2:4], xt.shape[1]), xt.dtype)
  (dx,) = jax.linear_transpose(lambda x: _conv(x, kernel, strides, padding), x_shape)(g)
  gt = chunked_grad(g, WEIGHT_GRAD_CHUNK)
  dw = weight_grad_chunked(xt, gt, kernel.shape, strides, padding)
  return dx, dw.astype(kernel.dtype)


conv_chunked_grad.defvjp(_fwd, _bwd)


def conv(x, kernel, strides, padding):
  """The convolution: chunked weight gradient on CPU, XLA's own gradient elsewhere."""
  return lax.platform_dependent(
    x,
    kernel,
    cpu=functools.partial(conv_chunked_grad, strides=strides, padding=padding),
    default=functools.partial(_conv, strides=strides, padding=padding),
  )


def im2col(x, kh: int, kw: int, padding):
  """[N, Ho, Wo, kh kw C] patches of NHWC `x` for a stride-1 conv, in the (row, column, channel)
  order of an HWIO kernel's reshape to [kh kw C, O]."""
  (pt, pb), (pl, pr) = padding
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
  return jnp.concatenate(
    [xp[:, i : i + ho, j : j + wo, :] for i in range(kh) for j in range(kw)], axis=-1
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_matmul_grad(x, kernel, padding):
  """A stride-1 lax.conv (NHWC, HWIO) whose backward is two matmuls over im2col patches:
  dW = colsᵀ g and dX = col2im(g Wᵀ) (kh kw slice-adds): exact algebra, 1.4x faster than the
  chunked weight gradient on airbench's shapes on a 2-core AVX2 CPU (../shared/notes/cpu-conv.md
  measured the same kind of gain)."""
  return _conv(x, kernel, (1, 1), padding)


def _matmul_fwd(x, kernel, padding):
  # x in its own buffer, so the backward's patch reads recompute nothing.
  return _conv(x, kernel, (1, 1), padding), (_stored(x, lax.stop_gradient(kernel)), kernel)


def _matmul_bwd(padding, res, g):
  x, kernel = res
  kh, kw, cin, cout = kernel.shape
  n, h, w, _ = x.shape
  g2 = g.reshape(-1, cout)
  cols = im2col(x, kh, kw, padding).reshape(-1, kh * kw * cin)
  dw = (cols.T @ g2).reshape(kernel.shape)
  dcols = (g2 @ kernel.reshape(-1, cout).T).reshape(*g.shape[:3], kh * kw, cin)
  (pt, pb), (pl, pr) = padding
  dxp = jnp.zeros((n, h + pt + pb, w + pl + pr, cin), g.dtype)
  ho, wo = g.shape[1:3]
  for i in range(kh):
    for j in range(kw):
      dxp = dxp.at[:, i : i + ho, j : j + wo, :].add(dcols[:, :, :, i * kw + j, :])
  return dxp[:, pt : pt + h, pl : pl + w, :].astype(x.dtype), dw.astype(kernel.dtype)


conv_matmul_grad.defvjp(_matmul_fwd, _matmul_bwd)


def conv_matmul(x, kernel, padding):
  """The stride-1 convolution: im2col-matmul backward on CPU, XLA's own gradient elsewhere."""
  return lax.platform_dependent(
    x,
    kernel,
    cpu=functools.partial(conv_matmul_grad, padding=padding),
    default=functools.partial(_conv, strides=(1, 1), padding=padding),
  )


class Conv(nn.Module):
  """nn.Conv without bias for NHWC inputs, explicit padding and the CPU-fast gradient above."""

  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 1)
  padding: Sequence[tuple[int, int]] = ((1, 1), (1, 1))
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  backward: str = 'chunked'  # CPU backward: 'chunked' weight gradient | 'matmul' (stride 1).

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (*self.kernel_size, x.shape[-1], self.features)
    kernel = self.param('kernel', self.kernel_init, shape, self.param_dtype)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    strides = tuple(int(s) for s in self.strides)
    padding = tuple((int(lo), int(hi)) for lo, hi in self.padding)
    if self.backward == 'matmul' and strides == (1, 1):
      return conv_matmul(x, kernel, padding)
    return conv(x, kernel, strides, padding)
