"""The `intervene` task's lr experiment: runs at several LRs from the same init and batch order,
annealed to one final LR, then the top of their Hessian spectra and the loss left along its
eigendirections and along the bulk gradient (seed 004: does a larger LR find flatter minima?).
"""

import os

import numpy as np

from jaxland.landscape import eigen as eigen_lib
from jaxland.landscape import lines
from jaxland.landscape.intervene import interventions as iv
from jaxland.landscape.problem import (
  ensure_trained,
  load_problem,
  split_metrics,
  train_gradient,
  training_config,
)
from jaxland.output import metrics
from jaxland.train import loop


def lr_run_config(config, lr, c, num_train: int):
  """The run at LR `lr`: same init, data order and length, annealed to c.lr_final at the end."""
  cfg = training_config(config)
  steps_per_epoch, _ = loop.schedule_steps(cfg, num_train)
  total = steps_per_epoch * cfg.train.num_epochs
  cfg.optim.learning_rate = float(lr)
  cfg.optim.schedule.name = 'piecewise'
  cfg.optim.schedule.boundaries_steps = (int(round((1 - c.lr_anneal_fraction) * total)),)
  cfg.optim.schedule.scales = (c.lr_final / float(lr),)
  cfg.train.trajectory_every_steps = 0
  cfg.train.save_batch_order = False
  return cfg


def lr_experiment(config, c, lc, out, num_train: int) -> dict:
  """Final train loss and the per-direction excess loss of runs at each LR of c.lr_values, on the
  run's `num_train` training examples."""
  rows, direction_rows, curves = [], [], {}
  for lr in c.lr_values:
    cfg = lr_run_config(config, lr, c, num_train)
    run_dir = ensure_trained(cfg, os.path.join(out, 'lr_runs', f'lr_{lr:g}'))
    recs = metrics.read_jsonl(run_dir)
    curves[f'{lr:g}'] = metrics.series(recs, 'train/loss')
    p = load_problem(cfg, run_dir)
    e = eigen_lib.compute_from(p, lc)
    grad = train_gradient(p, lc.batch_size)
    base = split_metrics(p, p.flat)
    a = e.top_vectors @ grad
    excess = []
    for j in range(e.num_top):
      radius = lines.eigen_radius(
        e.top_values[j], lc.line_rise, lc.line_min_radius, lc.line_max_radius
      )
      grid = lines.symmetric_geometric_grid(radius, lc.line_points, lc.line_min_frac)
      prof = lines.train_profile(p, e.top_vectors[j], grid, lc)
      excess.append(base['train_loss'] - float(prof['loss'].min()))
      direction_rows.append(
        {'lr': lr, 'index': j, 'eigenvalue': float(e.top_values[j]), 'excess_loss': excess[-1]}
      )
    g_perp = grad - a @ e.top_vectors
    v = -g_perp / max(np.linalg.norm(g_perp), 1e-30)
    prof = lines.train_profile(p, v, np.linspace(0, lc.line_max_radius, lc.line_points), lc)
    rows.append(
      {
        'lr': lr,
        **base,
        'grad_norm': float(np.linalg.norm(grad)),
        'grad_fraction_top': float(a @ a / max(grad @ grad, 1e-30)),
        'top_eigenvalue': float(e.top_values[0]),
        'excess_top_sum': float(np.sum(excess)),
        'newton_decrement_top': iv.snap_predicted_decrease(grad, e.top_values, e.top_vectors, 0.0),
        'excess_bulk_gradient_line': base['train_loss'] - float(prof['loss'].min()),
      }
    )
  summary = {'runs': rows, 'lr_final': c.lr_final, 'anneal_fraction': c.lr_anneal_fraction}
  return {'rows': rows, 'direction_rows': direction_rows, 'curves': curves, 'summary': summary}
