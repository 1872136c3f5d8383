"""Seed 004, steps 1-2: a ~100k-param ResNet on CIFAR-10 saved densely, then Hessian spectra.

Step 1 (training; three runs with the same initial weights, init_seed, and the same batch order
and augmentation, data_seed; every run saves its params every 50 steps under trajectory/, each
epoch's example order under batch_order/, and a checkpoint at every epoch end, all kept):
  run=main  SGD momentum 0.9, coupled L2 5e-4, lr 0.1 with drops x0.1 at epochs 70 and 105
  run=low1  the same without LR drops, constant lr 0.01  (main's middle LR)
  run=low2  the same without LR drops, constant lr 0.001 (main's final LR)
ResNet-20 at width 10 (105,940 params), batch 128, 45,000 train / 5,000 val, crop + flip,
140 epochs = 49,140 steps (seed: 48,800).
Step 2 (`spectrum` argument): the task config for that run's spectra at steps 0, 2,106 (6 epochs;
"a few iterations after"), 20,007 (57 epochs, middle) and 49,140 (end), all epoch ends, so exact
checkpoints with their BatchNorm statistics (BN in eval mode): top-50 eigenpairs (Lanczos, 100
steps), SLQ density (10 x 80) and Hutchinson trace (100) of the cross-entropy on all 45,000 train
examples, without augmentation and without the L2 term (its Hessian is 5e-4 I on top).

Commands (launch/quadratic_landscape.sh runs all six; runs land in runs/quadratic_landscape/):
  python -m jaxland.main --config=configs/quadratic_landscape.py:run=main \
    --workdir=runs/quadratic_landscape/main
  python -m jaxland.main --config=configs/quadratic_landscape.py:run=main,spectrum \
    --workdir=runs/quadratic_landscape/main      # writes runs/.../main/spectrum/<step>/
  (run=low1 / run=low2 alike). Add `jpeg75` for the offline CIFAR-10 JPEG copy
  ($JAXLAND_DATA_DIR, reported as cifar10_jpeg75), `smoke` for a CPU check (resnet8 on 512
  images, 3 epochs of 8 steps; spectra at steps 0, 8, 16, 24 on 128 examples: about a minute
  on 2 CPU cores).
Expect (GPU): main about 90-91% test accuracy (cifar10); training about 1 h on one H100;
spectra: one HVP over 45k examples costs about 3 gradient epochs, so ~1,000 HVPs per step.
"""

import ml_collections

from configs import common, default
from jaxland import spectrum

RUNS = {'main': 0.1, 'low1': 0.01, 'low2': 0.001}  # Initial (for low*: constant) LR.
DROP_EPOCHS = (70, 105)


def get_config(arg=None):
  args = common.parse_arg(arg, run='main', spectrum=False, jpeg75=False, smoke=False)
  if args.run not in RUNS:
    raise ValueError(f'run={args.run!r}; choose from {sorted(RUNS)}')
  config = default.get_config()
  config.seed = 0
  config.init_seed = 0  # Same initial weights in every run ...
  config.data_seed = 0  # ... and the same batches and augmentation.
  common.cifar10_data(config, args.jpeg75, batch_size=128, val_size=5000)
  config.model = ml_collections.ConfigDict(
    {'name': 'resnet20', 'width': 10, 'bn_momentum': 0.9, 'dtype': 'float32'}
  )
  config.optim.learning_rate = RUNS[args.run]
  config.optim.momentum = 0.9
  config.optim.weight_decay = 5e-4
  config.train.num_epochs = 140
  config.train.log_every_steps = 100
  config.train.trajectory_every_steps = 50
  config.train.save_batch_order = True
  config.train.checkpoint_every_epochs = 1
  config.train.keep_checkpoints = 1000  # Every epoch end: exact BatchNorm statistics for spectra.
  if args.smoke:
    common.smoke(config, model='resnet8')
    config.data.train_subset, config.data.val_size = 512, 128  # The subset is taken after val.
    config.train.num_epochs, config.train.max_steps = 3, 24  # 8 steps per epoch.
    config.train.trajectory_every_steps = 4
  if args.run == 'main':
    config.optim.schedule.name = 'piecewise'
    config.optim.schedule.boundaries_epochs = (1, 2) if args.smoke else DROP_EPOCHS
    config.optim.schedule.scales = (0.1, 0.1)
  if args.spectrum:
    return spectrum_config(config, args.smoke)
  return config


def spectrum_config(train_config, smoke: bool):
  """The `spectrum` task for this run (its workdir is the run's, so checkpoint stays '')."""
  config = train_config
  config.task = 'spectrum'
  config.spectrum = spectrum.defaults()
  s = config.spectrum
  s.epochs = (0, 1, 2, 3) if smoke else (0, 6, 57, config.train.num_epochs)
  s.num_examples = 128 if smoke else 0
  s.batch_size = 128 if smoke else 1000
  s.top_k, s.bottom_k = (3, 1) if smoke else (50, 10)
  s.lanczos_steps = 8 if smoke else 100
  s.slq_probes, s.slq_steps = (1, 8) if smoke else (10, 80)
  s.trace_probes = 2 if smoke else 100
  return config
