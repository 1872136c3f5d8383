"""jaxland: a JAX/Flax workspace for the science of neural-network optimization."""

__version__ = '0.1.0'
