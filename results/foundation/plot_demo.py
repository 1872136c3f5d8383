"""Learning curves of a training run from its metrics.jsonl: train loss/accuracy and eval accuracy.

.venv/bin/python results/foundation/plot_demo.py RUN_DIR OUT.png
"""

import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, '.')
from jaxland.output import metrics  # noqa: E402


def main(run_dir: str, out: str) -> None:
  records = metrics.read_jsonl(run_dir)
  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
  for key, ax in (('train/loss', ax_loss), ('train/accuracy', ax_acc)):
    steps, values = metrics.series(records, key)
    ax.plot(steps, values, label=key, lw=1)
  for key in ('test/loss', 'val/loss'):
    steps, values = metrics.series(records, key)
    if len(steps):
      ax_loss.plot(steps, values, 'o-', label=key)
  for key in ('test/accuracy', 'val/accuracy'):
    steps, values = metrics.series(records, key)
    if len(steps):
      ax_acc.plot(steps, values, 'o-', label=key)
  for ax, label in ((ax_loss, 'cross-entropy'), (ax_acc, 'accuracy')):
    ax.set_xlabel('step')
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle(run_dir)
  fig.tight_layout()
  fig.savefig(out, dpi=110)


if __name__ == '__main__':
  main(*sys.argv[1:3])
