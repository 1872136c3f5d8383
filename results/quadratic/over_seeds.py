"""The quadratic findings over seeds, and the lambda law of the minibatch minimum fitted on all
directions.

Run (after run_all.py for seed 0 and run_all.py --seed=1 / --seed=2; reads only committed files):
  .venv/bin/python results/quadratic/over_seeds.py
Reads results/quadratic/<name>/ (seed 0) and results/quadratic/seeds/seed<N>/<name>/ and writes
results/quadratic/seeds/:
  seeds.md / seeds.csv      each headline number per seed, mean ± sample std (ddof 1)
  lambda_law.csv            per model, seed and batch size b: std of the minibatch minimum fitted
                            as a * lambda^p over every direction (log-log least squares), with p's
                            standard error, r^2, and the rms log10 residual of that fit and of the
                            fit with p fixed at -1/2
  lambda_law_residuals.csv  every (seed, direction, b): measured std, both fits, log10 residuals
  lambda_law.json           the same summarised: p per b over seeds, the joint fit
                            std = a * lambda^p * b^q per seed
"""

import csv
import glob
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'seeds')
MODELS = ('mlp', 'mlp_gelu', 'cnn')


def seed_dirs(name):
  """{seed: folder} of the seeds found for `name` (seed 0 = results/quadratic/<name>)."""
  found = {0: os.path.join(HERE, name)} if os.path.isdir(os.path.join(HERE, name)) else {}
  for d in sorted(glob.glob(os.path.join(OUT, 'seed*', name))):
    found[int(os.path.basename(os.path.dirname(d))[4:])] = d
  return found


def read_csv(path):
  if not os.path.exists(path):
    return []
  with open(path, newline='') as f:
    return [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _num(v):
  try:
    return float(v)
  except (TypeError, ValueError):
    return v


def read_json(path):
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def fit_power(x, y):
  """log y = log a + p log x by least squares: (a, p, stderr of p, r^2, log10 residuals)."""
  lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
  design = np.stack([np.ones_like(lx), lx], 1)
  coef, *_ = np.linalg.lstsq(design, ly, rcond=None)
  resid = ly - design @ coef
  dof = max(len(lx) - 2, 1)
  cov = np.sum(resid**2) / dof * np.linalg.inv(design.T @ design)
  r2 = 1 - np.sum(resid**2) / np.sum((ly - ly.mean()) ** 2)
  if len(lx) < 3:  # A line through 2 points: no residuals, no error estimate.
    cov = np.full((2, 2), np.nan)
  return (
    float(np.exp(coef[0])),
    float(coef[1]),
    float(np.sqrt(cov[1, 1])),
    float(r2),
    resid / np.log(10),
  )


def lambda_law(minibatch_by_seed):
  """Rows of lambda_law.csv and lambda_law_residuals.csv, and the joint fits per seed."""
  fits, residuals, joint = [], [], {}
  for seed, rows in minibatch_by_seed.items():
    for b in sorted({r['batch_size'] for r in rows}):
      sel = sorted((r for r in rows if r['batch_size'] == b), key=lambda r: -r['eigenvalue'])
      lam = np.array([r['eigenvalue'] for r in sel])
      std = np.array([r['minimum_std'] for r in sel])
      a, p, p_se, r2, res = fit_power(lam, std)
      a_half = float(np.exp(np.mean(np.log(std) + 0.5 * np.log(lam))))  # p fixed at -1/2.
      res_half = np.log10(std / (a_half * lam**-0.5))
      fits.append(
        {
          'seed': seed,
          'batch_size': int(b),
          'n_directions': len(sel),
          'a': a,
          'p': p,
          'p_stderr': p_se,
          'r2': r2,
          'rms_log10_residual': float(np.sqrt(np.mean(res**2))),
          'a_at_p_minus_half': a_half,
          'rms_log10_residual_at_p_minus_half': float(np.sqrt(np.mean(res_half**2))),
          'max_abs_log10_residual_at_p_minus_half': float(np.max(np.abs(res_half))),
        }
      )
      for r, e, eh in zip(sel, res, res_half, strict=True):
        residuals.append(
          {
            'seed': seed,
            'batch_size': int(b),
            'index': int(r['index']),
            'eigenvalue': r['eigenvalue'],
            'minimum_std': r['minimum_std'],
            'fit': a * r['eigenvalue'] ** p,
            'log10_residual': float(e),
            'fit_p_minus_half': a_half * r['eigenvalue'] ** -0.5,
            'log10_residual_p_minus_half': float(eh),
          }
        )
    lam = np.array([r['eigenvalue'] for r in rows])
    b = np.array([r['batch_size'] for r in rows], float)
    ly = np.log([r['minimum_std'] for r in rows])
    design = np.stack([np.ones_like(lam), np.log(lam), np.log(b)], 1)
    coef, *_ = np.linalg.lstsq(design, ly, rcond=None)
    resid = ly - design @ coef
    cov = np.sum(resid**2) / max(len(ly) - 3, 1) * np.linalg.inv(design.T @ design)
    joint[seed] = {
      'a': float(np.exp(coef[0])),
      'p_lambda': float(coef[1]),
      'p_lambda_stderr': float(np.sqrt(cov[1, 1])),
      'q_batch': float(coef[2]),
      'q_batch_stderr': float(np.sqrt(cov[2, 2])),
      'rms_log10_residual': float(np.sqrt(np.mean(resid**2)) / np.log(10)),
      'n': len(ly),
    }
  return fits, residuals, joint


def _pick(rows, **match):
  return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def headline(folder):
  """{metric: value} of one seed's folder (the numbers quoted in README.md)."""
  land = os.path.join(folder, 'landscape')
  s = read_json(os.path.join(land, 'summary.json'))
  train = read_json(os.path.join(folder, 'train_summary.json'))
  out = {
    'test accuracy (trained model)': train.get('final_test_accuracy'),
    'test loss (trained model)': train.get('final_test_loss'),
  }
  lines = s.get('lines', {})
  if lines:
    counts = lines.get('best_form_counts', {})
    out |= {
      'λ1 (final, Lanczos)': lines.get('top_eigenvalue'),
      'median fitted / Lanczos curvature, top': lines.get('median_fit_over_lanczos_top'),
      'quartic best form (of all directions)': counts.get('quartic', 0)
      / max(sum(counts.values()), 1),
    }
  dyn = s.get('dynamics', {})
  for step, v in dyn.get('top_eigenvalue_by_step', {}).items():
    out[f'λ1 at step {step}'] = v
  if 'random_subspace_overlap' in dyn:
    out['random subspace overlap (reference)'] = dyn['random_subspace_overlap']
  for step, v in dyn.get('subspace_overlap_to_final', {}).items():
    if step != str(max(dyn.get('steps', [0]))):
      out[f'top subspace overlap with final, step {step}'] = v
  rnd = s.get('random', {})
  if rnd:
    out['gaussian v^T H v predicted / exact (mean)'] = rnd['gaussian_predicted_over_exact'][0]
    out['filter-normalised predicted / exact (mean)'] = rnd['filter_predicted_over_exact'][0]
    out['top-k mixtures: independent-sum rel. rms'] = rnd.get('topk_mix_independent_rel_rms')
  if 'grad_noise' in s:
    out['corr(log Var(u·g_B), log λ)'] = s['grad_noise']['corr_log_var_log_eigenvalue']
  if 'trajectory' in s:
    out['corr(log λ, settle step)'] = s['trajectory']['corr_log_eigenvalue_settle']
    out['norm of θ0 − θ*'] = s['trajectory']['distance_init_total']
  mb = read_csv(os.path.join(land, 'minibatch.csv'))
  for b in sorted({r['batch_size'] for r in mb}):
    top = _pick(mb, index=0.0, batch_size=b)
    if top:
      out[f'minibatch minimum std, top direction, b={int(b)}'] = top[0]['minimum_std']
  if mb:
    out['minibatch abs corr(minimum, curvature) < 0.3 (fraction)'] = float(
      np.mean([abs(r['corr_minimum_curvature']) < 0.3 for r in mb])
    )
  out |= _more(land)
  out |= _intervene(os.path.join(folder, 'intervene'))
  dense = read_csv(os.path.join(land, 'dense.csv'))
  for r in sorted(_pick(dense, direction='eig0'), key=lambda r: -r['scale']):
    out[f'roughness eig0, half-width {r["scale"]:g} r'] = r['roughness']
  return out


def _put_range(out, name, values):
  """out['<name>: min'] and out['<name>: max'] over the finite values."""
  values = [v for v in values if isinstance(v, float) and np.isfinite(v)]
  if values:
    out[f'{name}: min'], out[f'{name}: max'] = min(values), max(values)


def _more(land):
  """The per-direction numbers README.md quotes as ranges or medians (lines, grad noise,
  trajectory, per-example, dynamics CSVs)."""
  out = {}
  every = read_csv(os.path.join(land, 'lines.csv'))
  top = [r for r in every if r['group'] == 'top']
  if top:
    _put_range(
      out,
      'whole-grid fitted / Lanczos curvature, top',
      [r['fit_curvature_whole'] / r['eigenvalue'] for r in top],
    )
    out['Taylor range / r, top: median'] = float(np.median([r['quad_range_rel'] for r in top]))
    for form in ('quadratic', 'quartic'):
      values = [r[f'form_{form}'] for r in every if np.isfinite(r[f'form_{form}'])]
      out[f'{form} form rel. rms, median (all directions)'] = float(np.median(values))
  noise = [r for r in read_csv(os.path.join(land, 'grad_noise.csv')) if r['eigenvalue'] > 0]
  if noise:
    _, slope, *_ = fit_power([r['eigenvalue'] for r in noise], [r['grad_var'] for r in noise])
    out['slope of log Var(u·g_B) on log λ'] = slope
    _put_range(out, 'Var(u·g_B) / λ', [r['grad_var_over_eigenvalue'] for r in noise])
    ratio = [r['predicted_position_var'] / r['tail_position_var'] for r in noise]
    out['predicted / measured tail variance: median'] = float(np.median(ratio))
    _put_range(out, 'predicted / measured tail variance', ratio)
  traj = [r for r in read_csv(os.path.join(land, 'trajectory.csv')) if r['group'] == 'top']
  if traj:
    total = read_json(os.path.join(land, 'summary.json'))['trajectory']['distance_init_total']
    _put_range(out, 'abs (θ0 − θ*)·u_j, top', [abs(r['distance_init']) for r in traj])
    _put_range(out, 'peak-LR tail std, top', [r['phase_tail_std'] for r in traj])
    out['top directions with abs (θ0 − θ*)·u_j above the peak-LR tail std'] = sum(
      abs(r['distance_init']) > r['phase_tail_std'] for r in traj
    )
    out['share of norm(θ0 − θ*)² in the top directions'] = float(
      sum(r['distance_init'] ** 2 for r in traj) / total**2
    )
  every_traj = read_csv(os.path.join(land, 'trajectory.csv'))
  _put_range(out, 'settle step, all directions', [r['settle_step'] for r in every_traj])
  mb = read_csv(os.path.join(land, 'minibatch.csv'))
  _put_range(
    out, 'minibatch curvature mean / λ', [r['curvature_mean'] / r['eigenvalue'] for r in mb]
  )
  if mb:
    out['minibatch profiles convex (fraction, min over rows)'] = min(
      r['fraction_convex'] for r in mb
    )
  per = read_csv(os.path.join(land, 'per_example.csv'))
  eig = [r for r in per if r['group'] == 'top']
  rnd = [r for r in per if r['group'] == 'random']
  if eig:
    _put_range(out, 'per-example median abs cos, top', [r['abs_cos_median'] for r in eig])
    out['per-example 90th pct abs cos, top: max'] = max(r['abs_cos_p90'] for r in eig)
    _put_range(out, 'per-example median abs cos, random', [r['abs_cos_median'] for r in rnd])
    _put_range(out, 'mean (g_i·u_j)², top', [r['fisher'] for r in eig])
    _put_range(out, 'participation ratio, top', [r['participation_ratio'] for r in eig])
    _put_range(out, 'top-1% share, top', [r['top1pct_share'] for r in eig])
    _put_range(out, 'top-1% share, random', [r['top1pct_share'] for r in rnd])
  dyn = read_csv(os.path.join(land, 'dynamics.csv'))
  steps = sorted({r['step'] for r in dyn})
  for step in steps[:-1]:
    rows = [r for r in dyn if r['step'] == step]
    name = f'max abs cos with final, step {int(step)}'
    _put_range(out, f'{name}, top 8', [r['max_overlap_final'] for r in rows if r['index'] < 8])
    _put_range(
      out, f'{name}, indices 8-15', [r['max_overlap_final'] for r in rows if 8 <= r['index'] < 16]
    )
  return out


def _intervene(folder):
  """The intervene task's numbers README.md quotes (snap, noise, precond, batch1, lr, hmc)."""
  out = {}
  snap = read_csv(os.path.join(folder, 'snap.csv'))
  steps = sorted({r['step'] for r in snap}, reverse=True)
  final = {int(r['num_snapped']): r for r in snap if steps and r['step'] == steps[0]}
  for step in steps:
    rows = {int(r['num_snapped']): r for r in snap if r['step'] == step}
    most = max(rows)
    tag = f'snap at step {int(step)}'
    out[f'{tag}: train loss, none snapped'] = rows[0]['train_loss']
    out[f'{tag}: train loss, top {most} snapped'] = rows[most]['train_loss']
    out[f'{tag}: predicted train loss, top {most}'] = rows[most]['predicted_train_loss']
    if step != steps[0]:  # Snapping before the LR drop, against what the drop achieved.
      drop = rows[0]['train_loss'] - final[0]['train_loss']
      gain = rows[0]['train_loss'] - rows[most]['train_loss']
      out[f"{tag}: share of the LR drop's train-loss gain"] = gain / drop
    out[f'{tag}: test loss, none'] = rows[0]['test_loss']
    out[f'{tag}: test loss, top {most}'] = rows[most]['test_loss']
    out[f'{tag}: test accuracy, none'] = rows[0]['test_accuracy']
    out[f'{tag}: test accuracy, top {most}'] = rows[most]['test_accuracy']
  summary = read_json(os.path.join(folder, 'summary.json'))
  noise = summary.get('noise', {})
  if noise:
    member = [v['test_accuracy_change'] for k, v in noise.items() if k.endswith('/member')]
    out['noise, val-selected single draw: test accuracy change, min'] = min(member)
    out['noise, val-selected single draw: test accuracy change, max'] = max(member)
    for band in ('posterior', 'all', 'top', 'bulk'):
      if f'{band}/ensemble' in noise:
        e = noise[f'{band}/ensemble']
        out[f'noise {band}, 8-draw ensemble: test loss change'] = e['test_loss_change']
        out[f'noise {band}, 8-draw ensemble: level'] = e['level']
  for r in read_csv(os.path.join(folder, 'noise.csv')):
    if r['level'] == 0.1 and r['band'] in ('top', 'bulk', 'all'):
      out[f'noise {r["band"]} at level 0.1: single-draw test accuracy'] = r['test_member_accuracy']
  for r in read_csv(os.path.join(folder, 'precond.csv')):
    out[f'precond {r["variant"]}: snapshot ensemble test loss'] = r['snapshot_ensemble_loss']
    out[f'precond {r["variant"]}: test accuracy'] = r['test_accuracy']
    if r['variant'] in ('plain', 'bayes_T1'):
      out[f'precond {r["variant"]}: train loss'] = r['train_loss']
  if 'precond' in summary:
    out['precond: lambda*'] = summary['precond']['lambda_star']
  for r in read_csv(os.path.join(folder, 'batch1.csv')):
    if r['variant'] == 'batch128':
      out['same epoch at batch 128: test accuracy'] = r['test_accuracy']
    if r['variant'] == 'batch1':
      out['batch 1 epoch: test accuracy'] = r['test_accuracy']
      out['batch 1 epoch: test loss'] = r['test_loss']
      out['batch 1 epoch: 10-iterate ensemble accuracy'] = r['snapshot_ensemble_accuracy']
      out['batch 1 epoch: 10-iterate ensemble loss'] = r['snapshot_ensemble_loss']
  for r in read_csv(os.path.join(folder, 'lr.csv')):
    out[f'LR experiment, peak {r["lr"]:g}: train loss'] = r['train_loss']
    out[f'LR experiment, peak {r["lr"]:g}: test accuracy'] = r['test_accuracy']
    out[f'LR experiment, peak {r["lr"]:g}: excess top sum'] = r['excess_top_sum']
    out[f'LR experiment, peak {r["lr"]:g}: excess bulk line'] = r['excess_bulk_gradient_line']
  for r in read_csv(os.path.join(folder, 'hmc.csv')):
    out['HMC: ensemble accuracy'] = r['hmc_ensemble_accuracy']
    out['HMC: member accuracy'] = r['hmc_member_accuracy']
    out['HMC: distance moved'] = r['distance_moved']
    out['HMC: acceptance'] = r['acceptance']
  return out


def fmt(v):
  if v is None or (isinstance(v, float) and not np.isfinite(v)):
    return '-'
  return f'{v:.4g}'


def over_seeds(name):
  dirs = seed_dirs(name)
  per_seed = {seed: headline(d) for seed, d in sorted(dirs.items())}
  keys = list(dict.fromkeys(k for h in per_seed.values() for k in h))
  rows = []
  for k in keys:
    values = [per_seed[s].get(k) for s in per_seed]
    finite = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    rows.append(
      {
        'model': name,
        'metric': k,
        **{f'seed{s}': v for s, v in zip(per_seed, values, strict=True)},
        'n': len(finite),
        'mean': float(np.mean(finite)) if finite else None,
        'std': float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
      }
    )
  minibatch = {
    s: read_csv(os.path.join(d, 'landscape', 'minibatch.csv')) for s, d in sorted(dirs.items())
  }
  return list(per_seed), rows, {s: r for s, r in minibatch.items() if r}


def write_csv(path, rows):
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)


def main():
  os.makedirs(OUT, exist_ok=True)
  md = [
    '# Quadratic findings over seeds (written by over_seeds.py)',
    '',
    'Seed = config.seed (initial weights, batch order, probe sampling). Mean ± sample std',
    '(ddof 1) over the seeds found. Seed 0 is results/quadratic/<model>/, the others',
    'results/quadratic/seeds/seed<N>/<model>/ (`run_all.py --seed=N`).',
    '',
  ]
  all_rows, all_fits, all_res, law = [], [], [], {}
  for name in MODELS:
    seeds, rows, minibatch = over_seeds(name)
    if not seeds:
      continue
    all_rows += rows
    md += [f'## {name} (seeds {", ".join(map(str, seeds))})', '']
    md += ['| metric | ' + ' | '.join(f'seed {s}' for s in seeds) + ' | mean ± std |']
    md += ['|---' * (len(seeds) + 2) + '|']
    for r in rows:
      cells = ' | '.join(fmt(r.get(f'seed{s}')) for s in seeds)
      spread = f'{fmt(r["mean"])} ± {fmt(r["std"])}' if r['std'] is not None else fmt(r['mean'])
      md.append(f'| {r["metric"]} | {cells} | {spread} |')
    md.append('')
    if not minibatch:
      continue
    fits, residuals, joint = lambda_law(minibatch)
    all_fits += [{'model': name, **f} for f in fits]
    all_res += [{'model': name, **r} for r in residuals]
    by_b = {}
    for f in fits:
      by_b.setdefault(f['batch_size'], []).append(f['p'])
    law[name] = {
      'p_by_batch_size': {
        str(b): {
          'per_seed': ps,
          'mean': float(np.mean(ps)),
          'std': float(np.std(ps, ddof=1)) if len(ps) > 1 else None,
        }
        for b, ps in sorted(by_b.items())
      },
      'joint_fit_per_seed': {str(s): j for s, j in joint.items()},
      'p_lambda_joint': _spread([j['p_lambda'] for j in joint.values()]),
      'q_batch_joint': _spread([j['q_batch'] for j in joint.values()]),
    }
    md += [
      f'### {name}: std of the minibatch minimum = a · λ^p, fitted on all directions',
      '',
      '| seed | b | directions | p ± se | r² | rms log10 residual | rms log10 residual, p = -1/2 '
      '| max abs log10 residual, p = -1/2 |',
      '|---|---|---|---|---|---|---|---|',
    ]
    for f in fits:
      md.append(
        f'| {f["seed"]} | {f["batch_size"]} | {f["n_directions"]} | {f["p"]:.2f} ± '
        f'{f["p_stderr"]:.2f} | {f["r2"]:.2f} | {f["rms_log10_residual"]:.3f} | '
        f'{f["rms_log10_residual_at_p_minus_half"]:.3f} | '
        f'{f["max_abs_log10_residual_at_p_minus_half"]:.3f} |'
      )
    md += ['', 'Joint fit std = a · λ^p · b^q over every direction and batch size, per seed:', '']
    md += ['| seed | p ± se | q ± se | rms log10 residual | n |', '|---|---|---|---|---|']
    for s, j in joint.items():
      md.append(
        f'| {s} | {j["p_lambda"]:.2f} ± {j["p_lambda_stderr"]:.2f} | {j["q_batch"]:.2f} ± '
        f'{j["q_batch_stderr"]:.2f} | {j["rms_log10_residual"]:.3f} | {j["n"]} |'
      )
    p, q = law[name]['p_lambda_joint'], law[name]['q_batch_joint']
    md += [
      '',
      f'Over seeds: p = {fmt(p["mean"])} ± {fmt(p["std"])}, q = {fmt(q["mean"])} ± '
      f'{fmt(q["std"])} (mean ± std of the per-seed joint fits).',
      '',
    ]
  write_csv(os.path.join(OUT, 'seeds.csv'), all_rows)
  write_csv(os.path.join(OUT, 'lambda_law.csv'), all_fits)
  write_csv(os.path.join(OUT, 'lambda_law_residuals.csv'), all_res)
  with open(os.path.join(OUT, 'lambda_law.json'), 'w') as f:
    json.dump(law, f, indent=2)
  with open(os.path.join(OUT, 'seeds.md'), 'w') as f:
    f.write('\n'.join(md) + '\n')
  print('\n'.join(md))


def _spread(values):
  return {
    'per_seed': values,
    'mean': float(np.mean(values)),
    'std': float(np.std(values, ddof=1)) if len(values) > 1 else None,
  }


if __name__ == '__main__':
  main()
