"""Cost of repulsion anchors: train-step time with K = 1, 2, 4 anchors against no repulsion.

Run:    nice -n 5 .venv/bin/python bench/repulsion.py [--models=resnet20,mlp] [--rounds=15]
Prints, per model, the median time of one jitted train step (SGD momentum 0.9, coupled L2 1e-3,
batch 128) for each variant and its ratio to the step without repulsion, all measured in this one
run. Variants are interleaved round by round (the order rotates) so that load from other
processes hits them alike; the ratio is taken within each round, and its median over rounds is
reported. Models: ResNet-20 on CIFAR-shaped synthetic data (32x32x3) and the seed-000 MNIST MLP
(784-512-512-10) on MNIST-shaped synthetic data (28x28x1).

Variants: `none` (no repulsion transform in the chain); `K=k` (strength 1, width 10, k active
anchors, capacity k); `K=1/cap4` (one active anchor in the default 4 slots: on CPU it should cost
what K=1 costs, since only used slots are read); `virtual` (4 anchors, repulsion disabled, i.e.
strength 0: the force is skipped). Targets (issue 13): <= 1% per anchor for ResNet-20, <= 1.5x
the floor per anchor for the MLP (the thesis' PyTorch code paid about +31% per anchor on a GPU).

The floor is what an exact force must at least pay: one stream of an anchor's bytes per step at
this machine's copy bandwidth, measured here by an in-place pass x -> 1.5 x over an anchor-sized
pytree (the same bytes, so the same cache level as the anchor; a 256 MB pass gives the DRAM figure).
Every table shows each variant's extra milliseconds per anchor beside that floor and as a
multiple of it; the last line printed gives those multiples.

Part `update` times the jitted optimizer update alone (the chain on fixed gradients, the only
place repulsion adds work) for the same variants, and reports its extra time over `none` as a
share of the full step without repulsion: a precise estimate where whole steps are too noisy to
resolve 1% (ResNet-20 steps on a shared 2-core CPU vary by +-10%).
"""

import argparse
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from configs import default  # noqa: E402
from jaxland import distance  # noqa: E402
from jaxland.data import pipeline  # noqa: E402
from jaxland.optim import add_anchor  # noqa: E402
from jaxland.train import loop  # noqa: E402

BATCH = 128
VARIANTS = {  # name: (anchors, capacity, enabled)
  'none': (0, 0, False),
  'K=1': (1, 1, True),
  'K=2': (2, 2, True),
  'K=4': (4, 4, True),
  'K=1/cap4': (1, 4, True),
  'virtual': (4, 4, False),
}


def model_config(model: str):
  """The benchmark config of `model` ('resnet20' or 'mlp') on synthetic data."""
  config = default.get_config()
  config.data.name = 'synthetic'
  config.data.batch_size = BATCH
  config.data.synthetic.num_train = BATCH * 8
  config.data.synthetic.num_test = BATCH
  if model == 'resnet20':
    config.data.synthetic.image_shape = (32, 32, 3)
    config.model = ml_collections.ConfigDict({'name': 'resnet20', 'dtype': 'float32'})
  elif model == 'mlp':
    config.data.synthetic.image_shape = (28, 28, 1)
    config.model.hidden_sizes = (512, 512)
  else:
    raise ValueError(f'Unknown model {model!r}; choose from resnet20 | mlp')
  config.optim.learning_rate = 1e-2
  config.optim.momentum = 0.9
  config.optim.weight_decay = 1e-3
  config.repulsion = distance.defaults()
  config.repulsion.width = 10.0
  config.repulsion.strength = 1.0
  return config


def _run_with_anchors(model: str, anchors: int, capacity: int, enabled: bool):
  """(run, state holding `anchors` active anchors near the params) for one variant."""
  config = model_config(model)
  if capacity:
    config.repulsion.enabled = enabled
    config.repulsion.capacity = capacity
    config.repulsion.anchor_every = 1  # Puts the transform in the chain even when disabled.
  run = loop.build_run(config, '/tmp/jaxland_bench_unused', writer=None)
  state = run.state
  rng = np.random.default_rng(0)
  for _ in range(anchors):  # Anchors near the params, so every distance is nonzero.
    anchor = jax.tree.map(
      lambda p: p + 0.01 * rng.standard_normal(p.shape, np.float32), state.params
    )
    state = state.replace(opt_state=add_anchor(state.opt_state, anchor))
  return run, state


def build_variant(model: str, anchors: int, capacity: int, enabled: bool):
  """(jitted step, state, step args) for one variant; a call returns (state, metrics)."""
  run, state = _run_with_anchors(model, anchors, capacity, enabled)
  images, labels = run.device_data['train']
  idx = pipeline.epoch_batches(0, 0, len(run.dataset.train[1]), BATCH)
  step = loop.make_train_step(run)
  state, _ = step(state, images, labels, idx)  # Compile.
  jax.block_until_ready(state)
  return step, state, (images, labels, idx)


def build_update_variant(model: str, anchors: int, capacity: int, enabled: bool):
  """(jitted optimizer update alone, (params, opt_state), (grads,)), like build_variant."""
  run, state = _run_with_anchors(model, anchors, capacity, enabled)
  grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), state.params)

  def update(params, opt_state, grads):
    updates, opt_state = run.tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  fn = jax.jit(update, donate_argnums=(0, 1))
  carry = fn(state.params, state.opt_state, grads)  # Compile.
  jax.block_until_ready(carry)
  return lambda carry, g: (fn(*carry, g), None), carry, (grads,)


def anchor_bytes(model: str) -> int:
  """Bytes of one anchor of `model` (all params: the benchmark's mask is 'all')."""
  run, state = _run_with_anchors(model, 0, 0, False)
  return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(state.params))


def copy_seconds(tree, rounds: int = 15, n: int = 50) -> float:
  """Min over rounds of the seconds one jitted in-place pass x -> 1.5 x over `tree` takes (it
  reads and writes every byte once, as a copy does)."""
  copy = jax.jit(lambda t: jax.tree.map(lambda x: x * 1.5, t), donate_argnums=0)
  tree = copy(jax.tree.map(jnp.array, tree))  # In place from here on: no fresh pages per call.
  best = float('inf')
  for _ in range(rounds):
    t0 = time.perf_counter()
    for _ in range(n):
      tree = copy(tree)
    jax.block_until_ready(tree)
    best = min(best, (time.perf_counter() - t0) / n)
  return best


def floor(model: str) -> dict:
  """The per-anchor floor: {bytes, seconds, GB/s} for an anchor-sized copy, and DRAM GB/s."""
  run, state = _run_with_anchors(model, 0, 0, False)
  nbytes = anchor_bytes(model)
  seconds = copy_seconds(state.params)
  dram = jnp.zeros(64 * 2**20, jnp.float32)  # 256 MB: far beyond the caches.
  dram_s = copy_seconds(dram, rounds=5, n=3)
  return {
    'bytes': nbytes,
    'seconds': seconds,
    'gbps': nbytes / seconds / 1e9,
    'dram_gbps': dram.size * 4 / dram_s / 1e9,
  }


def floor_line(model: str, fl: dict) -> str:
  return (
    f'Floor for {model}: one anchor = {fl["bytes"] / 1e6:.2f} MB; copying it takes '
    f'{1e3 * fl["seconds"]:.3f} ms ({fl["gbps"]:.1f} GB/s at that size; DRAM copy '
    f'{fl["dram_gbps"]:.1f} GB/s, i.e. {1e3 * fl["bytes"] / fl["dram_gbps"] / 1e9:.3f} ms).'
  )


def time_steps(step, state, args, n):
  """(state, seconds per step) over `n` steps after one untimed step."""
  state, _ = step(state, *args)
  jax.block_until_ready(state)
  t0 = time.perf_counter()
  for _ in range(n):
    state, _ = step(state, *args)
  jax.block_until_ready(state)
  return state, (time.perf_counter() - t0) / n


def bench(model: str, rounds: int, steps: int, build=build_variant) -> dict:
  """{variant: [seconds per call, one per round]}, variants interleaved with a rotating order."""
  built = {name: build(model, *spec) for name, spec in VARIANTS.items()}
  times = {name: [] for name in built}
  names = list(built)
  for r in range(rounds):
    for name in names[r % len(names) :] + names[: r % len(names)]:
      step, state, args = built[name]
      state, dt = time_steps(step, state, args, steps)
      built[name] = (step, state, args)
      times[name].append(dt)
  return times


def _per_anchor(name, extra_s, fl, multiples, key):
  """(per-anchor ms, x floor) cells for a variant with `extra_s` seconds over none."""
  k = VARIANTS[name][0] if VARIANTS[name][2] else 0
  if not k:
    return '', ''
  per = extra_s / k
  multiples[f'{key}/{name}'] = per / fl['seconds']
  return f'{1e3 * per:+.3f}', f'{per / fl["seconds"]:.2f}x'


def report_update(model, times, step_time, fl, multiples) -> list[str]:
  """Markdown rows: the optimizer update's extra time per variant, as a share of a full step
  and per anchor against the floor."""
  base = statistics.median(times['none'])
  lines = [
    f'## {model}: optimizer update alone ({len(times["none"])} rounds), against the full step '
    f'without repulsion ({1e3 * step_time:.2f} ms); floor {1e3 * fl["seconds"]:.3f} ms / anchor',
    '',
    '| variant | update ms (median) | extra ms vs none | extra / full step | per anchor | '
    'ms / anchor | x floor |',
    '|---|---|---|---|---|---|---|',
  ]
  for name, ts in times.items():
    med = statistics.median(ts)
    share = (med - base) / step_time
    k = VARIANTS[name][0] if VARIANTS[name][2] else 0
    per = f'{100 * share / k:+.2f}%' if k else ''
    ms, mult = _per_anchor(name, med - base, fl, multiples, f'{model}/update')
    lines.append(
      f'| {name} | {1e3 * med:.3f} | {1e3 * (med - base):+.3f} | {100 * share:+.2f}% | {per} | '
      f'{ms} | {mult} |'
    )
  return lines


def report(model: str, times: dict, fl, multiples) -> list[str]:
  """Markdown rows: median step time, the median over rounds of the within-round ratio, and the
  extra time per anchor against the floor."""
  base = times['none']
  base_s = statistics.median(base)
  lines = [
    f'## {model} ({len(base)} rounds; {jax.devices()[0].device_kind}, {jax.devices()[0].platform}; '
    f'{_load()}); floor {1e3 * fl["seconds"]:.3f} ms / anchor = '
    f'{100 * fl["seconds"] / base_s:.2f}% of a step',
    '',
    '| variant | ms/step (median) | ratio to none (median of per-round ratios, IQR) | '
    'overhead per anchor | ms / anchor | x floor |',
    '|---|---|---|---|---|---|',
  ]
  for name, ts in times.items():
    ratios = np.asarray(ts) / np.asarray(base)
    med = float(np.median(ratios))
    q1, q3 = np.percentile(ratios, [25, 75])
    k = VARIANTS[name][0] if VARIANTS[name][2] else 0
    per = f'{100 * (med - 1) / k:+.2f}%' if k else ''
    ms, mult = _per_anchor(name, (med - 1) * base_s, fl, multiples, f'{model}/step')
    lines.append(
      f'| {name} | {1e3 * statistics.median(ts):.2f} | {med:.4f} ({q1:.3f}-{q3:.3f}) | {per} | '
      f'{ms} | {mult} |'
    )
  return lines


def _load() -> str:
  return 'load average ' + ', '.join(f'{x:.2f}' for x in os.getloadavg())


LAUNCH_FREE = ('parameter', 'constant', 'tuple', 'get-tuple-element', 'bitcast')


def launched_ops(model: str) -> list[str]:
  """Markdown rows: the instructions of the compiled optimizer update's entry computation per
  variant (fusions, copies, ... ; on a GPU about one kernel each), the cost that does not scale
  with the data when steps are launch-bound."""
  lines = [f'## {model}: instructions in the compiled optimizer update', '']
  lines += ['| variant | instructions | by kind |', '|---|---|---|']
  for name, spec in VARIANTS.items():
    run, state = _run_with_anchors(model, *spec)
    grads = jax.tree.map(jnp.ones_like, state.params)

    def update(params, opt_state, grads, run=run):
      updates, opt_state = run.tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state

    compiled = jax.jit(update, donate_argnums=(0, 1)).lower(state.params, state.opt_state, grads)
    text = compiled.compile().as_text()
    entry = text[text.index('ENTRY') :]
    ops = re.findall(r'= (?:\([^)]*\)|\S+) ([a-z\-]+)\(', entry[: entry.index('\n}')])
    ops = [o for o in ops if o not in LAUNCH_FREE]
    kinds = ', '.join(f'{k} {ops.count(k)}' for k in sorted(set(ops)))
    lines.append(f'| {name} | {len(ops)} | {kinds} |')
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='resnet20,mlp')
  parser.add_argument(
    '--parts',
    default='step,update',
    help='step: whole train steps; update: the optimizer update alone (precise where steps are '
    'noisy); kernels: instructions in the compiled update (launch-bound GPUs)',
  )
  parser.add_argument('--rounds', type=int, default=0, help='rounds (0: per model and part)')
  parser.add_argument('--variants', default='', help='comma-separated subset (default: all)')
  parser.add_argument('--steps', type=int, default=0, help='calls per round (0: per model)')
  args = parser.parse_args()
  parts = args.parts.split(',')
  if args.variants:
    for name in set(VARIANTS) - set(args.variants.split(',')) - {'none'}:
      del VARIANTS[name]
  multiples = {}
  for model in args.models.split(','):
    fl = floor(model)
    print(floor_line(model, fl) + '\n', flush=True)
    if 'kernels' in parts:
      print('\n'.join(launched_ops(model)) + '\n', flush=True)
    step_time = None
    if 'step' in parts:
      rounds = args.rounds or {'resnet20': 5}.get(model, 15)
      steps = args.steps or {'resnet20': 2, 'mlp': 30}.get(model, 10)
      times = bench(model, rounds, steps)
      step_time = statistics.median(times['none'])
      print('\n'.join(report(model, times, fl, multiples)) + '\n', flush=True)
    if 'update' in parts:
      if step_time is None:  # The denominator: full steps without repulsion.
        step, state, step_args = build_variant(model, 0, 0, False)
        step_times = []
        for _ in range(3):
          state, dt = time_steps(step, state, step_args, 3)
          step_times.append(dt)
        step_time = statistics.median(step_times)
      times = bench(model, args.rounds or 15, args.steps or 50, build=build_update_variant)
      lines = report_update(model, times, step_time, fl, multiples)
      print('\n'.join(lines) + '\n', flush=True)
  print(
    'x floor per anchor: '
    + ', '.join(f'{k} {v:.2f}' for k, v in multiples.items())
    + f' ({_load()})'
  )


if __name__ == '__main__':
  main()
