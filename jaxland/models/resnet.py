"""Residual networks for 32x32 images: He et al.'s CIFAR ResNets and the kuangliu ResNet-18/34.

`CifarResNet` (resnet20/32/44/56/110, and resnet8 as the tiny test variant) is He et al. 2016,
section 4.2: a 3x3 conv with 16 channels, three stages of n BasicBlocks with 16/32/64 channels (the
first block of stages 2 and 3 has stride 2), global average pooling and a Dense layer; depth = 6n+2.
Shortcuts are option A, parameter-free: the input subsampled by 2 and zero-padded in channels, which
gives the published sizes (ResNet-20 0.27M, -32 0.46M, -56 0.85M, -110 1.7M). Init follows
akamaster/pytorch_resnet_cifar10: kaiming_normal (fan_in) for convs and the Dense kernel.

`ResNet` (resnet18/34) is kuangliu/pytorch-cifar's CIFAR variant (also SLS's ResNet-34): a 3x3
stride-1 stem with 64 channels and no max-pool, four stages of BasicBlocks with 64/128/256/512
channels, projection shortcuts (1x1 conv + BatchNorm) where the shape changes. Init is PyTorch's
default (U(+-1/sqrt(fan_in))), as in that repository. Both nets: convs without bias, BatchNorm after
every conv, ReLU after the residual sum.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxland.models.layers import Conv
from jaxland.models.mlp import (
  batch_norm,
  check_bn_momentum,
  kaiming_normal_init,
  torch_default_kernel_init,
  torch_dense,
)


def conv3x3(features: int, stride: int, dtype: Any, kernel_init, name=None) -> Conv:
  """3x3 conv with PyTorch's padding of 1 (so stride 2 maps 32 -> 16 and 7 -> 4) and no bias;
  nn.Conv's parameters, with a weight gradient that is fast on CPU (jaxland.models.layers)."""
  return Conv(
    features,
    (3, 3),
    strides=(stride, stride),
    padding=((1, 1), (1, 1)),
    dtype=dtype,
    kernel_init=kernel_init,
    name=name,
  )


def shortcut_a(x: jax.Array, features: int, stride: int) -> jax.Array:
  """Option A shortcut: subsample by `stride`, zero-pad channels (half each side) to `features`."""
  x = x[:, ::stride, ::stride, :]
  extra = features - x.shape[-1]
  return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class BasicBlock(nn.Module):
  """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, then ReLU."""

  features: int
  stride: int
  shortcut: str  # 'A': zero-padding identity; 'B': 1x1 conv + BN projection where shapes change.
  kernel_init: Any
  bn_momentum: float
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    bn = lambda y: batch_norm(y, train, self.bn_momentum, self.dtype)
    y = conv3x3(self.features, self.stride, self.dtype, self.kernel_init)(x)
    y = nn.relu(bn(y))
    y = bn(conv3x3(self.features, 1, self.dtype, self.kernel_init)(y))
    if self.stride != 1 or x.shape[-1] != self.features:
      if self.shortcut == 'A':
        x = shortcut_a(x, self.features, self.stride)
      else:
        x = nn.Conv(
          self.features,
          (1, 1),
          strides=(self.stride, self.stride),
          use_bias=False,
          dtype=self.dtype,
          kernel_init=self.kernel_init,
        )(x)
        x = bn(x)
    return nn.relu(y + x)


def _resnet_body(module, x, train, stage_sizes, widths, shortcut, kernel_init):
  """Stem conv + BN + ReLU, the stages of BasicBlocks, global average pooling."""
  x = conv3x3(widths[0], 1, module.dtype, kernel_init)(x)
  x = nn.relu(batch_norm(x, train, module.bn_momentum, module.dtype))
  for stage, (num_blocks, features) in enumerate(zip(stage_sizes, widths, strict=True)):
    for block in range(num_blocks):
      stride = 2 if stage > 0 and block == 0 else 1
      x = BasicBlock(features, stride, shortcut, kernel_init, module.bn_momentum, module.dtype)(
        x, train
      )
  return jnp.mean(x, axis=(1, 2))


class CifarResNet(nn.Module):
  """He et al.'s CIFAR ResNet of `depth` = 6n + 2 layers; `width` is the first stage's channels."""

  depth: int = 20
  width: int = 16
  bn_momentum: float = 0.9
  num_classes: int = 10
  dtype: Any = jnp.float32

  def __post_init__(self):
    if self.depth < 8 or (self.depth - 2) % 6:
      raise ValueError(f'depth must be 6n+2 with n >= 1 (8, 20, 32, 44, 56, 110), got {self.depth}')
    if self.width < 1:
      raise ValueError(f'width must be >= 1, got {self.width}')
    check_bn_momentum(self.bn_momentum)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    n = (self.depth - 2) // 6
    widths = (self.width, 2 * self.width, 4 * self.width)
    x = _resnet_body(self, x, train, (n, n, n), widths, 'A', kaiming_normal_init)
    return torch_dense(x, self.num_classes, jnp.float32, kernel_init=kaiming_normal_init)


class ResNet(nn.Module):
  """kuangliu's CIFAR ResNet: `stage_sizes` BasicBlocks per stage, width * (1, 2, 4, 8) channels."""

  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64
  bn_momentum: float = 0.9
  num_classes: int = 10
  dtype: Any = jnp.float32

  def __post_init__(self):
    if len(self.stage_sizes) != 4 or any(int(s) < 1 for s in self.stage_sizes):
      raise ValueError(f'stage_sizes must be 4 positive block counts, got {self.stage_sizes!r}')
    if self.width < 1:
      raise ValueError(f'width must be >= 1, got {self.width}')
    check_bn_momentum(self.bn_momentum)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    widths = tuple(self.width * m for m in (1, 2, 4, 8))
    x = _resnet_body(self, x, train, self.stage_sizes, widths, 'B', torch_default_kernel_init)
    return torch_dense(x, self.num_classes, jnp.float32)
