"""Optimizers from config: schedules, the optax chain, and the repulsion transform."""

from jaxland.optim.build import current_hparams, make_optimizer, set_hparam, uses_repulsion
from jaxland.optim.repulsion import (
  active_anchor_metrics,
  add_anchor,
  anchor_metrics,
  clear_anchors,
  get_anchors,
  kernel_mask,
  repulsion,
  repulsion_state,
  set_kernel,
)
from jaxland.optim.schedules import SCHEDULES, make_schedules

__all__ = [
  'SCHEDULES',
  'active_anchor_metrics',
  'add_anchor',
  'anchor_metrics',
  'clear_anchors',
  'current_hparams',
  'get_anchors',
  'kernel_mask',
  'make_optimizer',
  'make_schedules',
  'repulsion',
  'repulsion_state',
  'set_hparam',
  'set_kernel',
  'uses_repulsion',
]
