"""config.spectrum: its defaults and checks, and the validated Options the computation reads."""

import dataclasses

import ml_collections

from jaxland import curvature
from jaxland import validation as v


def defaults() -> ml_collections.ConfigDict:
  """The spectrum section: the task `spectrum` and the training callback (every_steps > 0)."""
  s = ml_collections.ConfigDict()
  s.steps = ()  # Steps to analyse (checkpoint or trajectory file; -1 = latest) ...
  s.epochs = ()  # ... and the ends of these epochs (0 = the initial weights).
  s.num_examples = 5000  # First N training examples in the loss (0 = all: minutes become hours
  #                        on a CPU for 60k examples).
  s.batch_size = 0  # Examples per scan step (0 = data.eval_batch_size; train BN:
  #                   data.batch_size, the batch the BatchNorm statistics use).
  s.kind = 'hessian'  # hessian | ggn (Gauss-Newton, positive semi-definite).
  s.bn_mode = 'eval'  # eval (running stats) | train (per-batch stats).
  s.block = ''  # Parameter-group prefix ('Dense_0') for a block spectrum ('' = all).
  s.float64 = False  # Params, data and Lanczos in float64 (jax x64 in the task).
  s.precision = 'highest'  # Matmul precision of the products: highest | high | default (on GPUs
  #                          'default' is TF32, ~1e-3 relative error; CPUs are exact either way).
  s.top_k = 20  # Top eigenpairs kept (eigenvectors saved) ...
  s.bottom_k = 5  # ... and the most negative eigenvalues (values only).
  s.lanczos_steps = 80  # Krylov dimension (one curvature-vector product each).
  s.slq_probes = 8  # Density: SLQ probes (0 = no density) ...
  s.slq_steps = 60  # ... of this many Lanczos steps each ...
  s.density_sigma = 0.0  # ... broadened by this (0 = (max - min node) / 200).
  s.trace_probes = 50  # Hutchinson probes for the trace (0 = off).
  s.seed = 0  # Start vector and probes.
  s.unroll = 0  # Scan unroll over batches (0 = full on CPU for <= 32 batches).
  s.out_dir = ''  # Output folder under the workdir ('' = spectrum[_kind...]).
  s.plots = True  # PNGs per step and across steps.
  s.every_steps = 0  # Training callback: spectrum every k steps and at 0 (0 = off) ...
  s.callback_save = True  # ... also writing workdir/spectrum/<step>/spectrum.npz.
  return s


@dataclasses.dataclass(frozen=True)
class Options:
  """The validated config.spectrum section (see `defaults` for each key)."""

  steps: tuple
  epochs: tuple
  num_examples: int
  batch_size: int
  kind: str
  bn_mode: str
  block: str
  float64: bool
  precision: str
  top_k: int
  bottom_k: int
  lanczos_steps: int
  slq_probes: int
  slq_steps: int
  density_sigma: float
  trace_probes: int
  seed: int
  unroll: int
  out_dir: str
  every_steps: int
  callback_save: bool
  plots: bool


INTS_FROM_0 = ('num_examples', 'batch_size', 'bottom_k', 'slq_probes', 'seed', 'unroll')
INTS_FROM_1 = ('top_k', 'lanczos_steps', 'slq_steps')


def _steps(s) -> tuple:
  return tuple(s.steps) if isinstance(s.steps, (list, tuple)) else (s.steps,)


def validate_section(config, num_devices: int = 1) -> None:
  """ConfigError for the first bad spectrum setting."""
  del num_devices
  s = config.spectrum
  v.choice(config, 'spectrum.kind', curvature.KINDS)
  v.choice(config, 'spectrum.bn_mode', curvature.BN_MODES)
  v.choice(config, 'spectrum.precision', curvature.PRECISIONS)
  if any(isinstance(x, bool) or not isinstance(x, int) or x < -1 for x in _steps(s)):
    v.fail('spectrum.steps', s.steps, 'a tuple of training steps (ints >= 0; -1 = latest)')
  if any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in s.epochs):
    v.fail('spectrum.epochs', tuple(s.epochs), 'a tuple of epochs (ints >= 0)')
  for key in (*INTS_FROM_0, 'every_steps', 'trace_probes'):
    v.integer(config, f'spectrum.{key}')
  for key in INTS_FROM_1:
    v.integer(config, f'spectrum.{key}', 1)
  if s.trace_probes == 1:
    v.fail('spectrum.trace_probes', 1, 'use 0 (off) or >= 2 (a standard error needs two samples)')
  if s.top_k > s.lanczos_steps or s.bottom_k > s.lanczos_steps:
    v.fail(
      'spectrum.top_k', s.top_k, f'top_k and bottom_k must be <= lanczos_steps ({s.lanczos_steps})'
    )
  v.number(config, 'spectrum.density_sigma')


def options(config) -> Options:
  """Options from a validated config.spectrum."""
  s = config.spectrum
  return Options(
    steps=tuple(sorted(set(_steps(s)))),
    epochs=tuple(s.epochs),
    kind=s.kind,
    bn_mode=s.bn_mode,
    block=str(s.block),
    float64=bool(s.float64),
    precision=str(s.precision),
    density_sigma=float(s.density_sigma),
    trace_probes=int(s.trace_probes),
    out_dir=str(s.out_dir),
    callback_save=bool(s.callback_save),
    plots=bool(s.plots),
    every_steps=int(s.every_steps),
    **{k: int(s[k]) for k in (*INTS_FROM_0, *INTS_FROM_1)},
  )
