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
j's setting to the end (`net`, d_i(end) - d_i(a_j)).

Reads <runs>/q2/<run>/seed=<N> and <runs>/q5/snapshots_s0/seed=<N> (q1.collect), and writes
q2_pairs.csv (one row per member and (old, new) pair: the growth before, after, their change,
later and net), q2.csv (one row per member: their means, how many pairs shrank in the epoch
after and net, the final TTA accuracy,
the distance to the initial weights at the end), q2.json (per run: mean ± std over seeds;
differences paired by seed: sum against the control and L2 against none, merged against sum) and
q2.png (the distance to the first and to the second anchor against epoch, every member).

Run:  .venv/bin/python results/cifar/q2.py [--runs=runs/cifar/jpeg75_cpu] [--out=results/cifar/q2]
        ... q2.py --render   (q2.csv/json and the figure again from the copies in --out)
"""

import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import q1  # noqa: E402  (one owner of copying, reading and spreading the members)

RUNS = ('sum_l2', 'sum_nol2', 'merged_l2', 'merged_nol2')
CONTROL = 'snapshots_s0'  # q5's run: the same anchors at strength 0, with L2.
BASELINES = {  # Each run's comparisons, paired by seed.
  'sum_l2': (CONTROL,),
  'sum_nol2': ('sum_l2',),
  'merged_l2': ('sum_l2', CONTROL),
  'merged_nol2': ('sum_nol2', 'merged_l2'),
}
NUMBERS = ('mean_before', 'mean_after', 'mean_change', 'mean_later', 'mean_net', 'shrunk_share')
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


def row(name: str, summary: dict, config: dict, records: list[dict]) -> tuple[dict, list[dict]]:
  """One member's row of q2.csv and its rows of q2_pairs.csv (module docstring)."""
  run, seed = q1.COPY.match(name).groups()
  epochs, anchors = q1.by_epoch(records), anchor_epochs(config)
  mine = pairs(anchors, epochs)

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
    'final_test_accuracy': summary.get('final_test_accuracy'),
    'init_distance_end': epochs[max(epochs)].get('anchor/init_distance'),
  }
  return member, [{'run': run, 'seed': int(seed), **p} for p in mine]


def collect(runs: str, out: str) -> None:
  """Copies q2's members and q5's control (q1.collect)."""
  q1.collect(os.path.join(runs, 'q2'), out, RUNS)
  q1.collect(os.path.join(runs, 'q5'), out, (CONTROL,))


def render(out: str) -> dict:
  """q2.csv, q2_pairs.csv, q2.json and q2.png from the copies in `out`; returns q2.json's dict."""
  from jaxland.output import plots, tables

  members = q1.read_members(out)
  order = (*RUNS, CONTROL)
  made = sorted(
    (row(name, *m) for name, m in members.items()),
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
