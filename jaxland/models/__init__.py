"""The model zoo: MLP, seed ConvNets, CIFAR ResNets and MobileNetV2, built by name."""

from jaxland.models.registry import (
  MODELS,
  allowed_kwargs,
  from_config,
  get_model,
  init_variables,
  model_names,
)

__all__ = ['MODELS', 'allowed_kwargs', 'from_config', 'get_model', 'init_variables', 'model_names']
