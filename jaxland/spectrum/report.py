"""Files of the spectrum task: the steps to read, one npz + summary.json + PNGs per step, and the
figures across steps. Layout under <workdir>/<out> (out = 'spectrum' for the default options):
  <step>/spectrum.npz     eigenvalues [k] (descending), eigenvectors [k, n_params] (unit rows in
                          ravel_pytree order of the full params; zeros outside a block), residuals
                          [k], bottom_eigenvalues [b], bottom_residuals [b], ritz_values [m],
                          density_grid [G], density [G], slq_nodes [P, m], slq_weights [P, m],
                          density_sigma, trace, trace_stderr, trace_samples [P], step, loss,
                          gradient_norm, gradient_overlaps [k] (v_i . grad), num_examples,
                          num_params (operator dimension), param_paths [L], param_offsets [L+1]
  <step>/summary.json     the scalars, options, times (seconds), where params and BatchNorm
                          statistics came from, param_shapes
  <step>/density.png, <step>/top_eigenvalues.png
  summary.json            every step's summary; with >= 2 steps also top_eigenvalues.png,
                          density.png and trace.png across steps (with one step, a line
                          saying why there are none is printed and kept as summary['note'])
"""

import os

import numpy as np

from jaxland.output import plots, tables
from jaxland.rundir import artifacts

NPZ_NAME = 'spectrum.npz'
NPZ_KEYS = (
  'eigenvalues',
  'eigenvectors',
  'residuals',
  'bottom_eigenvalues',
  'bottom_residuals',
  'ritz_values',
  'density_grid',
  'density',
  'slq_nodes',
  'slq_weights',
  'density_sigma',
  'trace',
  'trace_stderr',
  'trace_samples',
  'step',
  'loss',
  'gradient_norm',
  'gradient_overlaps',
  'num_examples',
  'num_params',
  'param_paths',
  'param_offsets',
)
DENSITY_FLOOR = 1e-8  # Log-scale density plots clip below this.


# ------------------------------------------------------------------------------- reading a run


def resolve_steps(run_dir: str, ref_step, steps) -> list[int]:
  """The steps to analyse: opts.steps (-1 = latest checkpoint), else the ref's step or latest."""
  ckpt, traj = artifacts.checkpoint_steps(run_dir), artifacts.trajectory_steps(run_dir)
  if steps and ref_step is not None:
    raise ValueError(
      f'config.spectrum.steps = {steps!r}: give the steps either there or in config.checkpoint '
      f'(:{ref_step}), not both'
    )
  wanted = list(steps) or [-1 if ref_step is None else ref_step]
  if -1 in wanted:
    if not ckpt:
      raise FileNotFoundError(f'No checkpoints in {run_dir} (for the latest step)')
    wanted = [ckpt[-1] if s == -1 else s for s in wanted]
  missing = [s for s in wanted if s not in ckpt and s not in traj]
  if missing:
    raise ValueError(
      f'config.spectrum.steps: step(s) {missing} of {run_dir} have no checkpoint (have '
      f'{ckpt}) and no trajectory file (have {sorted(traj)})'
    )
  return sorted(set(wanted))


# ------------------------------------------------------------------------------------- writing


def step_dir(root: str, step: int) -> str:
  return os.path.join(root, str(int(step)))


def load(root: str, step: int) -> dict:
  """The arrays of <root>/<step>/spectrum.npz as a dict."""
  with np.load(os.path.join(step_dir(root, step), NPZ_NAME)) as f:
    return {k: f[k] for k in f.files}


def write_step(root: str, result: dict, summary: dict, plots: bool = True) -> dict:
  """Writes one step's npz, summary.json and (plots) PNGs; returns the summary with file paths."""
  out = step_dir(root, result['step'])
  os.makedirs(out, exist_ok=True)
  arrays = {k: np.asarray(result.get(k, summary.get(k))) for k in NPZ_KEYS}
  np.savez(os.path.join(out, NPZ_NAME), **arrays)
  summary = dict(summary)
  summary.update(
    top_eigenvalues=result['eigenvalues'],
    residuals=result['residuals'],
    bottom_eigenvalues=result['bottom_eigenvalues'],
    trace=result['trace'],
    trace_stderr=result['trace_stderr'],
    loss=result['loss'],
    gradient_norm=result['gradient_norm'],
    density_sigma=result['density_sigma'],
    num_params=result['num_params'],
    times=result['times'],
  )
  files = {'npz': os.path.join(out, NPZ_NAME), 'summary': os.path.join(out, 'summary.json')}
  if plots:
    files['density'] = plot_density(result, os.path.join(out, 'density.png'), _title(summary))
    files['top_eigenvalues'] = plot_top(result, os.path.join(out, 'top_eigenvalues.png'))
  summary['files'] = files
  summary = tables.jsonable(summary, null_nonfinite=True)
  tables.write_json(files['summary'], summary)
  return summary


def _title(summary: dict) -> str:
  block = f', block {summary["block"]}' if summary.get('block') else ''
  return (
    f'{summary["kind"]} ({summary["bn_mode"]} BN{block}) at step {summary["step"]}, '
    f'{summary.get("num_examples", "?")} examples'
  )


def line(summary: dict) -> str:
  """One printed line per step: top eigenvalues, trace, time."""
  top = ', '.join(f'{v:.4g}' for v in summary['top_eigenvalues'][:5])
  trace = summary.get('trace')
  trace = 'off' if trace is None else f'{trace:.4g} +- {summary["trace_stderr"]:.2g}'
  return (
    f'step {summary["step"]}: top [{top}{", ..." if len(summary["top_eigenvalues"]) > 5 else ""}]'
    f', trace {trace}, {summary["times"]["total"]:.1f} s'
  )


def plot_density(result: dict, path: str, title: str = '') -> str:
  """The broadened SLQ density (log y) with the top-k Ritz values as ticks."""
  fig, axes = plots.figure(size=(6.0, 3.8))
  ax = axes[0, 0]
  if np.size(result['density']):
    ax.semilogy(result['density_grid'], np.maximum(result['density'], DENSITY_FLOOR), lw=1)
    ax.set_ylim(bottom=DENSITY_FLOOR)
  for v in result['eigenvalues']:
    ax.axvline(v, color='C3', lw=0.6, alpha=0.6)
  ax.set_xlabel('eigenvalue')
  ax.set_ylabel('density (SLQ, log scale)')
  plots.set_title(ax, title + f'; red: top {len(result["eigenvalues"])} (Lanczos)')
  return plots.save(fig, path)


def plot_top(result: dict, path: str) -> str:
  """Top-k eigenvalues against their rank, with residual bounds."""
  fig, axes = plots.figure(size=(5.0, 3.6))
  ax, values = axes[0, 0], np.asarray(result['eigenvalues'])
  ax.errorbar(np.arange(1, len(values) + 1), values, yerr=result['residuals'], fmt='o', ms=3)
  if np.all(values > 0):
    ax.set_yscale('log')
  from matplotlib import ticker  # At the figure: plots imports matplotlib lazily.

  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # Ranks are whole numbers.
  ax.set_xlabel('rank i (λ_1 = largest)')
  ax.set_ylabel('eigenvalue')
  plots.set_title(ax, f'top {len(values)} eigenvalues at step {int(result["step"])}')
  return plots.save(fig, path)


def write_run(root: str, per_step: dict, plots: bool = True) -> dict:
  """The summary across steps (the task's summary.json) and, for >= 2 steps, their figures."""
  steps = sorted(per_step)
  summary = {
    'status': 'done',
    'steps': steps,
    'top_eigenvalues': {str(s): per_step[s]['top_eigenvalues'] for s in steps},
    'trace': {str(s): per_step[s]['trace'] for s in steps},
    'times': {str(s): per_step[s]['times'] for s in steps},
    'per_step': {str(s): per_step[s] for s in steps},
    'dir': root,
  }
  if plots and len(steps) >= 2:
    summary['files'] = plot_steps(root, steps)
  elif plots:
    summary['note'] = one_step_note(steps)
    print(f'[spectrum] {summary["note"]}', flush=True)
  return tables.jsonable(summary, null_nonfinite=True)


def one_step_note(steps) -> str:
  """Why a run of one step has no figures across steps (printed and kept in summary.json)."""
  return (
    f'one step analysed ({steps[0]}), so no figures across steps (top_eigenvalues.png, '
    f'density.png, trace.png need >= 2 steps; set config.spectrum.steps); the figures of '
    f'that step are in {steps[0]}/'
  )


def plot_steps(root: str, steps, top: int = 20) -> dict:
  """Figures across steps from the saved npz files: top eigenvalues, densities, trace."""
  data = [load(root, s) for s in steps]
  x = np.asarray(steps, float)
  files = {}
  fig, axes = plots.figure(size=(6.0, 4.0))
  ax = axes[0, 0]
  k = min(top, min(len(d['eigenvalues']) for d in data))
  values = np.stack([d['eigenvalues'][:k] for d in data])
  colours = plots.colour_map(list(range(k)))
  for i in range(k):
    ax.plot(
      x,
      values[:, i],
      'o-',
      ms=3,
      lw=1,
      color=colours[plots.label(i)],
      label=f'λ{i + 1}' if i < 5 else None,
    )
  ax.set_xscale('symlog', linthresh=max(1.0, float(np.min(x[x > 0], initial=1.0))))
  ax.set_yscale('symlog' if np.any(values <= 0) else 'log')
  ax.set_xlabel('training step')
  ax.set_ylabel('eigenvalue')
  ax.legend(title='rank (1 = largest)', fontsize=7)
  plots.set_title(ax, f'top {k} eigenvalues against step')
  files['top_eigenvalues'] = plots.save(fig, os.path.join(root, 'top_eigenvalues.png'))

  fig, axes = plots.figure(size=(6.0, 4.0))
  ax = axes[0, 0]
  colours = plots.colour_map(list(steps))
  for s, d in zip(steps, data, strict=True):
    if np.size(d['density']):
      ax.semilogy(
        d['density_grid'],
        np.maximum(d['density'], DENSITY_FLOOR),
        lw=1,
        color=colours[plots.label(s)],
        label=f'step {s}',
      )
  ax.set_ylim(bottom=DENSITY_FLOOR)
  ax.set_xscale('symlog', linthresh=1.0)
  ax.set_xlabel('eigenvalue (symlog)')
  ax.set_ylabel('density (SLQ, log scale)')
  ax.legend(fontsize=7)
  plots.set_title(ax, 'spectral density against step')
  files['density'] = plots.save(fig, os.path.join(root, 'density.png'))

  trace = np.array([float(d['trace']) for d in data])
  if np.all(np.isfinite(trace)):
    fig, axes = plots.figure(size=(5.0, 3.6))
    ax = axes[0, 0]
    ax.errorbar(x, trace, yerr=[float(d['trace_stderr']) for d in data], fmt='o-', ms=3)
    ax.set_xscale('symlog', linthresh=max(1.0, float(np.min(x[x > 0], initial=1.0))))
    ax.set_xlabel('training step')
    ax.set_ylabel('trace (Hutchinson)')
    plots.set_title(ax, 'trace against step')
    files['trace'] = plots.save(fig, os.path.join(root, 'trace.png'))
  return files
