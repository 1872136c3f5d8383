"""Snapshot ensembles: averaged softmax probabilities, prediction agreement and error correlation.

Members are a run's snapshots (jaxland.distance.anchors) plus its final model. `analyse` gives,
for members' probabilities [M, N, C]: the cumulative ensemble accuracy as members are added (in
epoch order), pairwise agreement, disagreement on shared errors, error correlation and parameter
distance. Task `ensemble` (--config.task=ensemble --workdir=<run dir>) writes them to
<run dir>/ensemble/; WORKSPACE.md defines each number.
"""

import os

import jax
import numpy as np

from jaxland.data import pipeline
from jaxland.output import plots, tables
from jaxland.output.progress import Progress
from jaxland.rundir import artifacts, checkpoints
from jaxland.rundir import workdir as workdir_lib
from jaxland.train import loop

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
  """[M, M] L2 distances between the members' flattened parameters, each |θi - θj| computed
  directly (the Gram-matrix shortcut cancels catastrophically for near members: a member's
  distance to itself came out 6e-8)."""
  flat = [
    np.concatenate([np.ravel(x) for x in jax.tree.leaves(p)]).astype(np.float64)
    for p in params_list
  ]
  out = np.zeros((len(flat), len(flat)))
  for i in range(len(flat)):
    for j in range(i + 1, len(flat)):
      out[i, j] = out[j, i] = np.linalg.norm(flat[i] - flat[j])
  return out


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


def write_report(report: dict, out_dir: str, title: str = 'Snapshot ensemble') -> dict:
  """members.csv, pairs.csv, ensemble.md and heatmap.png under out_dir; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  names, fmt = report['names'], tables.fmt_float
  pairs = [k for k in PAIR_METRICS if k in report]
  paths = {k: os.path.join(out_dir, f) for k, f in _FILES.items()}
  members = [
    {
      'member': name,
      'weight': report['weights'][i],
      'accuracy': report['member_accuracy'][i],
      'ensemble_accuracy_up_to_here': report['cumulative_accuracy'][i],
    }
    for i, name in enumerate(names)
  ]
  tables.write_csv(paths['members'], members)
  pair_rows = [
    {'a': a, 'b': b, **{k: report[k][i, j] for k in pairs}}
    for i, a in enumerate(names)
    for j, b in enumerate(names)
  ]
  tables.write_csv(paths['pairs'], pair_rows, columns=['a', 'b', *pairs])
  member_rows = [
    [m['member'], f'{m["weight"]:g}', fmt(m['accuracy']), fmt(m['ensemble_accuracy_up_to_here'])]
    for m in members
  ]
  parts = [f'# {title}', '', tables.markdown(MEMBER_HEADER, member_rows)]
  for key in pairs:
    rows = [[name, *(fmt(v) for v in report[key][i])] for i, name in enumerate(names)]
    parts += ['', f'## {key}', '', tables.markdown(['', *names], rows)]
  with open(paths['markdown'], 'w') as f:
    f.write('\n'.join(parts) + '\n')
  heatmap(report, paths['heatmap'], title)
  return paths


MEMBER_HEADER = ('member', 'weight', 'accuracy', 'ensemble up to here')
_FILES = {
  'members': 'members.csv',
  'pairs': 'pairs.csv',
  'markdown': 'ensemble.md',
  'heatmap': 'heatmap.png',
}


def heatmap(report: dict, path: str, title: str = '') -> str:
  """One heat map per pairwise metric, side by side, values written in the cells (<= 10 members)."""
  keys = [k for k in PAIR_METRICS if k in report]
  names = report['names']
  fig, axes = plots.figure(1, len(keys), size=(3.2 + 1 / len(keys), 3.2))
  for ax, key in zip(axes[0], keys, strict=True):
    plots.heatmap(
      ax,
      report[key],
      names,
      names,
      title=key.replace('_', ' '),
      fmt='{:.3f}' if len(names) <= 10 else '',
    )
    ax.tick_params(axis='x', labelrotation=90, labelsize=7)
    ax.tick_params(axis='y', labelsize=7)
  fig.suptitle(title, fontsize=10)
  return plots.save(fig, path)


def load_members(run_dir: str, include_final: bool = True) -> list[dict]:
  """[{'name', 'epoch', 'step', 'params', 'batch_stats'}]: snapshots by epoch, then the final model.

  The final model (latest checkpoint) is left out when a snapshot was taken at the same step.
  """
  members = []
  for epoch, path in artifacts.list_snapshots(run_dir):
    params, batch_stats, info = artifacts.load_snapshot(path)
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


def record_dir(config, workdir: str) -> str:
  """Where the task's record and tables go: <run dir>/ensemble."""
  return os.path.join(workdir, OUT_DIR)


def run(config, workdir: str) -> dict:
  """Task `ensemble`: analyses the snapshots + final model of the run in `workdir`."""
  workdir_lib.check_same_run(config, workdir, hint=' (plus --config.task=ensemble)')
  members = load_members(workdir)
  if not members:
    raise FileNotFoundError(f'No snapshots or checkpoints in {workdir}')
  run = loop.build_run(config, workdir, writer=None)
  split = 'test' if 'test' in run.eval_fns else 'val'
  labels = np.asarray(run.dataset.test[1] if split == 'test' else run.dataset.val[1])
  probs, progress = [], Progress('ensemble member', len(members))
  for m in members:
    params, batch_stats = pipeline.put_global(
      (m['params'], m['batch_stats']), pipeline.replicated(run.mesh)
    )
    probs.append(softmax(run.predict(split, params, batch_stats)))
    progress.tick(m['name'])
  weights = tuple(config.repulsion.ensemble_weights) or None
  report = analyse(
    np.stack(probs), labels, [m['name'] for m in members], weights, [m['params'] for m in members]
  )
  out_dir = record_dir(config, workdir)
  paths = write_report(report, out_dir, f'Snapshot ensemble of {workdir} ({split} split)')
  accuracies = ', '.join(tables.fmt_float(a) for a in report['member_accuracy'])
  print(
    f'[jaxland] ensemble of {len(members)} members: accuracy {report["ensemble_accuracy"]:.4f} '
    f'(members {accuracies}); tables in {out_dir}',
    flush=True,
  )
  return {
    'status': 'done',
    'split': split,
    'members': report['names'],
    'member_accuracy': report['member_accuracy'].tolist(),
    'cumulative_accuracy': report['cumulative_accuracy'].tolist(),
    'ensemble_accuracy': report['ensemble_accuracy'],
    'files': paths,
  }
