"""Tables and figures of results/spectrum/ from the runs of run_all.sh (reads only saved files).

  python results/spectrum/report.py --root=runs/spectrum_results --out=results/spectrum
Writes spectra.md (per model and step: loss, top eigenvalues, outlier count, bottom eigenvalue,
trace, times; density peaks), top20.csv, density_peaks.csv, callback_top10.csv (the training
callback's top-10 every 50 steps, MLP), <model>_*.png (copied from the task's figures) and
densities.png, callback_top.png.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from jaxland.output import plots  # noqa: E402
from jaxland.output.metrics import read_jsonl, series  # noqa: E402
from jaxland.spectrum import report as spectrum_report  # noqa: E402

MODELS = {
  'mlp': 'Fashion-MNIST MLP 784-256-128-10 (235,146 params)',
  'cnn': 'Fashion-MNIST CNN 2x16 5x5 conv, 128-64 (48,634 params)',
}


def outliers(values) -> int:
  """Eigenvalues above the largest relative gap lambda_i / lambda_{i+1} among the top ones."""
  v = np.asarray(values)
  v = v[v > 0]
  if len(v) < 3:
    return len(v)
  return int(np.argmax(v[:-1] / v[1:])) + 1


def load_model(root: str, name: str):
  base = os.path.join(root, f'{name}_spectra', 'spectrum')
  with open(os.path.join(base, 'summary.json')) as f:
    run = json.load(f)
  steps = run['steps']
  return base, steps, {s: run['per_step'][str(s)] for s in steps}


def table(name, steps, per_step) -> list[str]:
  first = per_step[steps[0]]
  lines = [
    f'### {MODELS[name]}',
    '',
    f'{first["num_examples"]} train examples, Lanczos {first["lanczos_steps"]} steps, SLQ '
    f'{first["slq_probes"]} x {first["slq_steps"]}, Hutchinson {first["trace_probes"]} probes.',
    '',
    '| step | loss | λ1 | λ2 | λ5 | λ10 | λ20 | outliers | max res. (top 10) | λmin | trace ± se | '
    't lanczos | t density | t trace | t total |',
    '|---' * 15 + '|',
  ]
  for s in steps:
    d = per_step[s]
    top, res, t = d['top_eigenvalues'], d['residuals'], d['times']
    lines.append(
      f'| {s} | {d["loss"]:.3f} | {top[0]:.3g} | {top[1]:.3g} | {top[4]:.3g} | {top[9]:.3g} | '
      f'{top[19]:.3g} | {outliers(top)} | {max(res[:10]):.1e} | {d["bottom_eigenvalues"][0]:.3g} | '
      f'{d["trace"]:.4g} ± {d["trace_stderr"]:.2g} | {t["lanczos"]:.1f} s | '
      f'{t.get("density", 0):.1f} s | {t.get("trace", 0):.1f} s | {t["total"]:.1f} s |'
    )
  return lines + ['']


def densities(root, out):
  """One panel per model and step: SLQ density (log) with the top-20 Lanczos values."""
  fig, axes = plots.figure(len(MODELS), 4, size=(3.6, 2.8))
  for r, name in enumerate(MODELS):
    base, steps, _ = load_model(root, name)
    for c, s in enumerate(steps[:4]):
      d, ax = spectrum_report.load(base, s), axes[r, c]
      ax.semilogy(d['density_grid'], np.maximum(d['density'], 1e-8), lw=1, label='SLQ density')
      for i, v in enumerate(d['eigenvalues']):
        label = f'top {len(d["eigenvalues"])} Lanczos eigenvalues' if i == 0 else None
        ax.axvline(v, color='C3', lw=0.5, alpha=0.5, label=label)
      ax.set_ylim(1e-8, None)
      ax.set_title(f'{name} step {s} (σ = {float(d["density_sigma"]):.2g})', fontsize=9)
      ax.set_xlabel('eigenvalue', fontsize=8)
      if c == 0:
        ax.set_ylabel('spectral density (log)', fontsize=8)
    for ax in axes[r, len(steps[:4]) :]:
      ax.axis('off')  # Runs of fewer than 4 steps (the smoke variant).
  axes[0, 0].legend(fontsize=7, loc='upper left')
  return plots.save(fig, os.path.join(out, 'densities.png'))


def callback_figure(root, out):
  """The MLP run's callback: top-10 eigenvalues every 50 steps, with the task's values."""
  records = read_jsonl(os.path.join(root, 'mlp'))
  base, steps, per_step = load_model(root, 'mlp')
  fig, axes = plots.figure(1, 2, size=(5.2, 3.8))
  ax = axes[0, 0]
  colours = plots.colour_map(list(range(10)))
  for i in range(10):
    x, y = series(records, f'spectrum/top_{i}')
    ax.plot(x, y, '-', lw=1, color=colours[plots.label(i)], label=f'λ{i + 1}' if i < 3 else None)
  for s in steps:
    ax.plot([s] * 10, per_step[s]['top_eigenvalues'][:10], 'k+', ms=5)
  ax.set_yscale('log')
  ax.set_xlabel('training step')
  ax.set_ylabel('Hessian eigenvalue')
  ax.legend(fontsize=7, title='lines: callback; +: task', title_fontsize=7)
  ax.set_title('MLP top-10 eigenvalues during training', fontsize=9)
  ax = axes[0, 1]
  x, y = series(records, 'train/loss')
  ax.plot(x, y, label='train loss (50-step mean)')
  x, y = series(records, 'spectrum/loss')
  ax.plot(x, y, 'o', ms=3, label='loss on the 5,000 spectrum examples')
  ax.set_xlabel('training step')
  ax.set_ylabel('cross-entropy loss')
  ax.legend(fontsize=7)
  ax.set_title('loss', fontsize=9)
  return plots.save(fig, os.path.join(out, 'callback_top.png'))


def density_table(root, out) -> list[str]:
  """Peak of each SLQ density, its value at 0 and at λ1 (density_peaks.csv and a table)."""
  lines = [
    '| model | step | broadening σ | peak density (at eigenvalue) | density at 0 | density at λ1 |',
    '|---|---|---|---|---|---|',
  ]
  with open(os.path.join(out, 'density_peaks.csv'), 'w') as f:
    f.write('model,step,sigma,peak_density,peak_at,density_at_0,lambda1,density_at_lambda1\n')
    for name in MODELS:
      base, steps, _ = load_model(root, name)
      for s in steps:
        d = spectrum_report.load(base, s)
        grid, dens, top = d['density_grid'], d['density'], float(d['eigenvalues'][0])
        i = int(np.argmax(dens))
        at0, at_top = float(np.interp(0.0, grid, dens)), float(np.interp(top, grid, dens))
        sigma = float(d['density_sigma'])
        f.write(
          f'{name},{s},{sigma:.3g},{dens[i]:.4g},{grid[i]:.3g},{at0:.4g},{top:.6g},{at_top:.3g}\n'
        )
        lines.append(
          f'| {name} | {s} | {sigma:.3g} | {dens[i]:.3g} ({grid[i]:.2g}) | {at0:.3g} | '
          f'{at_top:.2g} |'
        )
  return lines + ['']


def callback_csv(root, out) -> None:
  """The MLP callback's top-10 eigenvalues and loss every 50 steps (callback_top10.csv)."""
  records = [r for r in read_jsonl(os.path.join(root, 'mlp')) if 'spectrum/top_0' in r]
  with open(os.path.join(out, 'callback_top10.csv'), 'w') as f:
    f.write('step,' + ','.join(f'lambda{i + 1}' for i in range(10)) + ',spectrum_loss\n')
    for r in records:
      values = [r[f'spectrum/top_{i}'] for i in range(10)] + [r.get('spectrum/loss', np.nan)]
      f.write(f'{int(r["step"])},' + ','.join(f'{v:.6g}' for v in values) + '\n')


def callback_vs_task(root) -> list[str]:
  records = read_jsonl(os.path.join(root, 'mlp'))
  _, steps, per_step = load_model(root, 'mlp')
  rows = []
  for s in steps:
    rec = [r for r in records if r['step'] == s and 'spectrum/top_0' in r]
    if rec:
      cb = rec[0]['spectrum/top_0']
      task = per_step[s]['top_eigenvalues'][0]
      rows.append(f'| {s} | {cb:.6g} | {task:.6g} | {abs(cb - task) / task:.1e} |')
  head = ['| step | callback λ1 | task λ1 | rel. diff |', '|---|---|---|---|']
  return head + rows + ['']


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--root', default='runs/spectrum_results')
  parser.add_argument('--out', default='results/spectrum')
  args = parser.parse_args()
  lines = ['# Spectra: numbers (written by report.py)', '']
  with open(os.path.join(args.out, 'top20.csv'), 'w') as f:
    f.write('model,step,rank,eigenvalue,residual\n')
    for name in MODELS:
      base, steps, per_step = load_model(args.root, name)
      lines += table(name, steps, per_step)
      for s in steps:
        for i, (v, r) in enumerate(
          zip(per_step[s]['top_eigenvalues'], per_step[s]['residuals'], strict=True)
        ):
          f.write(f'{name},{s},{i + 1},{v:.6g},{r:.3g}\n')
      for fig in ('top_eigenvalues.png', 'density.png', 'trace.png'):
        shutil.copy(os.path.join(base, fig), os.path.join(args.out, f'{name}_{fig}'))
  lines += ['### Callback (during training) against the task (afterwards), MLP, λ1', '']
  lines += callback_vs_task(args.root)
  lines += ['### SLQ densities (density_peaks.csv)', '']
  lines += density_table(args.root, args.out)
  callback_csv(args.root, args.out)
  densities(args.root, args.out)
  callback_figure(args.root, args.out)
  with open(os.path.join(args.out, 'spectra.md'), 'w') as f:
    f.write('\n'.join(lines))
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
