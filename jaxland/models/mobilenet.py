"""MobileNetV2 for 32x32 images, as kuangliu/pytorch-cifar's models/mobilenetv2.py.

Sandler et al. 2018 with that repository's CIFAR changes: a stride-1 stem conv (3x3, 32 channels),
stride 1 instead of 2 in the second stage, and global average pooling over the final 4x4 map. Each
block is 1x1 expand (always present, also for expansion 1) -> BN -> ReLU -> 3x3 depthwise (stride s)
-> BN -> ReLU -> 1x1 project -> BN; stride-1 blocks add a shortcut (identity, or 1x1 conv + BN when
the channel count changes), stride-2 blocks have none. ReLU, not ReLU6, as in the reference.
Then 1x1 conv to 1280 -> BN -> ReLU -> pool -> Dense. 2,296,922 parameters with 10 classes.
`width_mult` scales every channel count (rounded to multiples of 8, as in the paper's code) and
`cfg` sets the stages, for small test variants. Init: PyTorch's default, as the reference.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxland.models.mlp import batch_norm, check_bn_momentum, torch_default_kernel_init, torch_dense

# (expansion, out_channels, num_blocks, stride) per stage: kuangliu's CIFAR configuration.
CIFAR_CFG = (
  (1, 16, 1, 1),
  (6, 24, 2, 1),  # stride 2 -> 1 for CIFAR.
  (6, 32, 3, 2),
  (6, 64, 4, 2),
  (6, 96, 3, 1),
  (6, 160, 3, 2),
  (6, 320, 1, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def make_divisible(value: float, divisor: int = 8) -> int:
  """Rounds a scaled channel count to a multiple of `divisor`, losing at most 10% (as MobileNet)."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * value else rounded


def conv(features: int, kernel: int, stride: int, dtype: Any, groups: int = 1) -> nn.Conv:
  """Bias-free conv with PyTorch padding (kernel // 2) and PyTorch default init."""
  pad = kernel // 2
  return nn.Conv(
    features,
    (kernel, kernel),
    strides=(stride, stride),
    padding=((pad, pad), (pad, pad)),
    feature_group_count=groups,
    use_bias=False,
    dtype=dtype,
    kernel_init=torch_default_kernel_init,
  )


class InvertedResidual(nn.Module):
  """Expand (1x1) -> depthwise (3x3) -> project (1x1), each with BN; shortcut when stride is 1."""

  features: int
  expansion: int
  stride: int
  bn_momentum: float
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    bn = lambda y: batch_norm(y, train, self.bn_momentum, self.dtype)
    hidden = self.expansion * x.shape[-1]
    y = nn.relu(bn(conv(hidden, 1, 1, self.dtype)(x)))
    y = nn.relu(bn(conv(hidden, 3, self.stride, self.dtype, groups=hidden)(y)))
    y = bn(conv(self.features, 1, 1, self.dtype)(y))
    if self.stride != 1:
      return y
    if x.shape[-1] != self.features:
      x = bn(conv(self.features, 1, 1, self.dtype)(x))
    return y + x


class MobileNetV2(nn.Module):
  """kuangliu's CIFAR MobileNetV2; `cfg` rows are (expansion, channels, blocks, stride)."""

  width_mult: float = 1.0
  cfg: Sequence[Sequence[int]] = CIFAR_CFG
  bn_momentum: float = 0.9
  num_classes: int = 10
  dtype: Any = jnp.float32

  def __post_init__(self):
    if self.width_mult <= 0:
      raise ValueError(f'width_mult must be > 0, got {self.width_mult!r}')
    if not self.cfg or any(len(row) != 4 or min(row) < 1 for row in self.cfg):
      raise ValueError(
        'cfg must be rows of 4 positive ints (expansion, channels, blocks, stride), '
        f'got {self.cfg!r}'
      )
    check_bn_momentum(self.bn_momentum)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    bn = lambda y: batch_norm(y, train, self.bn_momentum, self.dtype)
    scale = lambda c: make_divisible(c * self.width_mult)
    x = nn.relu(bn(conv(scale(STEM_CHANNELS), 3, 1, self.dtype)(x)))
    for expansion, channels, num_blocks, stride in self.cfg:
      for block in range(num_blocks):
        x = InvertedResidual(
          scale(channels), expansion, stride if block == 0 else 1, self.bn_momentum, self.dtype
        )(x, train)
    x = nn.relu(bn(conv(scale(HEAD_CHANNELS), 1, 1, self.dtype)(x)))
    x = jnp.mean(x, axis=(1, 2))
    return torch_dense(x, self.num_classes, jnp.float32)
