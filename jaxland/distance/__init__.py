"""Seed 002 / 000: repulsion from anchors during training, snapshots and snapshot ensembles.

This line owns config.repulsion (its defaults and checks); the optax transform itself is core
(jaxland.optim.repulsion). WORKSPACE.md lists its experiments and logged metrics.
"""

from jaxland.distance.settings import defaults, validate_section

__all__ = ['defaults', 'validate_section']
