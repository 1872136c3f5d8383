"""Timing helpers for bench/ scripts: interleaved repeats, medians and ratios from one run.

Benchmarks print ratios measured in the same process (absolute times on shared machines are noise).
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import jax  # noqa: E402


def time_calls(fn, n: int) -> float:
  """Seconds per call of `fn()` (which returns device arrays), over n calls, synchronised once."""
  out = fn()
  jax.block_until_ready(out)
  t0 = time.perf_counter()
  for _ in range(n):
    out = fn()
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / n


def interleaved(variants: dict, n: int, rounds: int = 5) -> dict:
  """Median seconds per call of each variant, timed in alternating rounds to share the noise."""
  times = {name: [] for name in variants}
  for fn in variants.values():  # warm-up and compile
    time_calls(fn, 1)
  for _ in range(rounds):
    for name, fn in variants.items():
      times[name].append(time_calls(fn, n))
  return {name: statistics.median(t) for name, t in times.items()}


def machine() -> str:
  """A one-line description of where the numbers came from."""
  cpu = 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  platform = f'{jax.devices()[0].platform} x{jax.device_count()}'
  return f'{platform} ({cpu}, {os.cpu_count()} cores), jax {jax.__version__}'
