"""Snapshot ensembles: averaged softmax probabilities, prediction agreement and error correlation.

Members are the snapshots a run saved (jaxland.anchors: at anchors, `snapshot_epochs`,
`snapshot_every`, e.g. at warm-restart boundaries as in Huang et al.'s snapshot ensembles) plus
its final model. For M members with probabilities p_m [N, C] on a split:
  ensemble            sum_m w_m p_m / sum_m w_m (equal weights by default)
  cumulative accuracy accuracy of the ensemble of the first m members, m = 1..M (in epoch order)
  agreement[i, j]     fraction of examples where members i and j predict the same class
  shared_error_disagreement[i, j]
                      among the examples both i and j get wrong, the fraction where their wrong
                      predictions differ (NaN when they share no error)
  error_correlation[i, j]
                      Pearson correlation of the 0/1 error indicators (NaN when one is constant)
  param_distance[i, j] L2 distance between the members' parameters
The task `ensemble` (config.task='ensemble', with the run's own config and --workdir=<run dir>)
writes these to <run dir>/ensemble/: members.csv, pairs.csv, ensemble.md, heatmap.png and
summary.json.
"""

import csv
import os

import jax
import numpy as np

from jaxland import anchors, checkpoints
from jaxland import workdir as workdir_lib
from jaxland.data import pipeline

OUT_DIR = 'ensemble'
PAIR_METRICS = ('agreement', 'shared_error_disagreement', 'error_correlation', 'param_distance')


def softmax(logits) -> np.ndarray:
  """Row-wise softmax in float64."""
  z = np.asarray(logits, np.float64)
  z = np.exp(z - z.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def _weights(weights, num_members: int) -> np.ndarray:
  if weights is None or len(weights) == 0:
    return np.ones(num_members)
  w = np.asarray(weights, np.float64)
  if w.shape != (num_members,) or np.any(w < 0) or not w.sum() > 0:
    raise ValueError(
      f'ensemble weights={tuple(weights)!r} are invalid; allowed: {num_members} values >= 0 '
      'with a positive sum (one per member: snapshots in epoch order, then the final model)'
    )
  return w


def ensemble_probs(probs, weights=None) -> np.ndarray:
  """Weighted average of the members' probabilities: probs [M, N, C] -> [N, C]."""
  probs = np.asarray(probs, np.float64)
  w = _weights(weights, len(probs))
  return np.tensordot(w / w.sum(), probs, axes=1)


def member_accuracy(probs, labels) -> np.ndarray:
  """Accuracy of each member: [M]."""
  return np.mean(np.argmax(probs, -1) == np.asarray(labels)[None], axis=1)


def cumulative_accuracy(probs, labels, weights=None) -> np.ndarray:
  """Accuracy of the ensemble of the first m members, m = 1..M: [M]."""
  w = _weights(weights, len(probs))
  return np.array(
    [
      np.mean(np.argmax(ensemble_probs(probs[:m], w[:m]), -1) == np.asarray(labels))
      for m in range(1, len(probs) + 1)
    ]
  )


def agreement_matrix(preds) -> np.ndarray:
  """[M, M] fraction of examples where two members predict the same class (1 on the diagonal)."""
  preds = np.asarray(preds)
  return np.mean(preds[:, None, :] == preds[None, :, :], axis=-1)


def shared_error_disagreement(preds, labels) -> np.ndarray:
  """[M, M]: on the examples both members get wrong, the fraction with different predictions."""
  preds = np.asarray(preds)
  wrong = preds != np.asarray(labels)[None]
  both = wrong[:, None, :] & wrong[None, :, :]
  differ = both & (preds[:, None, :] != preds[None, :, :])
  count = both.sum(-1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(count > 0, differ.sum(-1) / count, np.nan)


def error_correlation(preds, labels) -> np.ndarray:
  """[M, M] Pearson correlation of the members' 0/1 error indicators (NaN if one is constant)."""
  errors = (np.asarray(preds) != np.asarray(labels)[None]).astype(np.float64)
  centred = errors - errors.mean(axis=1, keepdims=True)
  cov = centred @ centred.T / errors.shape[1]
  std = np.sqrt(np.diag(cov))
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(np.outer(std, std) > 0, cov / np.outer(std, std), np.nan)


def param_distances(params_list) -> np.ndarray:
  """[M, M] L2 distances between the members' flattened parameters."""
  flat = np.stack(
    [np.concatenate([np.ravel(x) for x in jax.tree.leaves(p)]) for p in params_list]
  ).astype(np.float64)
  sq = np.sum(flat**2, axis=1)
  gram = flat @ flat.T
  return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * gram, 0.0))


def analyse(probs, labels, names, weights=None, params_list=None) -> dict:
  """Every number of the module docstring for members' probs [M, N, C] on examples `labels`."""
  probs = np.asarray(probs, np.float64)
  preds = np.argmax(probs, -1)
  out = {
    'names': list(names),
    'member_accuracy': member_accuracy(probs, labels),
    'cumulative_accuracy': cumulative_accuracy(probs, labels, weights),
    'weights': _weights(weights, len(probs)),
    'agreement': agreement_matrix(preds),
    'shared_error_disagreement': shared_error_disagreement(preds, labels),
    'error_correlation': error_correlation(preds, labels),
  }
  if params_list is not None:
    out['param_distance'] = param_distances(params_list)
  out['ensemble_accuracy'] = float(out['cumulative_accuracy'][-1])
  return out


def _fmt(v) -> str:
  return 'nan' if v is None or not np.isfinite(v) else f'{v:.4f}'


def write_report(report: dict, out_dir: str, title: str = 'Snapshot ensemble') -> dict:
  """members.csv, pairs.csv, ensemble.md and heatmap.png under out_dir; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  names = report['names']
  pairs = [k for k in PAIR_METRICS if k in report]
  paths = {k: os.path.join(out_dir, f) for k, f in _FILES.items()}
  with open(paths['members'], 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['member', 'weight', 'accuracy', 'ensemble_accuracy_up_to_here'])
    for i, name in enumerate(names):
      writer.writerow(
        [name, report['weights'][i], report['member_accuracy'][i], report['cumulative_accuracy'][i]]
      )
  with open(paths['pairs'], 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['a', 'b', *pairs])
    for i in range(len(names)):
      for j in range(len(names)):
        writer.writerow([names[i], names[j], *(report[k][i, j] for k in pairs)])
  lines = [
    f'# {title}',
    '',
    '| member | weight | accuracy | ensemble up to here |',
    '|---|---|---|---|',
  ]
  for i, name in enumerate(names):
    lines.append(
      f'| {name} | {report["weights"][i]:g} | {_fmt(report["member_accuracy"][i])} | '
      f'{_fmt(report["cumulative_accuracy"][i])} |'
    )
  for key in pairs:
    lines += [
      '',
      f'## {key}',
      '',
      '| | ' + ' | '.join(names) + ' |',
      '|---' * (len(names) + 1) + '|',
    ]
    for i, name in enumerate(names):
      lines.append(f'| {name} | ' + ' | '.join(_fmt(v) for v in report[key][i]) + ' |')
  with open(paths['markdown'], 'w') as f:
    f.write('\n'.join(lines) + '\n')
  heatmap(report, paths['heatmap'], title)
  return paths


_FILES = {
  'members': 'members.csv',
  'pairs': 'pairs.csv',
  'markdown': 'ensemble.md',
  'heatmap': 'heatmap.png',
}


def heatmap(report: dict, path: str, title: str = '') -> None:
  """One heat map per pairwise metric, side by side, values written in the cells."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  keys = [k for k in PAIR_METRICS if k in report]
  names, m = report['names'], len(report['names'])
  fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys) + 1, 3.2), squeeze=False)
  for ax, key in zip(axes[0], keys, strict=True):
    values = np.asarray(report[key], float)
    im = ax.imshow(values, cmap='viridis')
    ax.set_title(key.replace('_', ' '), fontsize=9)
    ax.set_xticks(range(m), names, rotation=90, fontsize=7)
    ax.set_yticks(range(m), names, fontsize=7)
    if m <= 10:
      for i in range(m):
        for j in range(m):
          ax.text(j, i, _fmt(values[i, j])[:5], ha='center', va='center', fontsize=6, color='w')
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def load_members(run_dir: str, include_final: bool = True) -> list[dict]:
  """[{'name', 'epoch', 'step', 'params', 'batch_stats'}]: snapshots by epoch, then the final model.

  The final model (latest checkpoint) is left out when a snapshot was taken at the same step.
  """
  members = []
  for epoch, path in anchors.list_snapshots(run_dir):
    params, batch_stats, info = anchors.load_snapshot(path)
    members.append(dict(name=f'epoch {epoch}', params=params, batch_stats=batch_stats, **info))
  if include_final and checkpoints.exists(run_dir):
    params, batch_stats, step = checkpoints.load_params(run_dir)
    if not members or step > members[-1]['step']:
      meta = workdir_lib.read_status(run_dir)
      epoch = meta.get('epoch', -1)
      members.append(
        dict(name='final', params=params, batch_stats=batch_stats, epoch=epoch, step=step)
      )
  return members


def _check_same_run(config, run_dir: str) -> None:
  """The config given must describe the run's data and model (it rebuilds them to predict)."""
  workdir_lib.check_same_run(config, run_dir, hint=' (plus --config.task=ensemble)')


def run_task(config, workdir: str) -> dict:
  """Task `ensemble`: analyses the snapshots + final model of the run in `workdir`."""
  from jaxland.train import loop

  _check_same_run(config, workdir)
  members = load_members(workdir)
  if not members:
    raise FileNotFoundError(f'No snapshots or checkpoints in {workdir}')
  run = loop.build_run(config, workdir, writer=None)
  split = 'test' if 'test' in run.eval_fns else 'val'
  labels = np.asarray(run.dataset.test[1] if split == 'test' else run.dataset.val[1])
  probs = []
  for m in members:
    params, batch_stats = pipeline.put_global(
      (m['params'], m['batch_stats']), pipeline.replicated(run.mesh)
    )
    probs.append(softmax(run.predict(split, params, batch_stats)))
  weights = tuple(config.repulsion.ensemble_weights) or None
  report = analyse(
    np.stack(probs), labels, [m['name'] for m in members], weights, [m['params'] for m in members]
  )
  out_dir = os.path.join(workdir, OUT_DIR)
  paths = write_report(report, out_dir, f'Snapshot ensemble of {workdir} ({split} split)')
  summary = {
    'status': 'done',
    'split': split,
    'members': report['names'],
    'member_accuracy': report['member_accuracy'].tolist(),
    'cumulative_accuracy': report['cumulative_accuracy'].tolist(),
    'ensemble_accuracy': report['ensemble_accuracy'],
    'files': paths,
  }
  workdir_lib.write_json(out_dir, 'summary.json', summary)
  print(
    f'[jaxland] ensemble of {len(members)} members: accuracy {report["ensemble_accuracy"]:.4f} '
    f'(members {", ".join(_fmt(a) for a in report["member_accuracy"])}); tables in {out_dir}',
    flush=True,
  )
  return summary
