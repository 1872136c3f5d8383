"""jaxland: a JAX/Flax workspace for the science of neural-network optimization."""

__version__ = '0.1.0'

from jaxland import runtime as _runtime  # noqa: E402

_runtime.clu_without_tensorflow()  # Before anything imports clu.metric_writers (TensorFlow).
