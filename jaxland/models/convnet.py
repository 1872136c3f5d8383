"""Seed 003's small ConvNets (ConvNet_2, ConvNet_3, ConvNet_5 and ConvNet_5_bn) as one module.

Each conv layer is Conv(k x k, with bias) -> (BatchNorm) -> activation -> 2x2 max pool -> channel
dropout (PyTorch Dropout2d: whole feature maps, one draw per example and channel); then flatten ->
[Dense -> (BatchNorm) -> activation -> dropout] for each hidden size (120, 84) -> Dense.

Seed 003 pads its 5x5 convs by 0 in ConvNet_2 and by 3 in ConvNet_3/5 (each conv then grows the map
by 2 before the pool halves it); padding=-1 picks exactly that. Flatten sizes follow from the input,
so 28x28x1 and 32x32x3 both work: e.g. 32 -> 34,17 -> 19,9 -> 11,5 -> 7,3 -> 5,2 for five layers.
A pool whose window no longer fits the map (height or width below pool_size) is skipped rather than
producing an empty map; a conv whose kernel no longer fits raises ValueError naming the layer.
The seed used one rate for both dropouts; here `dropout` (dense layers) and `dropout2d` (conv
layers) are separate. Its hyper-parameter grid used filters 32..256 and hidden sizes (128, 64).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxland.models.mlp import (
  Dropout,
  activation_fn,
  batch_norm,
  check_bn_momentum,
  check_rate,
  torch_default_bias_init,
  torch_default_kernel_init,
  torch_dense,
)


def _conv_out(size: int, kernel: int, padding: int) -> int:
  """Spatial size after a stride-1 convolution (PyTorch's formula)."""
  return size + 2 * padding - kernel + 1


class ConvNet(nn.Module):
  """Seed 003's ConvNet_{num_conv_layers}; `filters` is one int for all layers or one per layer."""

  num_conv_layers: int = 2
  filters: int | Sequence[int] = 32
  kernel_size: int = 5
  pool_size: int = 2
  padding: int = -1  # -1: the seed's choice, 0 for two conv layers and 3 for more.
  hidden_sizes: Sequence[int] = (120, 84)
  activation: str = 'relu'
  dropout: float = 0.0
  dropout2d: float = 0.0
  batch_norm: bool = False
  bn_momentum: float = 0.9
  num_classes: int = 10
  dtype: Any = jnp.float32

  def __post_init__(self):
    if self.num_conv_layers < 1:
      raise ValueError(f'num_conv_layers must be >= 1, got {self.num_conv_layers!r}')
    self.conv_filters()
    activation_fn(self.activation)
    check_rate('dropout', self.dropout)
    check_rate('dropout2d', self.dropout2d)
    check_bn_momentum(self.bn_momentum)
    if self.padding < -1:
      raise ValueError(f'padding must be >= 0, or -1 for the seed default; got {self.padding!r}')
    super().__post_init__()

  def conv_filters(self) -> tuple[int, ...]:
    """Output channels of each conv layer."""
    if isinstance(self.filters, int):
      return (self.filters,) * self.num_conv_layers
    filters = tuple(int(f) for f in self.filters)
    if len(filters) != self.num_conv_layers:
      raise ValueError(
        f'filters has {len(filters)} entries but num_conv_layers is {self.num_conv_layers}; '
        'give one int or one per layer'
      )
    return filters

  def conv_padding(self) -> int:
    """Zero padding of every conv layer."""
    if self.padding >= 0:
      return self.padding
    return 0 if self.num_conv_layers == 2 else 3

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    act = activation_fn(self.activation)
    pad, k = self.conv_padding(), self.kernel_size
    for i, features in enumerate(self.conv_filters()):
      height, width = x.shape[1:3]
      if min(_conv_out(height, k, pad), _conv_out(width, k, pad)) < 1:
        raise ValueError(
          f'conv layer {i + 1} of {self.num_conv_layers}: a {k}x{k} kernel with padding {pad} '
          f'does not fit the {height}x{width} map; use fewer layers or more padding'
        )
      x = nn.Conv(
        features,
        (k, k),
        padding=((pad, pad), (pad, pad)),
        dtype=self.dtype,
        kernel_init=torch_default_kernel_init,
        bias_init=torch_default_bias_init(k * k * x.shape[-1]),
      )(x)
      if self.batch_norm:
        x = batch_norm(x, train, self.bn_momentum, self.dtype)
      x = act(x)
      if min(x.shape[1:3]) >= self.pool_size:
        window = (self.pool_size, self.pool_size)
        x = nn.max_pool(x, window, strides=window)  # Floors odd sizes, as PyTorch's MaxPool2d.
      x = Dropout(self.dropout2d, broadcast_dims=(1, 2), deterministic=not train)(x)
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden_sizes:
      x = torch_dense(x, int(width), self.dtype)
      if self.batch_norm:
        x = batch_norm(x, train, self.bn_momentum, self.dtype)
      x = act(x)
      x = Dropout(self.dropout, deterministic=not train)(x)
    return torch_dense(x, self.num_classes, jnp.float32)
