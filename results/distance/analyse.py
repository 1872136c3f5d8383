"""Figures and tables of results/distance/ from the runs of experiments.py (reads metrics.jsonl).

Run:  nice -n 5 .venv/bin/python results/distance/analyse.py
Writes results/distance/*.png, *.md, *.csv (ensemble_cumulative.csv: every seed's ensemble accuracy
as members are added) and ensemble/<config>/ (tables + heat maps, seed 0).
Numbers are mean ± std over the seeds found (3 unless told otherwise).
"""

import csv
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import experiments as ex  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from jaxland.distance import ensemble  # noqa: E402
from jaxland.output import metrics  # noqa: E402

EPOCHS = 36
ANCHOR = 6
PERIOD = 9
E = np.arange(EPOCHS + 1)


def records(experiment, name, seed):
  path = ex.workdir(experiment, name, seed)
  by_epoch = {}
  for r in metrics.read_jsonl(path):
    if 'epoch' in r:
      by_epoch.setdefault(int(r['epoch']), {}).update(r)
  return by_epoch


def seeds_of(experiment, name):
  return [s for s in ex.SEEDS if os.path.exists(os.path.join(ex.workdir(experiment, name, s)))]


def curve(experiment, name, key) -> np.ndarray:
  """[seeds, EPOCHS + 1] of `key` by epoch (NaN where not logged)."""
  out = []
  for seed in seeds_of(experiment, name):
    recs = records(experiment, name, seed)
    out.append([recs.get(e, {}).get(key, np.nan) for e in E])
  return np.asarray(out, float)


def ms(values, digits=4) -> str:
  values = np.asarray(values, float)
  values = values[np.isfinite(values)]
  if not len(values):
    return 'n/a'
  std = values.std(ddof=1) if len(values) > 1 else 0.0
  return f'{values.mean():.{digits}f} ± {std:.{digits}f}'


def band(ax, x, ys, label, **kw):
  mean = np.nanmean(ys, axis=0)
  line = ax.plot(x, mean, label=label, **kw)[0]
  if len(ys) > 1:
    std = np.nanstd(ys, axis=0, ddof=1)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
  return line


def finish(fig, axes, name, title):
  for ax in np.ravel(axes):
    ax.set_xlabel('epoch')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, name), dpi=110)
  plt.close(fig)


def write(name, lines):
  with open(os.path.join(HERE, name), 'w') as f:
    f.write('\n'.join(lines) + '\n')


def args_of(experiment, name):
  return dict(ex.EXPERIMENTS[experiment])[name]


def cmd(experiment, name):
  return f'`{ex.command(experiment, name, args_of(experiment, name), 0)}` (seeds 0, 1, 2)'


# --- 1 + 2: distance with and without repulsion, strength sweep ---------------------------------

STRENGTHS = [
  ('none', 'none (virtual anchor)'),
  ('s1', 's = 1'),
  ('s10', 's = 10'),
  ('s100', 's = 100'),
]


def strength():
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  rows = [
    '| strength | test acc. epoch 6 (anchor) | min over epochs 7-12 | drop | epoch 36 | '
    'distance epoch 7 | epoch 9 | epoch 12 | epoch 36 |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for name, label in STRENGTHS:
    acc = curve('strength', name, 'test/accuracy')
    dist = curve('strength', name, 'anchor/0/distance')
    band(axes[0], E, acc, label)
    band(axes[1], E, dist, label)
    band(axes[2], E, curve('strength', name, 'anchor/init_distance'), label)
    dip = np.nanmin(acc[:, ANCHOR + 1 : ANCHOR + 7], 1)
    rows.append(
      f'| {label} | {ms(acc[:, ANCHOR])} | {ms(dip)} | {ms(acc[:, ANCHOR] - dip)} | '
      f'{ms(acc[:, -1])} | '
      + ' | '.join(ms(dist[:, e], 2) for e in (ANCHOR + 1, 9, 12, EPOCHS))
      + ' |'
    )
  axes[0].set_ylabel('test accuracy')
  axes[0].set_ylim(0.6, 0.88)
  axes[1].set_ylabel('L2 distance to the anchor (epoch 6)')
  axes[2].set_ylabel('L2 distance to the initial weights')
  for ax in axes:
    ax.axvline(ANCHOR, color='k', lw=0.5, ls=':')
  finish(fig, axes, 'strength.png', 'Strength sweep, width^2 = 100 (mean ± std, 3 seeds)')
  commands = [f'- {label}: {cmd("strength", name)}' for name, label in STRENGTHS]
  write('strength.md', ['# Strength sweep (findings 1 and 2)', '', *rows, '', *commands])


# --- 3: width sweep -----------------------------------------------------------------------------

WIDTHS = [
  ('width', 'w2_0.1', 'width^2 = 0.1'),
  ('width', 'w2_1', 'width^2 = 1'),
  ('width', 'w2_10', 'width^2 = 10'),
  ('strength', 's10', 'width^2 = 100'),
]


def width():
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  rows = [
    '| width^2 | distance epoch 7 | epoch 9 | epoch 12 | epoch 18 | epoch 36 | kernel epoch 7 | '
    'kernel epoch 36 | test acc. epoch 7 | epoch 36 |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  means = {}
  for experiment, name, label in WIDTHS:
    dist = curve(experiment, name, 'anchor/0/distance')
    kern = curve(experiment, name, 'anchor/0/kernel')
    acc = curve(experiment, name, 'test/accuracy')
    means[label] = np.nanmean(dist, 0)
    band(axes[0], E, dist, label)
    band(axes[1], E, kern, label)
    band(axes[2], E, acc, label)
    rows.append(
      f'| {label.split("= ")[1]} | '
      + ' | '.join(ms(dist[:, e], 2) for e in (7, 9, 12, 18, 36))
      + f' | {ms(kern[:, 7], 3)} | {ms(kern[:, 36], 3)} | {ms(acc[:, 7])} | {ms(acc[:, 36])} |'
    )
  base = curve('strength', 'none', 'anchor/0/distance')
  band(axes[0], E, base, 'no repulsion', color='k', ls='--')
  axes[0].set_ylabel('L2 distance to the anchor')
  axes[0].set_yscale('log')
  axes[1].set_ylabel('kernel exp(-d^2 / 2 width^2)')
  axes[2].set_ylabel('test accuracy')
  axes[2].set_ylim(0.6, 0.88)
  finish(fig, axes, 'width.png', 'Width sweep at strength 10 (mean ± std, 3 seeds)')
  labels = list(means)
  crossings = []
  for a, b in zip(labels, labels[1:], strict=False):  # narrower a, wider b
    ahead = np.where(means[a][ANCHOR + 1 :] > means[b][ANCHOR + 1 :])[0]
    behind = np.where(means[b][ANCHOR + 1 :] > means[a][ANCHOR + 1 :])[0]
    if len(ahead) and ahead[0] == 0 and len(behind):
      crossings.append(
        f'- {a} is ahead of {b} right after the anchor; {b} overtakes after epoch '
        f'{behind[0] + ANCHOR + 1}.'
      )
    else:
      crossings.append(f'- {a} vs {b}: no crossing ({b} ahead from the start: {not len(ahead)}).')
  commands = [f'- {label}: {cmd(experiment, name)}' for experiment, name, label in WIDTHS]
  write(
    'width.md',
    [
      '# Width sweep at strength 10 (finding 3)',
      '',
      *rows,
      '',
      'Crossings (mean curves):',
      '',
      *crossings,
      '',
      *commands,
    ],
  )


# --- 4: several anchors, merged anchors, L2 -----------------------------------------------------

MULTI = [
  ('every_l2', 'several anchors, L2 1e-3'),
  ('every_nol2', 'several anchors, no L2'),
  ('every_l2x10', 'several anchors, L2 1e-2'),
  ('merged_l2', 'merged anchors, L2 1e-3'),
]
MULTI_BASE = {
  'every_l2': 'none_l2',
  'every_nol2': 'none_nol2',
  'every_l2x10': None,
  'merged_l2': 'none_l2',
}


def multi():
  fig, axes = plt.subplots(1, 5, figsize=(22, 3.8))
  rows = [
    '| run | d(anchor 0) epoch 18 (anchor 1 set) | epoch 19 | change 18->19 | change 18->21 | '
    'd(anchor 1) epoch 27 (anchor 2 set) | epoch 28 | change | test acc. epoch 36 |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for ax, (name, label) in zip(axes, MULTI, strict=False):
    for i in range(3):
      line = band(ax, E, curve('multi', name, f'anchor/{i}/distance'), f'anchor {i}')
      if MULTI_BASE[name]:
        base = curve('multi', MULTI_BASE[name], f'anchor/{i}/distance')
        band(ax, E, base, f'anchor {i}, no repulsion', color=line.get_color(), ls='--')
    ax.set_title(label, fontsize=9)
    ax.set_ylabel('L2 distance')
    d0, d1 = curve('multi', name, 'anchor/0/distance'), curve('multi', name, 'anchor/1/distance')
    acc = curve('multi', name, 'test/accuracy')
    rows.append(
      f'| {label} | {ms(d0[:, 18], 2)} | {ms(d0[:, 19], 2)} | {ms(d0[:, 19] - d0[:, 18], 2)} | '
      f'{ms(d0[:, 21] - d0[:, 18], 2)} | {ms(d1[:, 27], 2)} | {ms(d1[:, 28], 2)} | '
      f'{ms(d1[:, 28] - d1[:, 27], 2)} | {ms(acc[:, 36])} |'
    )
  for name, label in [
    *MULTI,
    ('none_l2', 'no repulsion, L2'),
    ('none_nol2', 'no repulsion, no L2'),
  ]:
    band(axes[4], E, curve('multi', name, 'test/accuracy'), label)
  axes[4].set_ylabel('test accuracy')
  axes[4].set_ylim(0.6, 0.88)
  for ax in axes:
    for e in (9, 18, 27):
      ax.axvline(e, color='k', lw=0.5, ls=':')
  finish(fig, axes, 'multi.png', 'Anchors after epochs 9, 18, 27; strength 10, width^2 100')
  names = [*MULTI, ('none_l2', 'no repulsion, L2'), ('none_nol2', 'no repulsion, no L2')]
  commands = [f'- {label}: {cmd("multi", name)}' for name, label in names]
  write(
    'multi.md',
    ['# Several and merged anchors, with and without L2 (finding 4)', '', *rows, '', *commands],
  )


# --- 5: schedules -------------------------------------------------------------------------------

SCHEDULES = [
  ('step_none', 'step decay, no repulsion'),
  ('step_rep', 'step decay + repulsion'),
  ('cosine_none', 'cosine restarts, no repulsion'),
  ('cosine_rep', 'cosine restarts + repulsion'),
  ('cosine01_none', 'cosine restarts lr_max 1e-2, no repulsion'),
  ('cosine01_rep', 'cosine restarts lr_max 1e-2 + repulsion'),
]


def schedules():
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  rows = [
    '| run | test acc. epoch 36 | best epoch-end test acc. | distance epoch 9 | epoch 18 | '
    'epoch 36 | max distance |',
    '|---|---|---|---|---|---|---|',
  ]
  for name, label in SCHEDULES:
    acc = curve('schedules', name, 'test/accuracy')
    dist = curve('schedules', name, 'anchor/0/distance')
    band(axes[0], E, acc, label)
    band(axes[1], E, dist, label)
    rows.append(
      f'| {label} | {ms(acc[:, 36])} | {ms(np.nanmax(acc, 1))} | {ms(dist[:, 9], 2)} | '
      f'{ms(dist[:, 18], 2)} | {ms(dist[:, 36], 2)} | {ms(np.nanmax(dist, 1), 2)} |'
    )
  for name, label in SCHEDULES[:3:2]:
    steps, lr = metrics.series(
      metrics.read_jsonl(ex.workdir('schedules', name, 0)), 'optim/learning_rate'
    )
    axes[2].plot(steps / (5000 // 128), lr, label=label.split(',')[0])
  axes[0].set_ylabel('test accuracy')
  axes[0].set_ylim(0.6, 0.9)
  axes[1].set_ylabel('L2 distance to the anchor (epoch 6)')
  axes[2].set_ylabel('learning rate (logged)')
  axes[2].set_yscale('log')
  finish(fig, axes, 'schedules.png', 'Schedules with restarts every 9 epochs, anchor after epoch 6')
  commands = [f'- {label}: {cmd("schedules", name)}' for name, label in SCHEDULES]
  write('schedules.md', ['# Step decay and warm restarts (finding 5)', '', *rows, '', *commands])


# --- 6: ensembles -------------------------------------------------------------------------------

ENSEMBLES = [
  ('multi', 'none_l2', 'anchors, no repulsion (s = 0)'),
  ('ensemble', 'every_s1', 'anchors, s = 1'),
  ('multi', 'every_l2', 'anchors, s = 10'),
  ('ensemble', 'every_s100', 'anchors, s = 100'),
  ('schedules', 'cosine_none', 'cosine warm restarts (Huang et al.), lr_max 1e-3'),
  ('schedules', 'cosine01_none', 'cosine warm restarts, lr_max 1e-2'),
  ('schedules', 'step_none', 'step decay with restarts'),
]
MEMBER_EPOCHS = (9, 18, 27)


def _members(experiment, name, seed):
  members = ensemble.load_members(ex.workdir(experiment, name, seed))
  return [m for m in members if m['name'] == 'final' or m['epoch'] in MEMBER_EPOCHS]


def ensembles():
  from jaxland.data import pipeline
  from jaxland.train import loop

  run = loop.build_run(ex.get_config('anchor=6', 0), '/tmp/unused', writer=None)
  labels = np.asarray(run.dataset.test[1])
  rows = [
    '| members from | ensemble acc. | best member | final member | gain over final | agreement | '
    'error corr. | disagreement on shared errors | param. distance |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  table, cumulative = [], {}
  for experiment, name, label in ENSEMBLES:
    stats = {k: [] for k in ('ens', 'best', 'final', 'agree', 'corr', 'shared', 'dist')}
    cumulative[label] = []
    for seed in seeds_of(experiment, name):
      members = _members(experiment, name, seed)
      probs = []
      for m in members:
        params, bs = pipeline.put_global(
          (m['params'], m['batch_stats']), pipeline.replicated(run.mesh)
        )
        probs.append(ensemble.softmax(run.predict('test', params, bs)))
      rep = ensemble.analyse(
        np.stack(probs), labels, [m['name'] for m in members], None, [m['params'] for m in members]
      )
      off = ~np.eye(len(members), dtype=bool)
      stats['ens'].append(rep['ensemble_accuracy'])
      stats['best'].append(rep['member_accuracy'].max())
      stats['final'].append(rep['member_accuracy'][-1])
      stats['agree'].append(rep['agreement'][off].mean())
      stats['corr'].append(np.nanmean(rep['error_correlation'][off]))
      stats['shared'].append(np.nanmean(rep['shared_error_disagreement'][off]))
      stats['dist'].append(rep['param_distance'][off].mean())
      cumulative[label].append(rep['cumulative_accuracy'])
      if seed == 0:
        out = os.path.join(HERE, 'ensemble', f'{experiment}_{name}')
        ensemble.write_report(rep, out, f'{label} (seed 0)')
    gain = np.asarray(stats['ens']) - np.asarray(stats['final'])
    rows.append(
      f'| {label} | {ms(stats["ens"])} | {ms(stats["best"])} | {ms(stats["final"])} | '
      f'{ms(gain)} | {ms(stats["agree"])} | {ms(stats["corr"])} | {ms(stats["shared"])} | '
      f'{ms(stats["dist"], 2)} |'
    )
    table.append({'members_from': label, **{k: np.mean(v) for k, v in stats.items()}})
  with open(os.path.join(HERE, 'ensemble.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
  with open(os.path.join(HERE, 'ensemble_cumulative.csv'), 'w', newline='') as f:
    writer = csv.writer(f)  # Every seed's curve: the figure's bands, and what finding 6 cites.
    writer.writerow(['members_from', 'seed', 'members', 'ensemble_accuracy'])
    for (experiment, name, label), curves in zip(ENSEMBLES, cumulative.values(), strict=True):
      for seed, curve in zip(seeds_of(experiment, name), curves, strict=True):
        writer.writerows([label, seed, i + 1, f'{a:.4f}'] for i, a in enumerate(curve))
  fig, ax = plt.subplots(figsize=(6, 4))
  for label, curves in cumulative.items():
    curves = np.asarray(curves)
    band(ax, np.arange(1, curves.shape[1] + 1), curves, label, marker='o')
  ax.set_xticks(range(1, len(MEMBER_EPOCHS) + 2))
  ax.set_xlabel('members (snapshots after epochs 9, 18, 27, then the final model)')
  ax.set_ylabel('ensemble test accuracy')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, 'ensemble_cumulative.png'), dpi=110)
  plt.close(fig)
  commands = [f'- {label}: {cmd(experiment, name)}' for experiment, name, label in ENSEMBLES]
  write(
    'ensemble.md',
    [
      '# Snapshot ensembles (finding 6)',
      '',
      'Members: the snapshots after epochs 9, 18, 27 and the final model (epoch 36); equal',
      'weights; pairwise numbers are means over the off-diagonal pairs. Per-run tables and heat',
      'maps (seed 0): `ensemble/<experiment>_<run>/` (made by jaxland.distance.ensemble, as the '
      '`ensemble`',
      'task does).',
      '',
      *rows,
      '',
      *commands,
    ],
  )


# --- 7: cost ------------------------------------------------------------------------------------


def cost():
  bench = os.path.join(HERE, 'bench_repulsion.md')
  extra = open(bench).read().splitlines() if os.path.exists(bench) else ['(bench not run)']
  write(
    'cost.md',
    [
      '# Cost of anchors (finding 7)',
      '',
      'From bench/repulsion.py (variants interleaved within one run). The transform reads every',
      'slot of its capacity once any anchor is active (so cost follows `repulsion.capacity`, not',
      'the active count: `K=1/cap4` = `K=4`), and skips the work (lax.cond) while no anchor is',
      'active or the strength is 0. Every run also logs `epoch_time`, but the runs of this',
      'directory ran one after another on a CPU shared with other jobs (load average 6-14), so',
      'their epoch times compare load, not anchors; they are not tabulated.',
      '',
      *extra,
    ],
  )


if __name__ == '__main__':
  steps = [a for a in sys.argv[1:] if a != '--smoke']
  if '--smoke' in sys.argv:  # experiments.py --smoke's runs; outputs beside them, not here.
    HERE = os.path.join(ex.smoke(), 'out')
    os.makedirs(os.path.join(HERE, 'ensemble'), exist_ok=True)
  for step in steps or ['strength', 'width', 'multi', 'schedules', 'ensembles', 'cost']:
    globals()[step]()
    print(f'[analyse] {step} done', flush=True)
