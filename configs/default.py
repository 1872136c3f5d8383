"""The core settings (task, seeds, data, model, optim, train, eda), with defaults and meanings.

A research line owns its own section's defaults (jaxland.distance / lr / spectrum / landscape /
landscape.intervene .defaults()); an experiment config adds the sections it uses.
Run: python -m jaxland.main --config=configs/default.py --workdir=runs/default
Expect: a 2-epoch MLP baseline on Fashion-MNIST (configs/fashion_mlp.py is the tuned demo).
"""

import ml_collections

from jaxland.train import population


def get_config():
  """The core config: every key the core reads (research lines add their own sections)."""
  config = ml_collections.ConfigDict()
  config.task = 'train'  # What runs: a name in jaxland.tasks.TASKS.
  config.seed = 0  # Master seed; init_seed / data_seed default to it.
  config.init_seed = -1  # Seed of the initial weights (-1: use `seed`).
  config.data_seed = -1  # Seed of batch order, augmentation and dropout (-1: use `seed`).
  config.resume = True  # Continue from the workdir's last checkpoint when there is one.
  config.overwrite = False  # Allow a workdir that holds a different config.
  config.checkpoint = ''  # Analysis tasks: the run to read, '<run dir>[:step]' ('' = workdir).

  config.data = ml_collections.ConfigDict()
  # mnist | fashion_mnist | cifar10 | cifar100 | image_folder | digits | synthetic
  config.data.name = 'fashion_mnist'
  config.data.data_dir = ''  # TFDS data dir ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets).
  config.data.manual_dir = ''  # Original files for offline preparation ('' = look in known places).
  config.data.folder = (
    ''  # image_folder only: split/class/image tree, or a .tar/.tar.xz/.zip of one.
  )
  config.data.folder_name = ''  # image_folder only: the name results report (e.g. cifar10_jpeg75).
  config.data.fallback = (
    ''  # Dataset to use, saying so loudly, when `name` can't be had offline ('' = fail).
  )
  config.data.val_size = 0  # Examples held out of train as the validation split (0 = none).
  config.data.train_subset = 0  # Use only the first N training examples (0 = all).
  config.data.test_subset = 0  # Use only the first N test examples (0 = all).
  config.data.batch_size = 128  # Global train batch (split across devices).
  config.data.eval_batch_size = 1000  # Global eval batch; the last one is padded and masked.
  config.data.augment = ml_collections.ConfigDict()
  config.data.augment.crop = False  # Random crop after padding by `pad` pixels ...
  config.data.augment.pad = 4
  config.data.augment.pad_mode = 'zeros'  # ... with zeros | reflect (airbench's translate).
  config.data.augment.flip = False  # Horizontal flip ...
  config.data.augment.flip_mode = 'random'  # ... random per example | alternating (airbench).
  config.data.synthetic = ml_collections.ConfigDict()  # synthetic only (benchmarks).
  config.data.synthetic.num_train = 2048
  config.data.synthetic.num_test = 512
  config.data.synthetic.image_shape = (32, 32, 3)
  config.data.synthetic.num_classes = 10

  config.model = ml_collections.ConfigDict()  # Passed to jaxland.models.get_model(**config.model).
  config.model.name = 'mlp'  # mlp | convnet | resnet20/32/44/56/110 | resnet18/34 | mobilenetv2
  config.model.hidden_sizes = (100,)
  config.model.activation = 'relu'
  config.model.dropout = 0.0
  config.model.batch_norm = False
  config.model.bn_momentum = 0.9  # flax decay: PyTorch momentum 0.1 == flax 0.9.
  config.model.dtype = 'float32'  # Compute dtype: float32 | bfloat16 (params stay float32).

  config.optim = ml_collections.ConfigDict()
  config.optim.name = 'sgd'  # sgd | adam | adamw
  config.optim.learning_rate = 0.01  # Base (peak) learning rate the schedule scales.
  config.optim.momentum = 0.9  # sgd only (0 = plain SGD).
  config.optim.nesterov = False
  config.optim.b1 = 0.9  # adam / adamw.
  config.optim.b2 = 0.999
  config.optim.eps = 1e-8
  config.optim.weight_decay = 0.0  # Coupled L2 as in PyTorch: wd * param added to the gradient.
  config.optim.decoupled_weight_decay = 0.0  # Decoupled decay (AdamW style), lr-scaled.
  config.optim.grad_clip_norm = 0.0  # Clip the global gradient norm (0 = off).
  # Parameter groups, by a regex searched in the param path ('group0_norm1/bias'):
  config.optim.lr_scales = ()  # ((pattern, s), ...): lr x s, weight decay not (airbench's 64).
  config.optim.freeze = ()  # ((pattern, epochs), ...): no updates from that epoch on (0: never).
  config.optim.lookahead = ml_collections.ConfigDict()  # EMA of the weights copied back into
  config.optim.lookahead.every_steps = 0  # them every k steps (0 = off; airbench: 5) ...
  config.optim.lookahead.start_epochs = 3.0  # ... from this epoch on ...
  config.optim.lookahead.decay_base = 0.95  # ... with decay base ** k x (step / total) ** pow.
  config.optim.lookahead.decay_pow = 3.0
  config.optim.muon = ml_collections.ConfigDict()  # Muon (jaxland/optim/muon.py) for the
  config.optim.muon.pattern = ''  # params this regex matches ('' = off); the rest take optim.name.
  config.optim.muon.learning_rate = 0.24  # Peak; it follows the schedule's shape (airbench: 0.24).
  config.optim.muon.momentum = 0.6
  config.optim.muon.nesterov = True
  config.optim.muon.ns_steps = 3  # Newton-Schulz iterations ...
  config.optim.muon.ns_dtype = 'bfloat16'  # ... in this dtype (bfloat16 | float32).
  config.optim.muon.normalize = True  # Renormalize each weight to ||w|| = sqrt(outputs) first.
  config.optim.schedule = ml_collections.ConfigDict()
  config.optim.schedule.name = 'constant'  # See jaxland.optim.schedules.SCHEDULES.
  config.optim.schedule.warmup_epochs = 0.0  # Linear warm-up from 0 before the schedule.
  config.optim.schedule.decay_every_epochs = 0  # step: multiply by gamma every k epochs.
  config.optim.schedule.gamma = 0.1
  config.optim.schedule.boundaries_steps = ()  # piecewise: iteration boundaries (or, when
  config.optim.schedule.boundaries_epochs = ()  # empty, these epochs, fractions allowed) ...
  config.optim.schedule.scales = ()  # ... and the factor applied at each boundary.
  config.optim.schedule.t0_epochs = 0  # cosine_restarts: first period (PyTorch T_0) ...
  config.optim.schedule.t_mult = 1  # ... period multiplier (T_mult) ...
  config.optim.schedule.eta_min = 0.0  # ... and minimum LR (also cosine's floor).
  config.optim.schedule.restart_every_epochs = 0  # Restart any schedule every R epochs (0 = never).
  config.optim.schedule.pct_start = 0.3  # onecycle (PyTorch OneCycleLR arguments).
  config.optim.schedule.div_factor = 25.0
  config.optim.schedule.final_div_factor = 1e4
  config.optim.schedule.anneal = 'cos'  # onecycle phases: cos | linear.
  config.optim.schedule.three_phase = False
  config.optim.schedule.base_lr = (
    1e-3  # cyclic (PyTorch CyclicLR): lower LR; upper is learning_rate.
  )
  config.optim.schedule.step_size_up = 2000  # cyclic: iterations per half cycle ...
  config.optim.schedule.step_size_up_epochs = 0.0  # ... or epochs, when > 0 ...
  config.optim.schedule.cycles = 0  # ... or this many whole cycles over the run, when > 0.
  config.optim.schedule.mode = 'triangular'  # cyclic: triangular | triangular2 | exp_range.
  config.optim.schedule.exp_gamma = 1.0  # cyclic exp_range.
  config.optim.schedule.start_factor = 0.2  # triangle: lr x start_factor at step 0, 1 at
  config.optim.schedule.end_factor = 0.07  # pct_start of the run, end_factor at its end.
  config.optim.schedule.cycle_momentum = False  # onecycle / cyclic: momentum runs inversely.
  config.optim.schedule.base_momentum = 0.85
  config.optim.schedule.max_momentum = 0.95

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 2
  config.train.log_every_steps = 50  # Train metrics every k steps (0 = once per epoch).
  config.train.eval_every_epochs = 1
  config.train.checkpoint_every_epochs = 1
  config.train.keep_checkpoints = 2  # Keep the last K checkpoints (plus the best).
  config.train.best_metric = 'val/accuracy'  # Used for best-checkpoint keeping and early stopping
  #                                           (falls back to test/accuracy without a val split).
  config.train.early_stopping_patience = 0  # Epochs without improvement before stopping (0 = off).
  config.train.trajectory_every_steps = (
    0  # Save params every k steps to workdir/trajectory (0 = off).
  )
  config.train.save_batch_order = False  # Save each epoch's example order (for replay studies).
  config.train.max_steps = 0  # Stop after this many steps (0 = num_epochs); for smoke tests.
  config.train.label_smoothing = 0.0  # Targets (1 - s) one-hot + s / classes (0 = off).
  config.train.tta = 0  # Test-time augmentation of every eval: 0 none | 1 mirror | 2 + translate.
  config.train.target_accuracy = 0.0  # Record the wall time test/accuracy first reaches this.
  config.train.diverge_factor = 100.0  # Stop as diverged when a logged train loss exceeds this
  #                                     factor x the first logged one (0 = only non-finite).

  # Many runs in one jitted step: the values members take (jaxland/train/population.py).
  config.population = population.defaults()

  config.eda = ml_collections.ConfigDict()  # task 'eda' (jaxland/data/eda.py): data exploration.
  config.eda.num_samples = 32  # Images in the sample grid.
  config.eda.split = 'train'  # Split the samples come from: train | val | test.

  return config
