"""Timing helpers for bench/ scripts: interleaved repeats, medians and ratios from one run.

Benchmarks print ratios measured in the same process (absolute times on shared machines are noise).
"""

import json
import os
import statistics
import subprocess
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


def rounds_of(variants: dict, rounds: int) -> dict:
  """{name: [seconds, one per round]}: `variants` maps a name to a callable returning seconds per
  step (e.g. time_calls bound to its n); the order rotates each round so load hits all alike."""
  times = {name: [] for name in variants}
  names = list(variants)
  for r in range(rounds):
    for name in names[r % len(names) :] + names[: r % len(names)]:
      times[name].append(variants[name]())
  return times


def load() -> str:
  """The load average now (1, 5, 15 min), for every printed table."""
  return 'load average ' + ', '.join(f'{x:.2f}' for x in os.getloadavg())


TORCH_ENV = 'JAXLAND_TORCH_PYTHON'
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_worker.py')


def torch_python(flag: str = '') -> str:
  """The python of a venv with PyTorch (--torch_python or $JAXLAND_TORCH_PYTHON), or '' with a
  message saying how to get one: torch is never a jaxland dependency."""
  path = flag or os.environ.get(TORCH_ENV, '')
  if path and os.access(path, os.X_OK):
    return path
  print(
    f'# PyTorch side ABSENT: set {TORCH_ENV} (or --torch_python) to a python with torch, e.g. '
    '`python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install '
    '/opt/wheels/torch-*+cpu-*.whl`' + (f' ({path!r} is not executable)' if path else ''),
    flush=True,
  )
  return ''


class TorchWorker:
  """bench/torch_worker.py in a subprocess of `python`, driven one JSON line per request.

  `omp_wait_policy` ('' keeps libgomp's default) is set in its environment: under load the
  default spinning makes torch many times slower, so benches report both settings.
  """

  def __init__(self, python: str, threads: int = 0, device: str = 'cpu', omp_wait_policy=''):
    env = dict(os.environ)
    env.pop('OMP_WAIT_POLICY', None)
    if omp_wait_policy:
      env['OMP_WAIT_POLICY'] = omp_wait_policy
    cmd = [python, WORKER, '--threads', str(threads), '--device', device]
    self.proc = subprocess.Popen(
      cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    self.info = self.call('info')

  def call(self, op: str, **kw) -> dict:
    self.proc.stdin.write(json.dumps({'op': op, **kw}) + '\n')
    self.proc.stdin.flush()
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError(f'torch worker died (exit {self.proc.poll()})')
    reply = json.loads(line)
    if 'error' in reply:
      raise RuntimeError(f'torch worker: {reply["error"]}')
    return reply

  def timer(self, key: str, n: int):
    """A callable returning seconds per step of the model built under `key` (n steps a call)."""
    return lambda: self.call('time', key=key, n=n)['s']

  def close(self):
    if self.proc.poll() is None:
      self.proc.stdin.write(json.dumps({'op': 'quit'}) + '\n')
      self.proc.stdin.close()
      self.proc.wait(timeout=30)


def isa() -> str:
  """', AVX-512', ', AVX2' or '': XLA's kernels, and so the speed and the last bits of a rerun,
  differ between these instruction sets (this project's 2-core VMs come with either)."""
  try:
    with open('/proc/cpuinfo') as f:
      flags = set(next(line for line in f if line.startswith('flags')).split())
  except (OSError, StopIteration):
    return ''
  return ', AVX-512' if 'avx512f' in flags else ', AVX2' if 'avx2' in flags else ''


def machine() -> str:
  """A one-line description of where the numbers came from."""
  cpu = 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      info = f.read().splitlines()
    cpu = next(line.split(':', 1)[1].strip() for line in info if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  platform = f'{jax.devices()[0].platform} x{jax.device_count()}'
  return f'{platform} ({cpu}{isa()}, {os.cpu_count()} cores), jax {jax.__version__}'
