"""config.intervene: the interventions' defaults and checks."""

import ml_collections

from jaxland import validation as v
from jaxland.landscape.intervene.interventions import BANDS

EXPERIMENTS = ('snap', 'noise', 'precond', 'batch1', 'hmc', 'lr')


def defaults() -> ml_collections.ConfigDict:
  """The intervene section: snap to the quadratic minimum, noise in eigen-bands, eigen-
  preconditioned SGD, a batch-size-1 epoch, HMC and the LR experiment (curvature settings come
  from config.landscape)."""
  c = ml_collections.ConfigDict()
  c.out_dir = ''  # '' = 'intervene'.
  c.experiments = EXPERIMENTS
  c.snap_steps = (-1,)  # Points snapped: -1 = the checkpoint, -2 = the last trajectory point
  #                       whose steps all ran at the peak LR, else trajectory steps.
  c.noise_bands = BANDS
  c.noise_levels = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)  # Per-direction std grid.
  c.noise_samples = 8  # Draws per level (single-sample mean and their ensemble).
  c.epochs = 3  # precond / plain continuation length.
  c.learning_rate = 0.0  # Their constant LR (0 = config.optim.learning_rate).
  c.temperatures = (1.0,)  # Bayesian eigen-LR: posterior exp(-N L / T).
  c.max_scale = 1.0  # Per-direction LR factor capped at this.
  c.batch1_lr = 1e-4  # Last epoch at batch size 1 with this LR ...
  c.batch1_examples = 0  # ... over the first N train examples (0 = all).
  c.hmc_samples = 40  # BlackJAX HMC (optional import): kept samples ...
  c.hmc_burnin = 10  # ... after this many ...
  c.hmc_leapfrog = 10  # ... leapfrog steps each ...
  c.hmc_step_scale = 0.5  # ... step = scale / sqrt(N lambda_max) ...
  c.hmc_prior_std = 1.0  # ... Gaussian prior N(0, std^2) on every param.
  c.lr_values = (0.01, 0.03, 0.1)  # LR experiment: same init and batch order ...
  c.lr_final = 0.001  # ... all annealed to this LR ...
  c.lr_anneal_fraction = 0.25  # ... for this last fraction of training.
  c.seed = 0
  return c


def validate_section(config, num_devices: int = 1) -> None:
  """ConfigError for the first bad intervene setting."""
  del num_devices
  c = config.intervene
  v.members(config, 'intervene.experiments', EXPERIMENTS)
  v.members(config, 'intervene.noise_bands', BANDS)
  if any(level < 0 for level in c.noise_levels):
    v.fail('intervene.noise_levels', tuple(c.noise_levels), 'levels must be >= 0')
  if not 0 < c.lr_anneal_fraction < 1:
    v.fail('intervene.lr_anneal_fraction', c.lr_anneal_fraction, 'must lie in (0, 1)')
