"""Seed 004's interventions in the eigenbasis, on the model of configs/landscape.py.

Run:    python -m jaxland.main --config=configs/intervene.py --workdir=runs/quadratic/mlp
        (same workdir as the landscape task: the trained run in <workdir>/train is reused;
        model=cnn for the small ConvNet). Add PYTHONPATH with blackjax for the HMC part (optional).
Writes <workdir>/intervene/: snap/noise/precond/batch1/hmc/lr .csv, summary.json, figures, and
the LR experiment's runs under intervene/lr_runs/.
Expect (MLP, ~1-2 min once trained, plus ~1 min for the three LR runs): snapping the top 16
directions at the end of the peak-LR phase recovers about half of the annealing's train-loss gain;
noise bands change test accuracy by < 0.2%; Bayesian eigen-LRs keep test accuracy ~1.4% above
plain SGD at the same LR; see results/quadratic/README.md.
`:smoke` runs everything on sklearn digits in about a minute.
"""

from configs import landscape


def get_config(arg=None):
  config = landscape.base(arg)
  config.task = 'intervene'
  # Snap at the checkpoint and at the last saved point before the LR drop (still at high LR).
  config.intervene.snap_steps = (-1, -2)
  config.intervene.temperatures = (0.1, 1.0, 10.0)  # Eigen-LRs for three posterior temperatures.
  return config
