"""The airbench CIFAR-10 network (Jordan 2024, arXiv 2404.00498), written for jaxland from the
paper's and the airbench94 script's description.

  whiten: k x k conv (k=2, no padding), 2 * 3 * k * k filters with bias, its kernel set from the
          training images' patch covariance (`data_init`) and frozen (the optimizer's optim.freeze)
  GELU
  3 groups, widths (64, 256, 256): conv 3x3 -> 2x2 max pool -> BatchNorm -> GELU
                                   -> conv 3x3 -> BatchNorm -> GELU
  3x3 max pool -> flatten -> linear (no bias) -> x head_scale (1/9; airbench94_muon: 1/width,
  with the head's init rescaled to std 1)

Convs (layers.Conv: XLA's conv, with a chunked weight gradient on the CPU) have no bias and start
as the identity on their first `in` filters (PyTorch's dirac_ on w[:in]; the rest keep PyTorch's
default init), an implicit residual. BatchNorm has no scale, a
bias, epsilon 1e-12 and flax momentum 0.6 (airbench's BatchNorm(momentum=0.6) is PyTorch momentum
0.4: running = 0.6 running + 0.4 batch). GELU is the exact (erf) form, as nn.GELU.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxland.models import layers
from jaxland.models.mlp import check_bn_momentum, torch_default_kernel_init


def gelu(x):
  return nn.gelu(x, approximate=False)


def dirac_conv_init(key, shape, dtype=jnp.float32):
  """PyTorch's default conv init, with filter o < in_channels replaced by the identity on channel
  o (torch.nn.init.dirac_ on w[:in]): kernel [k, k, in, out]."""
  k, _, cin, cout = shape
  w = torch_default_kernel_init(key, shape, dtype)
  n = min(cin, cout)
  identity = (
    jnp.zeros((k, k, cin, n), dtype).at[k // 2, k // 2, jnp.arange(n), jnp.arange(n)].set(1)
  )
  return w.at[..., :n].set(identity)


def unit_std(init):
  """`init` rescaled so that the whole drawn array has standard deviation 1."""

  def rescaled(key, shape, dtype=jnp.float32):
    w = init(key, shape, dtype)
    return w / jnp.std(w)

  return rescaled


def max_pool(x, k: int):
  """k x k max pool with stride k, flooring odd sizes (PyTorch's MaxPool2d(k)), as a reshape and
  a max: its gradient is one mask, where XLA:CPU's reduce-window gradient is a slow
  select-and-scatter."""
  n, h, w, c = x.shape
  x = x[:, : h // k * k, : w // k * k]
  return x.reshape(n, h // k, k, w // k, k, c).max(axis=(2, 4))


class _Whiten(nn.Module):
  """The k x k VALID conv with bias; without `trainable` its kernel gets no gradient at all (so no
  weight-gradient convolution is computed for it; optim.freeze keeps weight decay off it)."""

  features: int
  k: int
  trainable: bool
  dtype: Any

  @nn.compact
  def __call__(self, x):
    shape = (self.k, self.k, x.shape[-1], self.features)
    kernel = self.param('kernel', torch_default_kernel_init, shape)
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    if not self.trainable:
      kernel = jax.lax.stop_gradient(kernel)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = jax.lax.conv_general_dilated(
      x, kernel, (1, 1), 'VALID', dimension_numbers=layers.DIMENSIONS
    )
    return y + bias


def patches(images: np.ndarray, k: int) -> np.ndarray:
  """Every k x k patch (stride 1, no padding) of [N, H, W, C] images, flattened to [M, k*k*C] in
  (row, column, channel) order, the order of a flax kernel's [k, k, C] axes."""
  n, h, w, c = images.shape
  rows = [images[:, i : h - k + 1 + i, j : w - k + 1 + j, :] for i in range(k) for j in range(k)]
  return np.stack(rows, axis=3).reshape(-1, k * k * c)


def whitening_kernel(images: np.ndarray, k: int, eps: float = 5e-4) -> np.ndarray:
  """[k, k, C, 2 k k C] kernel whose filters are the patch covariance's eigenvectors scaled by
  1/sqrt(eigenvalue + eps), largest eigenvalue first, then the same filters negated (so a GELU
  after them keeps both signs). The covariance is uncentred (E[p p^T]), as airbench's."""
  p = patches(np.asarray(images, np.float64), k)
  cov = p.T @ p / len(p)
  eigenvalues, eigenvectors = np.linalg.eigh(cov)
  order = np.argsort(eigenvalues)[::-1]
  scaled = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + eps)  # Columns are filters.
  c = images.shape[-1]
  kernel = np.concatenate([scaled, -scaled], axis=1).reshape(k, k, c, 2 * k * k * c)
  return kernel.astype(np.float32)


class Airbench(nn.Module):
  """airbench94's network; `widths` per conv group, `whiten_kernel` the first conv's size."""

  widths: Sequence[int] = (64, 256, 256)
  whiten_kernel: int = 2
  whiten_images: int = 5000  # Training images whose patches set the whitening kernel.
  whiten_from_data: bool = True  # False: the first conv keeps PyTorch's default init (ablation).
  train_whiten: bool = False  # airbench keeps the whitening kernel fixed.
  conv_backward: str = 'chunked'  # On the CPU: layers.Conv's 'chunked' or 'matmul' backward.
  head_scale: float = 1 / 9
  head_unit_std: bool = False  # airbench94_muon: the head's init rescaled to std 1 (w / w.std()).
  bn_momentum: float = 0.6
  num_classes: int = 10
  dtype: Any = jnp.float32

  def __post_init__(self):
    if len(self.widths) < 1 or any(int(w) < 1 for w in self.widths):
      raise ValueError(f'widths must be positive ints, one per conv group; got {self.widths!r}')
    if self.whiten_kernel < 1 or self.whiten_images < 1:
      raise ValueError(
        f'whiten_kernel ({self.whiten_kernel!r}) and whiten_images ({self.whiten_images!r}) '
        'must be >= 1'
      )
    check_bn_momentum(self.bn_momentum)
    if self.conv_backward not in layers.BACKWARDS:
      raise ValueError(
        f'conv_backward must be one of {layers.BACKWARDS}; got {self.conv_backward!r}'
      )
    super().__post_init__()

  def _norm(self, x, train, name):
    return nn.BatchNorm(
      use_running_average=not train,
      momentum=self.bn_momentum,
      epsilon=1e-12,
      use_scale=False,
      dtype=self.dtype,
      name=name,
    )(x)

  def _conv(self, x, features, name):
    return layers.Conv(
      int(features), dtype=self.dtype, kernel_init=dirac_conv_init,
      backward=self.conv_backward, name=name,
    )(x)  # fmt: skip

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    k, c = self.whiten_kernel, x.shape[-1]
    x = _Whiten(2 * k * k * c, k, self.train_whiten, self.dtype, name='whiten')(x)
    x = gelu(x)
    for i, width in enumerate(self.widths):
      x = self._conv(x, width, f'group{i}_conv1')
      x = max_pool(x, 2)
      x = gelu(self._norm(x, train, f'group{i}_norm1'))
      x = self._conv(x, width, f'group{i}_conv2')
      x = gelu(self._norm(x, train, f'group{i}_norm2'))
    x = max_pool(x, min(3, *x.shape[1:3]))
    x = x.reshape((x.shape[0], -1))
    init = unit_std(torch_default_kernel_init) if self.head_unit_std else torch_default_kernel_init
    x = nn.Dense(self.num_classes, use_bias=False, kernel_init=init, name='head')(
      x.astype(jnp.float32)
    )
    return x * self.head_scale

  def data_init(self, params, images: np.ndarray, mean, std):
    """params with the whitening kernel set from the first `whiten_images` training images
    (uint8 [N, H, W, C], normalized with the dataset's mean and std as the steps do); unchanged
    without `whiten_from_data`."""
    if not self.whiten_from_data:
      return params
    x = np.asarray(images[: self.whiten_images], np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    kernel = whitening_kernel(x, self.whiten_kernel)
    whiten = dict(params['whiten'], kernel=jnp.asarray(kernel))
    return dict(params, whiten=whiten)
