"""Figures of the landscape probes (matplotlib, Agg): one function per probe, each saving a PNG.

Inputs are the probe results of jaxland.landscape.probes ('rows' lists and 'arrays' dicts).
"""

import os

import numpy as np

from jaxland.landscape import fits
from jaxland.output import plots


def _rows(result, **match):
  return [r for r in result['rows'] if all(r.get(k) == v for k, v in match.items())]


def line_profiles(res, path, max_top=6) -> str:
  """Loss along top / bulk / bottom Ritz vectors, with the Taylor quadratic (dashed)."""
  rows = _rows(res, group='top')[:max_top] + _rows(res, group='bulk') + _rows(res, group='bottom')
  ncols = 4
  nrows = -(-len(rows) // ncols)
  fig, axes = plots.figure(nrows, ncols, size=(3.2, 2.6))
  for ax, r in zip(axes.flat, rows, strict=False):
    t, loss, _ = res['arrays'][f'eig{r["index"]}']
    l0 = float(np.interp(0.0, t, loss))
    ax.plot(t, loss, 'k-', lw=1.5, label='measured')
    ax.plot(t, fits.quadratic(t, l0, r['slope'], r['eigenvalue']), 'r--', lw=1, label='quadratic')
    if r['quad_range'] > 0:
      ax.axvspan(-r['quad_range'], r['quad_range'], color='g', alpha=0.08)
    ax.set_title(f'{r["group"]} #{r["index"]}: λ={r["eigenvalue"]:.3g}', fontsize=8)
    ax.set_xlabel('t', fontsize=8)
    ax.set_ylabel('train loss L(θ* + t·u)', fontsize=8)
    ax.tick_params(labelsize=7)
  for ax in list(axes.flat)[len(rows) :]:
    ax.axis('off')
  axes.flat[0].legend(fontsize=7)
  return plots.save(fig, path)


def curvature(lines_res, random_res, path) -> str:
  """Fitted vs Lanczos curvature; range of the quadratic; random directions; functional forms."""
  fig, axes = plots.figure(1, 4, size=(3.6, 3.2))
  ax = axes[0, 0]
  rows = lines_res['rows']
  for group, colour in (('top', 'C0'), ('bulk', 'C1'), ('bottom', 'C3')):
    sel = [r for r in rows if r['group'] == group]
    ax.scatter(
      [r['eigenvalue'] for r in sel], [r['fit_curvature'] for r in sel], c=colour, s=14, label=group
    )
  lim = [min(r['eigenvalue'] for r in rows), max(r['eigenvalue'] for r in rows)]
  ax.plot(lim, lim, 'k:', lw=1)
  ax.set_xscale('symlog', linthresh=1e-2)
  ax.set_yscale('symlog', linthresh=1e-2)
  ax.set_xlabel('Lanczos eigenvalue λ')
  ax.set_ylabel('fitted curvature (inner window)')
  ax.legend(fontsize=7)
  ax = axes[0, 1]
  pos = [r for r in rows if r['eigenvalue'] > 0]
  floor = min(r['radius'] for r in pos) * 1e-3  # Drawn for a range of 0 (fails at once).
  lam = [r['eigenvalue'] for r in pos]
  ax.scatter(lam, [max(r['quad_range'], floor) for r in pos], s=14, c='C0', label='Taylor (λ)')
  ax.scatter(lam, [max(r['quad_range_fit'], floor) for r in pos], s=14, c='C2', label='fitted')
  ax.scatter(lam, [r['radius'] for r in pos], s=8, c='0.7', marker='x', label='grid radius')
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xlabel('λ')
  ax.set_ylabel('|t| where the quadratic holds')
  ax.legend(fontsize=6)
  ax = axes[0, 2]
  if random_res is not None:
    for kind, colour in (('gaussian', 'C0'), ('filter', 'C2'), ('topk_mix', 'C4')):
      sel = _rows(random_res, kind=kind)
      ex = [r['vHv_exact'] for r in sel]
      ax.scatter(ex, [r['vHv_predicted'] for r in sel], c=colour, s=16, label=f'{kind} predicted')
      ax.scatter(ex, [r['fit_curvature'] for r in sel], c=colour, s=16, marker='x')
    allx = [r['vHv_exact'] for r in random_res['rows']]
    if allx:
      ax.plot([min(allx), max(allx)], [min(allx), max(allx)], 'k:', lw=1)
    ax.set_xscale('symlog', linthresh=1e-3)
    ax.set_yscale('symlog', linthresh=1e-3)
    ax.set_xlabel('exact vᵀHv (HVP)')
    ax.set_ylabel('predicted (o) / line-fit (x)')
    ax.legend(fontsize=6)
  ax = axes[0, 3]
  data = [[r[f'form_{f}'] for r in rows if np.isfinite(r[f'form_{f}'])] for f in fits.FORMS]
  ax.boxplot(data, tick_labels=list(fits.FORMS))
  ax.set_yscale('log')
  ax.set_ylabel('rms residual / range (whole grid)')
  ax.tick_params(axis='x', labelsize=7)
  return plots.save(fig, path)


def topk_mixtures(random_res, path) -> str:
  """Profiles along mixtures of top eigenvectors vs the independent-directions prediction."""
  names = [k for k in random_res['arrays'] if k.startswith('topk_mix') and k[-1].isdigit()][:4]
  fig, axes = plots.figure(1, max(1, len(names)), size=(3.2, 2.6))
  for ax, name in zip(axes.flat, names, strict=False):
    t, loss, _ = random_res['arrays'][name]
    ax.plot(t, loss, 'k-', label='measured')
    ax.plot(
      t, random_res['arrays'][f'{name}_independent'], 'b--', label='sum of 1-D eigen profiles'
    )
    ax.set_title(name, fontsize=8)
    ax.set_xlabel('t')
    ax.set_ylabel('train loss L(θ* + t·v)')
  axes.flat[0].legend(fontsize=7)
  return plots.save(fig, path)


def minibatch(res, path) -> str:
  """Spread of the minibatch minimum and curvature against the batch size."""
  fig, axes = plots.figure(1, 2, size=(4.2, 3.2))
  for i in sorted({r['index'] for r in res['rows']}):
    sel = sorted(_rows(res, index=i), key=lambda r: r['batch_size'])
    b = [r['batch_size'] for r in sel]
    lam = sel[0]['eigenvalue']
    axes[0, 0].plot(b, [r['minimum_std'] for r in sel], 'o-', label=f'#{i} λ={lam:.3g}')
    axes[0, 1].errorbar(
      b,
      [r['curvature_mean'] / lam for r in sel],
      yerr=[r['curvature_std'] / lam for r in sel],
      fmt='o-',
      capsize=2,
    )
  sizes = sorted({r['batch_size'] for r in res['rows']})
  for ax in axes.flat:
    plots.log_ticks(ax, sizes)  # Ticks at the batch sizes only (minor labels would overlap).
    ax.set_xlabel('minibatch size b')
  if res['rows']:
    b = np.array(sizes, float)
    ref = max(r['minimum_std'] for r in res['rows'] if r['batch_size'] == b[0])
    axes[0, 0].plot(b, ref * np.sqrt(b[0] / b), 'k:', label='∝ 1/√b')
  axes[0, 0].set_yscale('log')
  axes[0, 0].set_ylabel('std of the minimum position')
  axes[0, 0].legend(fontsize=6)
  axes[0, 1].axhline(1.0, color='k', ls=':')
  axes[0, 1].set_ylabel('minibatch curvature / full-batch λ')
  return plots.save(fig, path)


def dense(res, path) -> str:
  """Roughness (rms of the quadratic-fit residual / range) against the scale of the grid."""
  fig, axes = plots.figure(1, 2, size=(4.2, 3.2))
  for name in sorted({r['direction'] for r in res['rows']}):
    sel = sorted(_rows(res, direction=name), key=lambda r: r['half_width'])
    w = [r['half_width'] for r in sel]
    axes[0, 0].plot(w, [r['roughness'] for r in sel], 'o-', label=name)
    floor = [r['float32_floor'] / max(r['loss_range'], 1e-30) for r in sel]
    axes[0, 0].plot(w, floor, ':', color='0.5')
    smallest = sel[0]
    t, loss = res['arrays'][f'{name}_s{smallest["scale"]:g}']
    q = fits.fit_quadratic(t, loss)
    axes[0, 1].plot(
      t, loss - fits.quadratic(t, q['l0'], q['slope'], q['curvature']), lw=0.6, label=name
    )
  axes[0, 0].set_xscale('log')
  axes[0, 0].set_yscale('log')
  axes[0, 0].set_xlabel('half-width of the grid')
  axes[0, 0].set_ylabel('roughness (dotted: float32 floor)')
  axes[0, 0].legend(fontsize=7)
  axes[0, 1].set_xlabel('t (smallest scale)')
  axes[0, 1].set_ylabel('loss - quadratic fit')
  axes[0, 1].legend(fontsize=7)
  return plots.save(fig, path)


def spectra(res, path) -> str:
  """Top eigenvalues against step; max overlap with the final eigenvectors; one overlap matrix."""
  steps = res['summary']['steps']
  fig, axes = plots.figure(1, 3, size=(3.8, 3.2))
  k = max(r['index'] for r in res['rows']) + 1
  for j in range(k):
    sel = sorted(_rows(res, index=j), key=lambda r: r['step'])
    axes[0, 0].plot([r['step'] for r in sel], [r['eigenvalue'] for r in sel], '-', lw=1)
  axes[0, 0].set_yscale('symlog', linthresh=1e-2)
  axes[0, 0].set_xlabel('step')
  axes[0, 0].set_ylabel('top eigenvalues')
  colours = plots.colour_map(steps)
  for s in steps[:-1]:
    sel = sorted(_rows(res, step=s), key=lambda r: r['index'])
    axes[0, 1].plot(
      [r['index'] for r in sel],
      [r['max_overlap_final'] for r in sel],
      'o-',
      ms=3,
      color=colours[plots.label(s)],
      label=f'step {s}',
    )
  axes[0, 1].set_xlabel('eigen index (0 = largest)')
  axes[0, 1].set_ylabel('max |cos| with final eigenvectors')
  axes[0, 1].legend(fontsize=7)
  if len(steps) > 1:
    mid = steps[len(steps) // 2 - (1 if len(steps) % 2 == 0 else 0)]
    im = axes[0, 2].imshow(res['arrays'][f'overlap_final_{mid}'], vmin=0, vmax=1, cmap='viridis')
    axes[0, 2].set_title(f'|V(step {mid}) V(final)ᵀ|', fontsize=9)
    axes[0, 2].set_xlabel('final index')
    axes[0, 2].set_ylabel(f'step {mid} index')
    fig.colorbar(im, ax=axes[0, 2])
  return plots.save(fig, path)


def trajectory(res, path) -> str:
  """Projections on final eigenvectors against step; distance at init and settling vs λ."""
  fig, axes = plots.figure(1, 3, size=(3.8, 3.2))
  steps, proj, idx = res['arrays']['steps'], res['arrays']['proj'], list(res['arrays']['indices'])
  rows = res['rows']
  show = [0, 1, min(5, len(idx) - 1), len(idx) - 1]
  for n in sorted(set(show)):
    r = rows[n]
    axes[0, 0].plot(
      steps, proj[:, n], lw=1, label=f'{r["group"]} #{r["index"]} λ={r["eigenvalue"]:.2g}'
    )
  end = res['summary'].get('settle_phase_end_step')
  if end is not None:
    axes[0, 0].axvline(end, color='0.5', ls=':', lw=1)
  axes[0, 0].set_xlabel('step (dotted: end of the peak-LR phase)')
  axes[0, 0].set_ylabel('(θ_t − θ*)·u_j')
  axes[0, 0].legend(fontsize=6)
  lam = np.array([abs(r['eigenvalue']) for r in rows])
  colour = ['C0' if r['group'] == 'top' else 'C1' for r in rows]
  axes[0, 1].scatter(lam, [r['distance_init'] for r in rows], c=colour, s=14)
  axes[0, 1].set_xscale('log')
  axes[0, 1].set_yscale('log')
  axes[0, 1].set_xlabel('|λ| (blue top, orange bulk)')
  axes[0, 1].set_ylabel('|(θ_0 − θ*)·u_j|')
  axes[0, 2].scatter(lam, [r['settle_step'] for r in rows], c=colour, s=14)
  axes[0, 2].set_xscale('log')
  axes[0, 2].set_xlabel('|λ|')
  axes[0, 2].set_ylabel('settle step (peak-LR phase)')
  return plots.save(fig, path)


def grad_noise(res, path) -> str:
  """Minibatch gradient variance along each direction vs λ; predicted vs measured position var."""
  fig, axes = plots.figure(1, 2, size=(4.2, 3.2))
  rows = [r for r in res['rows'] if r['eigenvalue'] > 0]
  lam = [r['eigenvalue'] for r in rows]
  axes[0, 0].scatter(lam, [r['grad_var'] for r in rows], s=14)
  axes[0, 0].set_xscale('log')
  axes[0, 0].set_yscale('log')
  axes[0, 0].set_xlabel('λ')
  axes[0, 0].set_ylabel(f'Var(u·g_B), b={res["summary"]["batch_size"]}')
  pred = [r['predicted_position_var'] for r in rows]
  meas = [r['tail_position_var'] for r in rows]
  axes[0, 1].scatter(pred, meas, s=14, c=np.log(lam), cmap='viridis')
  finite = [p for p in pred + meas if np.isfinite(p) and p > 0]
  if finite:
    axes[0, 1].plot([min(finite), max(finite)], [min(finite), max(finite)], 'k:')
  axes[0, 1].set_xscale('log')
  axes[0, 1].set_yscale('log')
  axes[0, 1].set_xlabel('predicted stationary Var (heavy ball)')
  axes[0, 1].set_ylabel('Var of the trajectory tail')
  return plots.save(fig, path)


def per_example(res, path) -> str:
  """|cos(g_i, u_j)| distributions per direction; participation ratio and top-1% share vs λ."""
  fig, axes = plots.figure(1, 3, size=(4.0, 3.2))
  rows, cos = res['rows'], res['arrays']['abs_cos']
  labels = [f'{r["index"]}' if r['group'] != 'random' else f'r{r["index"]}' for r in rows]
  axes[0, 0].boxplot([cos[:, j] for j in range(len(rows))], tick_labels=labels, showfliers=False)
  axes[0, 0].set_yscale('log')
  axes[0, 0].set_xlabel('direction (eigen index; r = random)')
  axes[0, 0].set_ylabel('|cos(g_i, u_j)|')
  axes[0, 0].tick_params(axis='x', labelsize=6)
  eig = [r for r in rows if r['group'] != 'random']
  lam = [abs(r['eigenvalue']) for r in eig]
  axes[0, 1].scatter(lam, [r['participation_ratio'] for r in eig], s=14)
  for r in rows:
    if r['group'] == 'random':
      axes[0, 1].axhline(r['participation_ratio'], color='0.6', ls=':')
  axes[0, 1].set_xscale('log')
  axes[0, 1].set_xlabel('|λ| (dotted: random directions)')
  axes[0, 1].set_ylabel('participation ratio')
  axes[0, 2].scatter(lam, [r['fisher'] for r in eig], s=14)
  axes[0, 2].set_xscale('log')
  axes[0, 2].set_yscale('log')
  axes[0, 2].set_xlabel('|λ|')
  axes[0, 2].set_ylabel('mean (g_i·u_j)² (empirical Fisher)')
  return plots.save(fig, path)


def all_figures(results: dict, out_dir: str) -> list[str]:
  """Every figure whose probe ran; returns the paths."""
  made = []
  p = lambda name: os.path.join(out_dir, name)
  if 'lines' in results:
    made.append(line_profiles(results['lines'], p('lines_eigen.png')))
    made.append(curvature(results['lines'], results.get('random'), p('curvature_fits.png')))
  if 'random' in results:
    made.append(topk_mixtures(results['random'], p('topk_mixtures.png')))
  if 'minibatch' in results and results['minibatch']['rows']:
    made.append(minibatch(results['minibatch'], p('minibatch.png')))
  if 'dense' in results:
    made.append(dense(results['dense'], p('dense.png')))
  if results.get('dynamics', {}).get('rows'):
    made.append(spectra(results['dynamics'], p('spectra_over_training.png')))
  if results.get('trajectory', {}).get('rows'):
    made.append(trajectory(results['trajectory'], p('trajectory_eigenbasis.png')))
  if 'grad_noise' in results:
    made.append(grad_noise(results['grad_noise'], p('grad_noise.png')))
  if 'per_example' in results:
    made.append(per_example(results['per_example'], p('per_example.png')))
  return made
