"""Tests of start-up: jax's persistent compilation cache (jaxland.runtime), and cached TFDS arrays
read without importing TFDS."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np

from jaxland import runtime
from jaxland.data import sources

REPO = pathlib.Path(__file__).parents[1]

# An MLP's SGD step, as small as a run's programs get; prints its loss and what the cache did.
COMPILE_A_STEP = textwrap.dedent("""
  import json, logging, sys, time
  import jax, jax.numpy as jnp
  from jaxland import runtime
  events, messages = [], []
  jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
  handler = logging.Handler()
  handler.emit = lambda record: messages.append(record.getMessage())
  compiler_log = logging.getLogger('jax._src.compiler')  # Says hit or miss, per program.
  compiler_log.setLevel(logging.DEBUG)
  compiler_log.addHandler(handler)
  path = runtime.enable_compilation_cache()
  start = time.perf_counter()
  again = runtime.enable_compilation_cache()
  second_call = time.perf_counter() - start

  @jax.jit
  def step(params, x, y):
    def loss(p):
      h = jnp.tanh(x @ p['w1'] + p['b1'])
      return jnp.mean((h @ p['w2'] - y) ** 2)
    value, grads = jax.value_and_grad(loss)(params)
    return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), value

  keys = jax.random.split(jax.random.key(0), 4)
  params = {'w1': jax.random.normal(keys[0], (64, 128)), 'b1': jnp.zeros(128),
            'w2': jax.random.normal(keys[1], (128, 10))}
  x, y = jax.random.normal(keys[2], (32, 64)), jax.random.normal(keys[3], (32, 10))
  _, value = step(params, x, y)
  step_log = [m.split(' for ')[0] for m in messages if "for 'jit_step'" in m]
  print('RESULT', json.dumps({'path': path, 'again': again, 'second_call': second_call,
                              'loss': float(value), 'events': events, 'step': step_log}))
""")


def _run(script, env):
  proc = subprocess.run(
    [sys.executable, '-c', script],
    cwd=REPO, env={**os.environ, 'PYTHONPATH': str(REPO), **env},
    capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.split('RESULT ')[-1])


def test_a_second_process_loads_the_step_from_the_cache(tmp_path):
  cache = tmp_path / 'cache'
  env = {runtime.CACHE_DIR_ENV: str(cache), 'JAX_PLATFORMS': 'cpu'}
  first = _run(COMPILE_A_STEP, env)
  assert first['path'] == first['again'] == str(cache)
  assert first['second_call'] < 0.01  # Idempotent and cheap.
  assert first['step'] == ['PERSISTENT COMPILATION CACHE MISS']
  assert '/jax/compilation_cache/cache_hits' not in first['events']
  assert os.listdir(cache) and oct(cache.stat().st_mode)[-3:] == '700'  # Private: trusted code.
  second = _run(COMPILE_A_STEP, env)
  assert second['step'] == ['Persistent compilation cache hit']  # Loaded, not compiled.
  assert '/jax/compilation_cache/cache_hits' in second['events']
  assert second['loss'] == first['loss']


def test_an_empty_cache_dir_turns_the_cache_off(monkeypatch):
  monkeypatch.setenv(runtime.CACHE_DIR_ENV, '')
  assert runtime.compilation_cache_dir() is None and runtime.enable_compilation_cache() is None
  monkeypatch.delenv(runtime.CACHE_DIR_ENV)
  assert runtime.compilation_cache_dir() == os.path.expanduser('~/.cache/jaxland/jax')


LOAD_CACHED_MNIST = textwrap.dedent("""
  import json, sys
  from configs import default
  from jaxland import data
  config = default.get_config().data
  config.name, config.data_dir = 'mnist', sys.argv[1]
  ds = data.load_dataset(config)
  loaded = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tensorflow_datasets'})
  print('RESULT', json.dumps({'source': ds.source, 'shape': ds.train[0].shape, 'loaded': loaded}))
""")


def test_cached_tfds_arrays_load_without_tfds(tmp_path):
  """The arrays jaxland cached for a TFDS dataset are read without importing TFDS (or TF)."""
  images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28, 1)
  split = (images, np.array([3, 7], np.int32))
  raw = sources._Raw('mnist', {'train': split, 'test': split}, tuple('0123456789'), 'fake MNIST')
  sources._write_cache(str(tmp_path), f'mnist-{sources.TFDS_VERSIONS["mnist"]}', raw)
  script = LOAD_CACHED_MNIST.replace('sys.argv[1]', repr(str(tmp_path)))
  result = _run(script, {'JAX_PLATFORMS': 'cpu'})
  assert result['loaded'] == [] and result['shape'] == [2, 28, 28, 1]
  assert result['source'].startswith('fake MNIST [decoded arrays read from')


def test_pinned_tfds_versions_are_the_installed_builders():
  """A TFDS upgrade that changes a version shows here (the pin then names an older cache)."""
  import tensorflow_datasets as tfds

  for name, version in sources.TFDS_VERSIONS.items():
    assert str(tfds.builder_cls(name).VERSION) == version, name
