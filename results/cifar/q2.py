"""Issue 16, q2 (seed 002): several anchors against merged anchors, with and without L2. Does a
new anchor shrink the distance to the older ones (the thesis blames L2)?

Each run sets an anchor every k epochs (questions.py: 2, 4 and 6 of the `cpu` variant's 8) at
strength 10, in `sum` or `merged` mode, with the recipe's weight decay or none; q5's
`snapshots_s0` (the same anchors at strength 0, with L2) is the control with no force. For every
older anchor i and every newer anchor j, the distance to i grows by d_i(a_j) - d_i(a_j - 1) in the
epoch before j is set and by d_i(a_j + 1) - d_i(a_j) in the epoch after: a new anchor that
shrinks the distance to an old one makes the second negative, and one that slows its growth
makes their change (after - before) negative. The thesis' shrinking is also read over longer
spans: the epoch after that (`later`, d_i(a_j + 2) - d_i(a_j + 1): a push that relaxes) and from
j's setting to the end (`net`, d_i(end) - d_i(a_j)). The counterfactual of no second anchor is
q1's `strength10` (`one_anchor` here): the same run, bit for bit, until the second anchor, which
it never sets; a member whose distance to anchor 0 at the second anchor equals its seed's
one-anchor run's (the L2 runs; the others trained otherwise from the start) gets d_0 minus the
one-anchor run's d_0 in the epoch after the second anchor and at the end.

Reads <runs>/q2/<run>/seed=<N>, <runs>/q5/snapshots_s0/seed=<N> and <runs>/q1/strength10/seed=<N>
(q1.collect; q1's committed copies in results/cifar/q1 for a seed that <runs> lacks), and writes
q2_pairs.csv (one row per member and (old, new) pair: the growth before, after, their change,
later and net), q2.csv (one row per member: their means, how many pairs shrank in the epoch
after and net, the difference from the one-anchor run, the final TTA accuracy, the distance to
the initial weights at the end), q2.json (per run: mean ± std over seeds;
differences paired by seed: sum against the control and L2 against none, merged against sum) and
q2.png (the distance to the first and to the second anchor against epoch, every member).

Run:  .venv/bin/python results/cifar/q2.py [--runs=runs/cifar/jpeg75_cpu] [--out=results/cifar/q2]
        ... q2.py --render   (q2.csv/json and the figure again from the copies in --out)
"""

import glob
import math
import os
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import q1  # noqa: E402  (one owner of copying, reading and spreading the members)

RUNS = ('sum_l2', 'sum_nol2', 'merged_l2', 'merged_nol2')
CONTROL = 'snapshots_s0'  # q5's run: the same anchors at strength 0, with L2.
ONE_ANCHOR = 'one_anchor'  # q1's strength10: these runs until their second anchor, never set.
BASELINES = {  # Each run's comparisons, paired by seed.
  'sum_l2': (CONTROL,),
  'sum_nol2': ('sum_l2',),
  'merged_l2': ('sum_l2', CONTROL),
  'merged_nol2': ('sum_nol2', 'merged_l2'),
}
NUMBERS = ('mean_before', 'mean_after', 'mean_change', 'mean_later', 'mean_net', 'shrunk_share')
NUMBERS += ('old_vs_one_anchor_next', 'old_vs_one_anchor_end')
NUMBERS += ('final_test_accuracy', 'init_distance_end')
COMPARED = ('mean_change', 'mean_after', 'mean_later', 'mean_net', 'final_test_accuracy')


def anchor_epochs(config: dict) -> tuple[int, ...]:
  """The member's anchor epochs, slot i the i-th (jaxland.distance.settings owns the rule)."""
  import ml_collections

  from jaxland.distance import settings

  epochs = settings.anchor_schedule(ml_collections.ConfigDict(config))
  capacity = config['repulsion']['capacity']
  if len(epochs) > capacity:
    raise ValueError(f'{len(epochs)} anchors overflow capacity {capacity}: slots are reused')
  return epochs


def pairs(anchors: tuple[int, ...], epochs: dict[int, dict]) -> list[dict]:
  """Every (older i, newer j) anchor pair: the growth of the distance to i in the epoch before j
  is set, the epoch after, the one after that (`later`), and from j's setting to the end (`net`)."""
  distance = lambda i, e: epochs.get(e, {}).get(f'anchor/{i}/distance')
  last, out = max(epochs), []
  for i, a_i in enumerate(anchors):
    for j, a_j in enumerate(anchors[i + 1 :], start=i + 1):
      d = [distance(i, e) for e in (a_j - 1, a_j, a_j + 1)]
      if None in d or a_j - 1 <= a_i:  # Not logged, or the epoch before j is i's own.
        continue
      before, after = d[1] - d[0], d[2] - d[1]
      out.append(dict(old=i, old_epoch=a_i, new=j, new_epoch=a_j, before=before, after=after))
      out[-1]['change'] = after - before
      later = distance(i, a_j + 2)
      out[-1]['later'] = None if later is None else later - d[2]
      out[-1]['net'] = distance(i, last) - d[1]
  return out


def versus_one_anchor(anchors: tuple[int, ...], epochs: dict, one: dict | None) -> tuple:
  """(epoch after the second anchor, end): the distance to anchor 0 minus the one-anchor run's,
  when the two are the same run until the second anchor (equal d_0 there); else (None, None)."""
  d0 = lambda rows, e: rows.get(e, {}).get('anchor/0/distance')
  if one is None or len(anchors) < 2 or d0(epochs, anchors[1]) is None:
    return None, None
  if not math.isclose(d0(epochs, anchors[1]), d0(one, anchors[1]) or math.inf, rel_tol=1e-6):
    return None, None
  last = max(epochs)
  return tuple(d0(epochs, e) - d0(one, e) for e in (anchors[1] + 1, last))


def row(
  name: str, summary: dict, config: dict, records: list[dict], one: dict | None = None
) -> tuple[dict, list[dict]]:
  """One member's row of q2.csv and its rows of q2_pairs.csv (module docstring); `one` is its
  seed's one-anchor run by epoch."""
  run, seed = q1.COPY.match(name).groups()
  epochs, anchors = q1.by_epoch(records), anchor_epochs(config)
  mine = pairs(anchors, epochs)
  next_epoch, end = versus_one_anchor(anchors, epochs, one)

  def mean(key):
    values = [p[key] for p in mine if p[key] is not None]
    return statistics.mean(values) if values else None

  shrunk = sum(p['after'] < 0 for p in mine)
  member = {
    'run': run,
    'seed': int(seed),
    'mode': config['repulsion']['mode'],
    'strength': config['repulsion']['strength'],
    'weight_decay': config['optim']['weight_decay'],
    'anchor_epochs': ' '.join(map(str, anchors)),
    'status': summary['status'],
    'pairs': len(mine),
    'mean_before': mean('before'),
    'mean_after': mean('after'),
    'mean_change': mean('change'),
    'mean_later': mean('later'),
    'mean_net': mean('net'),
    'shrunk': shrunk,
    'shrunk_share': shrunk / len(mine) if mine else None,
    'net_shrunk': sum(p['net'] < 0 for p in mine),
    'old_vs_one_anchor_next': next_epoch,
    'old_vs_one_anchor_end': end,
    'final_test_accuracy': summary.get('final_test_accuracy'),
    'init_distance_end': epochs[max(epochs)].get('anchor/init_distance'),
  }
  return member, [{'run': run, 'seed': int(seed), **p} for p in mine]


def collect(runs: str, out: str, q1_copies: str = os.path.join(HERE, 'q1')) -> None:
  """Copies q2's members, q5's control and q1's one-anchor run (q1.collect), the latter from
  q1's copies (`q1_copies`) for a seed that `runs` lacks."""
  q1.collect(os.path.join(runs, 'q2'), out, RUNS)
  q1.collect(os.path.join(runs, 'q5'), out, (CONTROL,))
  q1.collect(os.path.join(runs, 'q1'), out, ('strength10',), copy_as={'strength10': ONE_ANCHOR})
  for stem in glob.glob(os.path.join(q1_copies, 'strength10_seed*.summary.json')):
    seed = q1.COPY.match(os.path.basename(stem)[: -len('.summary.json')]).group(2)
    if not os.path.exists(os.path.join(out, f'{ONE_ANCHOR}_seed{seed}.summary.json')):
      for suffix in q1.SUFFIXES:
        source = os.path.join(q1_copies, f'strength10_seed{seed}{suffix}')
        shutil.copyfile(source, os.path.join(out, f'{ONE_ANCHOR}_seed{seed}{suffix}'))


def render(out: str) -> dict:
  """q2.csv, q2_pairs.csv, q2.json and q2.png from the copies in `out`; returns q2.json's dict."""
  from jaxland.output import plots, tables

  members = q1.read_members(out)
  order = (*RUNS, CONTROL)
  one = {
    q1.COPY.match(name).group(2): q1.by_epoch(m[2])
    for name, m in members.items()
    if name.startswith(ONE_ANCHOR + '_seed')
  }
  made = sorted(
    (
      row(name, *m, one=one.get(q1.COPY.match(name).group(2)))
      for name, m in members.items()
      if not name.startswith(ONE_ANCHOR + '_seed')
    ),
    key=lambda r: (order.index(r[0]['run']), r[0]['seed']),
  )
  rows, pair_rows = [r for r, _ in made], [p for _, ps in made for p in ps]
  tables.write_csv(os.path.join(out, 'q2.csv'), rows, list(rows[0]))
  if pair_rows:
    tables.write_csv(os.path.join(out, 'q2_pairs.csv'), pair_rows, list(pair_rows[0]))
  labels = ('mode', 'strength', 'weight_decay', 'anchor_epochs')
  spread = q1.by_run(rows, NUMBERS, lambda run: BASELINES.get(run, ()), COMPARED, labels)
  summary = {'dataset': 'cifar10_jpeg75', 'rows': rows, 'pairs': pair_rows, 'by_run': spread}
  tables.write_json(os.path.join(out, 'q2.json'), summary, sort_keys=False)
  fig, axes = plots.figure(1, 2, size=(5.5, 4.0))
  colors = dict(zip(order, ('tab:blue', 'tab:orange', 'tab:green', 'tab:red', 'k'), strict=True))
  for r in rows:
    epochs = q1.by_epoch(members[f'{r["run"]}_seed{r["seed"]}'][2])
    style, label = q1.member_style(r, colors, rows[0]['seed'])
    for slot, ax in enumerate(axes[0]):
      q1.plot_epochs(ax, epochs, f'anchor/{slot}/distance', label=label, **style)
  for seed, epochs in sorted(one.items()):  # The counterfactual: never a second anchor.
    label = f'{ONE_ANCHOR} (q1 strength10)' if seed == min(one) else None
    q1.plot_epochs(axes[0, 0], epochs, 'anchor/0/distance', color='0.5', ls='-.', lw=1, label=label)
  anchors = [int(a) for a in rows[0]['anchor_epochs'].split()]
  for slot, ax in enumerate(axes[0]):
    for a in anchors:
      ax.axvline(a, color='k', lw=0.5, ls=':')
    ax.set(xlabel='epoch', ylabel=f'L2 distance to anchor {slot} (epoch {anchors[slot]})')
  axes[0, 0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'q2.png'))
  return summary


if __name__ == '__main__':
  q1.cli('q2', collect, render, '')
