"""Figures of the `intervene` task (matplotlib, Agg), one function per experiment."""

import os

from jaxland.output import plots


def snap(res, path) -> str:
  """Train loss (measured and quadratic model) and test accuracy / loss vs directions snapped."""
  fig, axes = plots.figure(1, 3, size=(3.8, 3.2))
  for s in sorted({r['step'] for r in res['rows']}):
    sel = [r for r in res['rows'] if r['step'] == s]
    n = [r['num_snapped'] for r in sel]
    (line,) = axes[0, 0].plot(n, [r['train_loss'] for r in sel], 'o-', ms=3, label=f'step {s}')
    axes[0, 0].plot(n, [r['predicted_train_loss'] for r in sel], ':', color=line.get_color())
    axes[0, 1].plot(n, [r['test_accuracy'] for r in sel], 'o-', ms=3, color=line.get_color())
    axes[0, 2].plot(n, [r['test_loss'] for r in sel], 'o-', ms=3, color=line.get_color())
  for ax, name in zip(
    axes.flat, ('train loss (dotted: quadratic model)', 'test accuracy', 'test loss'), strict=True
  ):
    ax.set_xlabel('top eigendirections snapped (threshold = λ_n)')
    ax.set_ylabel(name)
  axes[0, 0].legend(fontsize=7)
  return plots.save(fig, path)


def noise(res, path) -> str:
  """Val and test accuracy against the noise level, per band (solid: ensemble, dashed: single)."""
  fig, axes = plots.figure(1, 2, size=(4.2, 3.2))
  for n, band in enumerate(sorted({r['band'] for r in res['rows']})):
    sel = sorted((r for r in res['rows'] if r['band'] == band), key=lambda r: r['level'])
    lv = [max(r['level'], 1e-4) for r in sel]
    for ax, split in zip(axes.flat, ('val', 'test'), strict=True):
      ax.plot(lv, [r[f'{split}_ensemble_accuracy'] for r in sel], '-', color=f'C{n}', label=band)
      ax.plot(lv, [r[f'{split}_member_accuracy'] for r in sel], '--', color=f'C{n}')
  for ax, split in zip(axes.flat, ('val', 'test'), strict=True):
    ax.set_xscale('log')
    ax.set_xlabel('per-direction noise std (level 0 drawn at 1e-4)')
    ax.set_ylabel(f'{split} accuracy')
  axes[0, 0].legend(fontsize=7)
  return plots.save(fig, path)


def precond(res, path) -> str:
  """Test accuracy per epoch of plain vs eigen-preconditioned SGD; iterate variance vs posterior."""
  fig, axes = plots.figure(1, 2, size=(4.2, 3.2))
  for name, curve in res['curves'].items():
    axes[0, 0].plot(
      [r['step'] for r in curve], [r['accuracy'] for r in curve], 'o-', ms=3, label=name
    )
  axes[0, 0].set_xlabel('steps after the checkpoint')
  axes[0, 0].set_ylabel('test accuracy')
  axes[0, 0].legend(fontsize=7)
  rows = res['direction_rows']
  lam = [r['eigenvalue'] for r in rows]
  axes[0, 1].plot(lam, [r['posterior_var_T1'] for r in rows], 'k-', label='posterior 1/(Nλ)')
  for key in [k for k in rows[0] if k.startswith('iterate_var_')]:
    axes[0, 1].plot(lam, [r[key] for r in rows], 'o', ms=3, label=key[len('iterate_var_') :])
  axes[0, 1].set_xscale('log')
  axes[0, 1].set_yscale('log')
  axes[0, 1].set_xlabel('λ')
  axes[0, 1].set_ylabel('variance of iterates along u_j (last epoch)')
  axes[0, 1].legend(fontsize=6)
  return plots.save(fig, path)


def lr(res, path) -> str:
  """Train loss curves; final train loss vs LR; excess loss per top direction."""
  fig, axes = plots.figure(1, 3, size=(3.8, 3.2))
  for name, (steps, loss) in res['curves'].items():
    axes[0, 0].plot(steps, loss, lw=1, label=f'lr {name}')
  axes[0, 0].set_yscale('log')
  axes[0, 0].set_xlabel('step')
  axes[0, 0].set_ylabel('train loss (logged)')
  axes[0, 0].legend(fontsize=7)
  rows = res['rows']
  x = [r['lr'] for r in rows]
  axes[0, 1].plot(x, [r['train_loss'] for r in rows], 'o-', label='final train loss')
  axes[0, 1].plot(x, [r['excess_top_sum'] for r in rows], 's--', label='Σ excess, top-k lines')
  axes[0, 1].plot(
    x, [r['excess_bulk_gradient_line'] for r in rows], '^--', label='excess, bulk-gradient line'
  )
  axes[0, 1].set_xscale('log')
  axes[0, 1].set_yscale('log')
  axes[0, 1].set_xlabel('peak LR')
  axes[0, 1].legend(fontsize=6)
  for n, lr_value in enumerate(x):
    sel = [r for r in res['direction_rows'] if r['lr'] == lr_value]
    axes[0, 2].plot(
      [r['eigenvalue'] for r in sel],
      [max(r['excess_loss'], 1e-9) for r in sel],
      'o',
      ms=3,
      color=f'C{n}',
      label=f'lr {lr_value:g}',
    )
  axes[0, 2].set_xscale('log')
  axes[0, 2].set_yscale('log')
  axes[0, 2].set_xlabel('λ (own top eigenvalues)')
  axes[0, 2].set_ylabel('loss - min along u_j')
  axes[0, 2].legend(fontsize=7)
  return plots.save(fig, path)


def all_figures(results: dict, out_dir: str) -> list[str]:
  """Every figure whose experiment ran; returns the paths."""
  made = []
  p = lambda name: os.path.join(out_dir, name)
  if results.get('snap', {}).get('rows'):
    made.append(snap(results['snap'], p('snap.png')))
  if results.get('noise', {}).get('rows'):
    made.append(noise(results['noise'], p('noise.png')))
  if results.get('precond', {}).get('rows'):
    made.append(precond(results['precond'], p('precond.png')))
  if results.get('lr', {}).get('rows'):
    made.append(lr(results['lr'], p('lr_experiment.png')))
  return made
