"""Every jaxland setting, with its default and meaning. Experiments import and override this.

Run: python -m jaxland.main --config=configs/default.py --workdir=runs/default
Expect: the Fashion-MNIST MLP of configs/fashion_mlp.py (about 85% test accuracy after 2 epochs).
"""

import ml_collections


def get_config():
  """Returns the full default config; every key a run can read is present here."""
  config = ml_collections.ConfigDict()
  config.task = 'train'  # What runs: see jaxland.main.TASKS.
  config.seed = 0  # Master seed; init_seed / data_seed default to it.
  config.init_seed = -1  # Seed of the initial weights (-1: use `seed`).
  config.data_seed = -1  # Seed of batch order, augmentation and dropout (-1: use `seed`).
  config.resume = True  # Continue from the workdir's last checkpoint when there is one.
  config.overwrite = False  # Allow a workdir that holds a different config.

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
  config.data.augment.crop = False  # Random crop after zero padding by `pad` pixels.
  config.data.augment.pad = 4
  config.data.augment.flip = False  # Random horizontal flip.
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
  config.optim.schedule = ml_collections.ConfigDict()
  config.optim.schedule.name = 'constant'  # See jaxland.optim.schedules.SCHEDULES.
  config.optim.schedule.warmup_epochs = 0.0  # Linear warm-up from 0 before the schedule.
  config.optim.schedule.decay_every_epochs = 0  # step: multiply by gamma every k epochs.
  config.optim.schedule.gamma = 0.1
  config.optim.schedule.boundaries_steps = ()  # piecewise: iteration boundaries ...
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
  config.optim.schedule.step_size_up = 2000  # cyclic: iterations per half cycle.
  config.optim.schedule.mode = 'triangular'  # cyclic: triangular | triangular2 | exp_range.
  config.optim.schedule.exp_gamma = 1.0  # cyclic exp_range.
  config.optim.schedule.cycle_momentum = False  # onecycle / cyclic: momentum runs inversely.
  config.optim.schedule.base_momentum = 0.85
  config.optim.schedule.max_momentum = 0.95

  config.repulsion = ml_collections.ConfigDict()
  config.repulsion.enabled = False  # Off: anchors are still kept ("virtual") to log the drift.
  config.repulsion.mode = 'sum'  # sum | merged | l2
  config.repulsion.strength = 1.0
  config.repulsion.width = 10.0  # Kernel width sigma (the thesis' width^2 = 100).
  config.repulsion.capacity = 4  # Anchor slots (fixed, so adding an anchor never recompiles).
  config.repulsion.anchor_epochs = ()  # Set an anchor after these epochs ...
  config.repulsion.anchor_every = 0  # ... or every k epochs ...
  config.repulsion.anchor_from = ''  # ... or from an Orbax checkpoint: '<run dir>[:step]'.
  config.repulsion.mask = 'all'  # Which params count in the distance: all | kernels.
  config.repulsion.start_from_anchor = False  # Start at anchor_from's weights (fresh momentum).
  # Model snapshots (params + batch_stats, workdir/snapshots/epoch_XXXX.npz) for ensembles: at every
  # anchor, and after these epochs ... or every k epochs (e.g. the warm-restart period T_0).
  config.repulsion.snapshot_epochs = ()
  config.repulsion.snapshot_every = 0
  config.repulsion.log_ensemble = True  # Log ensemble/* (snapshots + current model) each epoch.
  config.repulsion.ensemble_weights = ()  # task ensemble: weights of (snapshots..., final).

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 2
  config.train.log_every_steps = 50
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

  config.lr_range = ml_collections.ConfigDict()  # task lr_range (jaxland/lr_range.py).
  config.lr_range.param = 'learning_rate'  # The injected hyperparameter swept (or momentum, ...).
  config.lr_range.start = 1e-5  # First and last value of the sweep ...
  config.lr_range.end = 10.0
  config.lr_range.num_steps = 300  # ... over this many iterations (one value each) ...
  config.lr_range.spacing = 'log'  # ... spaced log | linear.
  config.lr_range.eval_every = 10  # Held-out loss / accuracy every M iterations (0 = off) ...
  config.lr_range.eval_size = 1000  # ... on the first N of val (test when no val; 0 = all).
  config.lr_range.diverge_factor = 4.0  # Stop when smoothed loss > factor * best (0 = only NaN).
  config.lr_range.smoothing = 0.98  # EMA beta of the smoothed loss (bias-corrected).
  config.lr_range.overlay = ''  # '' | batch_size | weight_decay | momentum: one test per value ...
  config.lr_range.overlay_values = ()  # ... of these, overlaid in overlay.png.
  config.lr_range.momentum_grid = ()  # Short runs at constant optim.learning_rate, these momenta.
  config.lr_range.grid_steps = 0  # Their length in iterations (0 = num_steps).
  config.lr_range.min_lr_div = 4.0  # Recommended min_lr = max_lr / this (seed 001: 3..4).

  config.eda = ml_collections.ConfigDict()  # task 'eda' (jaxland/eda.py): data exploration.
  config.eda.num_samples = 32  # Images in the sample grid.
  config.eda.split = 'train'  # Split the samples come from: train | val | test.

  # task 'spectrum' (jaxland/spectrum.py) and its training callback: curvature spectra of a run.
  if 'checkpoint' not in config:
    config.checkpoint = ''  # Analysis tasks: the run to read, '<run dir>[:step]' ('' = workdir).
  config.spectrum = ml_collections.ConfigDict()
  config.spectrum.steps = ()  # Steps to analyse (checkpoint or trajectory file; -1 = latest).
  config.spectrum.num_examples = 0  # First N training examples in the loss (0 = all).
  config.spectrum.batch_size = 0  # Examples per scan step (0 = data.eval_batch_size; train BN:
  #                                 data.batch_size, the batch the BatchNorm statistics use).
  config.spectrum.kind = 'hessian'  # hessian | ggn (Gauss-Newton, positive semi-definite).
  config.spectrum.bn_mode = 'eval'  # eval (running stats) | train (per-batch stats).
  config.spectrum.block = ''  # Parameter-group prefix ('Dense_0') for a block spectrum ('' = all).
  config.spectrum.float64 = False  # Params, data and Lanczos in float64 (jax x64 in the task).
  config.spectrum.precision = 'highest'  # Matmul precision of the products: highest | high |
  # default (on GPUs 'default' is TF32, ~1e-3 relative error; CPUs are exact either way).
  config.spectrum.top_k = 20  # Top eigenpairs kept (eigenvectors saved) ...
  config.spectrum.bottom_k = 5  # ... and the most negative eigenvalues (values only).
  config.spectrum.lanczos_steps = 80  # Krylov dimension (one curvature-vector product each).
  config.spectrum.slq_probes = 8  # Density: SLQ probes (0 = no density) ...
  config.spectrum.slq_steps = 60  # ... of this many Lanczos steps each ...
  config.spectrum.density_sigma = 0.0  # ... broadened by this (0 = (max - min node) / 200).
  config.spectrum.trace_probes = 50  # Hutchinson probes for the trace (0 = off).
  config.spectrum.seed = 0  # Start vector and probes.
  config.spectrum.unroll = 0  # Scan unroll over batches (0 = full on CPU for <= 32 batches).
  config.spectrum.out_dir = ''  # Output folder under the workdir ('' = spectrum[_kind...]).
  config.spectrum.plots = True  # PNGs per step and across steps.
  config.spectrum.every_steps = 0  # Training callback: spectrum every k steps and at 0 (0 = off)
  config.spectrum.callback_save = True  # ... also writing workdir/spectrum/<step>/spectrum.npz.

  # task 'landscape' (jaxland/landscape/): line searches, fits, spectral dynamics, per-example
  # gradients of the run config.checkpoint ('' = --workdir when it holds checkpoints, else this
  # config is trained first into <workdir>/train). Outputs: <workdir>/<out_dir>.
  config.landscape = ml_collections.ConfigDict()
  config.landscape.out_dir = ''  # '' = 'landscape'.
  # lines | random | minibatch | dense | dynamics | trajectory | grad_noise | per_example
  config.landscape.probes = ('lines', 'random', 'minibatch', 'dense', 'dynamics', 'trajectory')
  config.landscape.probes += ('grad_noise', 'per_example')
  config.landscape.spectrum = ''  # A spectrum.npz to take the top eigenpairs from ('' = compute).
  config.landscape.kind = 'hessian'  # hessian | ggn.
  config.landscape.num_top = 16  # Top eigenpairs probed ...
  config.landscape.lanczos_steps = 40  # ... out of this many Lanczos steps (all Ritz pairs kept).
  config.landscape.num_bulk = 4  # Interior Ritz vectors probed as "bulk" directions ...
  config.landscape.num_bottom = 2  # ... and the lowest (most negative) ones.
  config.landscape.trace_probes = 20  # Hutchinson probes for tr(H) (the bulk's mean eigenvalue).
  config.landscape.curvature_examples = 0  # First N train examples in the loss (0 = all).
  config.landscape.batch_size = 1000  # Examples per batch in every full-data evaluation.
  config.landscape.line_points = 41  # Grid of each line search: 0 and +-radius * geomspace(
  config.landscape.line_min_frac = 0.01  # min_frac, 1, (points - 1) / 2) ...
  config.landscape.line_rise = 1.0  # ... half-width where (lambda/2) t^2 reaches this loss rise ...
  config.landscape.line_min_radius = 0.05  # ... clipped to [min, max] (units of |v| = 1).
  config.landscape.line_max_radius = 5.0
  config.landscape.t_chunk = 32  # t values evaluated together (vmapped) per data batch.
  config.landscape.inner_window = 0.05  # Fitted curvature: quadratic fit on |t| <= this * radius.
  config.landscape.quad_tol = 0.1  # Quadratic holds while |L - Q| <= tol * |lambda| t^2 / 2.
  config.landscape.num_random = 6  # Random directions of each kind: gaussian, filter, topk_mix.
  config.landscape.minibatch_sizes = (32, 128, 512)  # Line searches on minibatches of these sizes
  config.landscape.minibatch_repeats = 32  # ... drawn this many times ...
  config.landscape.minibatch_directions = 6  # ... along the first top eigenvectors.
  config.landscape.dense_points = 801  # Dense line searches: points per scale ...
  config.landscape.dense_scales = (1.0, 0.1, 0.01, 0.001)  # ... of the radius ...
  config.landscape.dense_examples = 1000  # ... on the first N train examples.
  config.landscape.num_spectra = 4  # Trajectory points with their own eigenpairs (incl. final).
  config.landscape.tail_fraction = 0.2  # Settling: stationary band from this tail of the path ...
  config.landscape.settle_factor = 3.0  # ... mean +- factor * std.
  config.landscape.grad_noise_batches = 64  # Minibatch gradients (size data.batch_size) sampled.
  config.landscape.per_example_examples = 2000  # Per-example gradients of the first N (0 = all).
  config.landscape.seed = 0

  # task 'intervene' (jaxland/landscape/intervene.py): snap to the quadratic minimum, noise in
  # eigen-bands, eigen-preconditioned SGD, a batch-size-1 epoch, HMC, the LR experiment. Reads the
  # run like 'landscape' and its curvature settings from config.landscape.
  config.intervene = ml_collections.ConfigDict()
  config.intervene.out_dir = ''  # '' = 'intervene'.
  config.intervene.experiments = ('snap', 'noise', 'precond', 'batch1', 'hmc', 'lr')
  config.intervene.snap_steps = (-1,)  # Points snapped: -1 = the checkpoint, else trajectory steps.
  config.intervene.noise_bands = ('top', 'bulk', 'all', 'posterior')
  config.intervene.noise_levels = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)  # Per-direction std grid.
  config.intervene.noise_samples = 8  # Draws per level (single-sample mean and their ensemble).
  config.intervene.epochs = 3  # precond / plain continuation length.
  config.intervene.learning_rate = 0.0  # Their constant LR (0 = config.optim.learning_rate).
  config.intervene.temperatures = (1.0,)  # Bayesian eigen-LR: posterior exp(-N L / T).
  config.intervene.max_scale = 1.0  # Per-direction LR factor capped at this.
  config.intervene.batch1_lr = 1e-4  # Last epoch at batch size 1 with this LR ...
  config.intervene.batch1_examples = 0  # ... over the first N train examples (0 = all).
  config.intervene.hmc_samples = 40  # BlackJAX HMC (optional import): kept samples ...
  config.intervene.hmc_burnin = 10  # ... after this many ...
  config.intervene.hmc_leapfrog = 10  # ... leapfrog steps each ...
  config.intervene.hmc_step_scale = 0.5  # ... step = scale / sqrt(N lambda_max) ...
  config.intervene.hmc_prior_std = 1.0  # ... Gaussian prior N(0, std^2) on every param.
  config.intervene.lr_values = (0.01, 0.03, 0.1)  # LR experiment: same init and batch order ...
  config.intervene.lr_final = 0.001  # ... all annealed to this LR ...
  config.intervene.lr_anneal_fraction = 0.25  # ... for this last fraction of training.
  config.intervene.seed = 0
  return config
