"""Process-wide start-up settings: jax's persistent compilation cache, and clu without TensorFlow.

Both are about the seconds before a run's first step, both are idempotent and cheap, and both must
run early: `enable_compilation_cache()` before jax compiles anything (main.py), and
`clu_without_tensorflow()` before anything imports clu.metric_writers (clu.periodic_actions does).

The compilation cache lives in $JAXLAND_CACHE_DIR, else ~/.cache/jaxland/jax; JAXLAND_CACHE_DIR=''
turns it off. It grows with every new program (a few MB per model and batch shape; no eviction,
which would need the filelock package) and may be deleted at any time. jax treats the folder as
trusted code (whoever can write there can run code in your process), so it is created private to
the user and should not be shared.
"""

import os
import sys
import types

CACHE_DIR_ENV = 'JAXLAND_CACHE_DIR'
DEFAULT_CACHE_DIR = os.path.join('~', '.cache', 'jaxland', 'jax')
# Programs that take at least this long to compile are cached: all of them, so that a second
# identical run compiles nothing. jax's default (1 s) skips most programs of a small CPU run (the
# 1-epoch Fashion-MNIST MLP compiles 19, two of them over 1 s, 17 at 0.01-0.04 s each).
MIN_COMPILE_SECS = 0.0
CLU_SUMMARY_WRITER = 'clu.metric_writers.summary_writer'


def compilation_cache_dir() -> str | None:
  """$JAXLAND_CACHE_DIR (empty: no cache), else ~/.cache/jaxland/jax, as an absolute path."""
  value = os.environ.get(CACHE_DIR_ENV, DEFAULT_CACHE_DIR)
  return os.path.abspath(os.path.expanduser(value)) if value else None


def enable_compilation_cache(cache_dir: str | None = None) -> str | None:
  """Turns on jax's persistent compilation cache, so a rerun loads its programs instead of
  compiling them; returns the folder (`cache_dir`, else compilation_cache_dir()), or None when
  JAXLAND_CACHE_DIR='' turns the cache off.

  Call it before the first compilation. A second call with the same folder does nothing; a call
  after jax has compiled (with another folder or none) takes effect for later compilations.
  """
  path = os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else compilation_cache_dir()
  if path is None:
    return None
  import jax
  from jax.experimental.compilation_cache import compilation_cache

  settings = {
    'jax_compilation_cache_dir': path,
    'jax_persistent_cache_min_compile_time_secs': MIN_COMPILE_SECS,
    'jax_persistent_cache_min_entry_size_bytes': -1,  # Any size (no filesystem-specific floor).
  }
  if all(getattr(jax.config, key) == value for key, value in settings.items()):
    return path
  os.makedirs(path, mode=0o700, exist_ok=True)
  for key, value in settings.items():
    jax.config.update(key, value)
  compilation_cache.reset_cache()  # jax decides once per process whether to use a cache: again.
  return path


# How programs that run once per run or once an epoch (initialisations, an epoch's batch order)
# are compiled on the CPU: LLVM at -O1, which compiles them 2-3x faster than XLA's default -O3
# (bench/init_compile.py, results/foundation/bench_init_compile.txt) and gives the same bits
# (tests/test_models.py and tests/test_data.py compare against -O3). Hot paths keep the default.
ONE_SHOT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 1}


def run_once(fn, *args):
  """jax.jit(fn)(*args) for a program called once (an init): compiled with
  ONE_SHOT_COMPILER_OPTIONS on the CPU. Under a trace (a population's vmapped init) it is part of
  the outer program, compiled with it."""
  import jax

  jitted = jax.jit(fn)
  if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
    return jitted(*args)
  return compiled_cold(jitted, *args)(*args)


def compiled_cold(jitted, *args):
  """`jitted` (a jax.jit function) compiled for `args` with ONE_SHOT_COMPILER_OPTIONS on the CPU:
  for a program whose compile costs more than its runs. Call the result with the non-static
  arguments only."""
  import jax

  options = ONE_SHOT_COMPILER_OPTIONS if jax.default_backend() == 'cpu' else None
  return jitted.lower(*args).compile(options)


def clu_without_tensorflow() -> None:
  """Lets `import clu.metric_writers` (and clu.periodic_actions) skip TensorFlow.

  clu's package imports its TensorFlow summary writer at load, which imports TensorFlow: half of
  jaxland's import time, and absent on GPU images. jaxland writes TensorBoard files without it
  (output/metrics.py), so this puts a stand-in for that one module in sys.modules: its
  SummaryWriter builds clu's real one on first use (importing TensorFlow only then), so clu's API
  stays whole. Does nothing once clu.metric_writers is imported.
  """
  if CLU_SUMMARY_WRITER in sys.modules or 'clu.metric_writers' in sys.modules:
    return
  module = types.ModuleType(CLU_SUMMARY_WRITER, 'Stand-in from jaxland.runtime: TF on first use.')
  module.SummaryWriter = _TensorFlowSummaryWriter
  sys.modules[CLU_SUMMARY_WRITER] = module


class _TensorFlowSummaryWriter:
  """clu's TensorFlow SummaryWriter, imported when the first one is built."""

  def __new__(cls, *args, **kwargs):
    from clu.metric_writers.tf import summary_writer

    return summary_writer.SummaryWriter(*args, **kwargs)
