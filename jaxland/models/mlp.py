"""Multi-layer perceptron, plus the layer helpers every jaxland model shares.

The seeds' MLPs are configs of `MLP`: the SLS MNIST MLP is hidden_sizes=(512, 256), seed 003's
2/3/4/6-layer MLPs are 1/2/3/5 equal hidden sizes of 32..256, and its `MLPNet_4_layer_bn` is
batch_norm=True. Initialization follows PyTorch's `nn.Linear` default, U(-1/sqrt(fan_in),
1/sqrt(fan_in)) for weights and biases, because the seeds were trained from it.

Shared conventions (all models): `__call__(x, train)`; dropout draws from the 'dropout' rng only
when `train` is true; BatchNorm keeps running statistics in 'batch_stats'. `bn_momentum` is flax's
decay of the running average: PyTorch momentum 0.1 == flax 0.9. (Flax averages the biased batch
variance, PyTorch the unbiased one: an n/(n-1) difference in the running variance only.) `dtype` is
the compute dtype; params stay float32 and the classifier head computes in float32 (float32 logits).
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
  'relu': nn.relu,
  'relu6': nn.relu6,
  'leaky_relu': nn.leaky_relu,  # slope 0.01, as PyTorch's default.
  'elu': nn.elu,
  'selu': nn.selu,
  'gelu': functools.partial(nn.gelu, approximate=False),  # PyTorch's default (exact erf form).
  'silu': nn.silu,
  'softplus': nn.softplus,
  'tanh': jnp.tanh,
  'sigmoid': nn.sigmoid,
  'identity': lambda x: x,
}

BN_EPSILON = 1e-5  # PyTorch's and flax's default.

# PyTorch's default Linear/Conv weight init, kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)):
# a uniform law of variance 1/(3 fan_in).
torch_default_kernel_init = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')

# torch.nn.init.kaiming_normal_ defaults (fan_in, gain sqrt(2), untruncated normal).
kaiming_normal_init = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


def torch_default_bias_init(fan_in: int) -> nn.initializers.Initializer:
  """PyTorch's default bias init for a layer with `fan_in` inputs: U(+-1/sqrt(fan_in))."""
  bound = 1.0 / fan_in**0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
  """The activation called `name`; ValueError listing the known names otherwise."""
  if name not in ACTIVATIONS:
    raise ValueError(f'Unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}')
  return ACTIVATIONS[name]


def check_rate(key: str, rate) -> None:
  """Raises ValueError unless the dropout rate `rate` lies in [0, 1) (a traced rate, a population
  member's, was checked as a number in its config)."""
  if isinstance(rate, (int, float)) and not 0.0 <= rate < 1.0:
    raise ValueError(f'{key} must be in [0, 1), got {rate!r}')


def check_bn_momentum(momentum: float) -> None:
  """Raises ValueError unless the flax BatchNorm decay lies in [0, 1]."""
  if not 0.0 <= momentum <= 1.0:
    raise ValueError(
      f'bn_momentum must be in [0, 1] (flax decay; PyTorch momentum 0.1 == 0.9), got {momentum!r}'
    )


def torch_dense(
  x: jax.Array, features: int, dtype: Any, name: str | None = None, **kw
) -> jax.Array:
  """nn.Dense on `x` with PyTorch's default weight and bias init; call inside a compact method."""
  kw.setdefault('kernel_init', torch_default_kernel_init)
  dense = nn.Dense(
    features, dtype=dtype, bias_init=torch_default_bias_init(x.shape[-1]), name=name, **kw
  )
  return dense(x)


class Dropout(nn.Module):
  """flax's nn.Dropout (same 'dropout' rng, mask and 1/keep scaling, bit for bit at a python
  rate) whose rate may also be a traced value: populations vmap one model over members' rates.
  A traced rate always draws its mask (rate 0 keeps every unit and divides by exactly 1)."""

  rate: Any
  broadcast_dims: Sequence[int] = ()
  deterministic: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    static = isinstance(self.rate, (int, float))
    if self.deterministic or (static and self.rate == 0.0):
      return x
    keep = 1.0 - self.rate
    shape = list(x.shape)
    for dim in self.broadcast_dims:
      shape[dim] = 1
    mask = jax.random.bernoulli(self.make_rng('dropout'), p=keep, shape=shape)
    mask = jnp.broadcast_to(mask, x.shape)
    return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


def batch_norm(x: jax.Array, train: bool, momentum: float, dtype: Any, name=None) -> jax.Array:
  """BatchNorm over all but the last axis: batch statistics when training, else running ones."""
  return nn.BatchNorm(
    use_running_average=not train, momentum=momentum, epsilon=BN_EPSILON, dtype=dtype, name=name
  )(x)


class MLP(nn.Module):
  """Flatten -> [Dense -> (BatchNorm) -> activation -> dropout] per hidden size -> Dense."""

  hidden_sizes: Sequence[int] = (100,)
  activation: str = 'relu'
  dropout: float = 0.0
  batch_norm: bool = False
  bn_momentum: float = 0.9
  num_classes: int = 10
  dtype: Any = jnp.float32

  def __post_init__(self):
    activation_fn(self.activation)
    check_rate('dropout', self.dropout)
    check_bn_momentum(self.bn_momentum)
    if any(int(h) < 1 for h in self.hidden_sizes):
      raise ValueError(f'hidden_sizes must be positive integers, got {self.hidden_sizes!r}')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    act = activation_fn(self.activation)
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden_sizes:
      x = torch_dense(x, int(width), self.dtype)
      if self.batch_norm:
        x = batch_norm(x, train, self.bn_momentum, self.dtype)
      x = act(x)
      x = Dropout(self.dropout, deterministic=not train)(x)
    return torch_dense(x, self.num_classes, jnp.float32)
