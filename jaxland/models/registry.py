"""Model registry: a name from config.model.name -> a configured flax.linen Module.

`get_model(**config.model)` is how runs, config validation and tests build models. Every model
accepts num_classes (default 10), dtype ('float32' | 'bfloat16' or a jnp dtype: the compute dtype;
params stay float32, logits are float32) and bn_momentum (flax decay, default 0.9 == PyTorch
momentum 0.1). Other keyword arguments are the module's fields; an unknown one is a ValueError
naming the allowed ones, raised before anything compiles, as are bad values (checked by each
module's __post_init__).
"""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxland import runtime
from jaxland.models.airbench import Airbench
from jaxland.models.convnet import ConvNet
from jaxland.models.mlp import MLP
from jaxland.models.mobilenet import MobileNetV2
from jaxland.models.resnet import CifarResNet, ResNet

_TINY_MOBILENET_CFG = tuple((e, c, 1, s) for e, c, _, s in MobileNetV2.cfg)

MODELS = {
  'mlp': MLP,
  'convnet': ConvNet,
  'resnet8': functools.partial(CifarResNet, depth=8),  # Tiny test variant (75k params).
  'resnet20': functools.partial(CifarResNet, depth=20),
  'resnet32': functools.partial(CifarResNet, depth=32),
  'resnet44': functools.partial(CifarResNet, depth=44),
  'resnet56': functools.partial(CifarResNet, depth=56),
  'resnet110': functools.partial(CifarResNet, depth=110),
  'resnet18': functools.partial(ResNet, stage_sizes=(2, 2, 2, 2)),
  'resnet34': functools.partial(ResNet, stage_sizes=(3, 4, 6, 3)),
  'mobilenetv2': MobileNetV2,
  # Tiny test variant: one block per stage, a quarter of the channels.
  'mobilenetv2_tiny': functools.partial(MobileNetV2, width_mult=0.25, cfg=_TINY_MOBILENET_CFG),
  'airbench': Airbench,  # The fast CIFAR-10 network (configs/cifar_fast.py); widths are fields.
  'airbench_tiny': functools.partial(Airbench, widths=(8, 16, 16), whiten_images=256),
}

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def model_names() -> list[str]:
  """The registered model names, sorted."""
  return sorted(MODELS)


def allowed_kwargs(name: str) -> list[str]:
  """The keyword arguments `get_model(name, ...)` accepts, sorted."""
  factory = _factory(name)
  cls, fixed = factory, {}
  if isinstance(factory, functools.partial):
    cls, fixed = factory.func, factory.keywords
  fields = {f.name for f in dataclasses.fields(cls) if f.init}
  return sorted(fields - {'parent', 'name'} - set(fixed))


def canonical_dtype(dtype: Any) -> Any:
  """'float32' | 'bfloat16' (or the jnp dtype) -> the jnp scalar type; ValueError otherwise."""
  if isinstance(dtype, str):
    if dtype not in DTYPES:
      raise ValueError(f'Unknown dtype {dtype!r}; choose from {sorted(DTYPES)}')
    return DTYPES[dtype]
  for allowed in DTYPES.values():
    if jnp.dtype(dtype) == jnp.dtype(allowed):
      return allowed
  raise ValueError(f'Unsupported dtype {dtype!r}; choose from {sorted(DTYPES)}')


def _as_tuples(value: Any) -> Any:
  """Lists (as configs may give them) -> tuples, recursively, so module fields are hashable."""
  if isinstance(value, list | tuple):
    return tuple(_as_tuples(v) for v in value)
  return value


def _factory(name: str):
  if name not in MODELS:
    raise ValueError(f'Unknown model {name!r}; choose from {sorted(MODELS)}')
  return MODELS[name]


def get_model(name: str, **kwargs) -> nn.Module:
  """The model registered as `name`, built with `kwargs` (its fields); see the module docstring."""
  factory = _factory(name)
  allowed = allowed_kwargs(name)
  unknown = sorted(set(kwargs) - set(allowed))
  if unknown:
    raise ValueError(f'Unknown argument(s) {unknown} for model {name!r}; allowed: {allowed}')
  kwargs = {k: _as_tuples(v) for k, v in kwargs.items()}
  if 'dtype' in kwargs:
    kwargs['dtype'] = canonical_dtype(kwargs['dtype'])
  return factory(**kwargs)


def from_config(model_config, num_classes: int) -> nn.Module:
  """The model of a config.model section (num_classes from the data unless the section sets it)."""
  kwargs = model_config.to_dict() if hasattr(model_config, 'to_dict') else dict(model_config)
  kwargs.setdefault('num_classes', num_classes)
  return get_model(**kwargs)


def init_variables(model: nn.Module, input_shape, seed: int, train_data=None):
  """Initial (params, batch_stats) of `model` for inputs of `input_shape` (no batch axis).

  A model with a `data_init(params, images, mean, std)` method (airbench's whitening conv) also
  needs `train_data`: (uint8 training images, mean, std) of the dataset it will train on.
  """
  x = jnp.zeros((1, *input_shape), jnp.float32)
  init = lambda k: model.init({'params': k}, x, train=False)  # noqa: E731
  variables = runtime.run_once(init, jax.random.PRNGKey(seed))
  params = variables['params']
  if hasattr(model, 'data_init'):
    if train_data is None:
      raise ValueError(f'{type(model).__name__} initializes from training images: pass train_data')
    params = model.data_init(params, *train_data)
  return params, variables.get('batch_stats', {})
