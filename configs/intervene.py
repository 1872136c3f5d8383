"""Seed 004's interventions in the eigenbasis, on the model of configs/landscape.py.

Run:    python -m jaxland.main --config=configs/intervene.py --workdir=runs/quadratic/mlp
        (same workdir as the landscape task: the trained run in <workdir>/train is reused;
        model=cnn for the small ConvNet). Add PYTHONPATH with blackjax for the HMC part (optional).
Writes <workdir>/intervene/: snap/noise/precond/batch1/hmc/lr .csv, summary.json, figures, and
the LR experiment's runs under intervene/lr_runs/.
Expect (MLP, ~5 min on 2 busy cores): snapping the top directions at the end of training changes
test accuracy by well under 1%; noise in the top band is tolerated at a much larger level than
isotropic noise; the runs at higher peak LR end at a lower train loss.
`:smoke` runs everything on sklearn digits in about a minute.
"""

from configs import landscape


def get_config(arg=None):
  config = landscape.base(arg)
  config.task = 'intervene'
  boundary = config.optim.schedule.boundaries_steps[0]
  every = config.train.trajectory_every_steps
  # Snap at the checkpoint and at the last saved point before the LR drop (still at high LR).
  config.intervene.snap_steps = (-1, (boundary // every) * every)
  return config
