"""Why populations of conv nets unroll their member axis on the CPU: P members' conv gradients
(ResNet-20's middle shape: batch 64, 32x32x16 -> 16, 3x3) as one jax.vmap (a grouped
convolution), as the members unrolled inside one jit (what jaxland.train.population does for
conv nets on the CPU), as a lax.map over members, and as P calls of the one-member program.

Run:    .venv/bin/python bench/member_conv.py [--members=4] [--rounds=7]
Prints min / median seconds per call of each, interleaved round by round (the order rotates),
and as its last line each variant's median over the sequential one's.
"""

import argparse
import statistics

import common  # bench/common.py: puts the repository on sys.path
import jax
import jax.numpy as jnp
import numpy as np


def conv(x, w):
  return jax.lax.conv_general_dilated(
    x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def grad_fn(w, x):
  return jax.grad(lambda w: jnp.sum(conv(x, w) ** 2))(w)


def variants(members: int, batch: int):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((members, batch, 32, 32, 16)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((members, 3, 3, 16, 16)), jnp.float32)
  one = jax.jit(grad_fn)
  fns = {
    'vmap': jax.jit(jax.vmap(grad_fn)),
    'unrolled': jax.jit(lambda w, x: jnp.stack([grad_fn(w[i], x[i]) for i in range(members)])),
    'lax.map': jax.jit(lambda w, x: jax.lax.map(lambda a: grad_fn(*a), (w, x))),
  }
  expected = np.stack([np.asarray(one(w[i], x[i])) for i in range(members)])
  scale = np.abs(expected).max()  # Sums of ~1e6 products: compare to float32 of their scale.
  for name, fn in fns.items():  # Same gradients, so the timings compare like with like.
    np.testing.assert_allclose(np.asarray(fn(w, x)), expected, atol=1e-5 * scale, err_msg=name)
  timed = {name: (lambda fn=fn: common.time_calls(lambda: fn(w, x), 2)) for name, fn in fns.items()}
  timed['sequential'] = lambda: common.time_calls(
    lambda: [one(w[i], x[i]) for i in range(members)], 2
  )
  return timed


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--members', type=int, default=4)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--rounds', type=int, default=7)
  args = parser.parse_args()
  print(f'# {common.machine()}; {common.load()} at start')
  times = common.rounds_of(variants(args.members, args.batch), args.rounds)
  print(f'| {args.members} members, batch {args.batch} | min s | median s |')
  print('|---|---|---|')
  for name, t in times.items():
    print(f'| {name} | {min(t):.3f} | {statistics.median(t):.3f} |')
  print(f'# {common.load()} at the end')
  base = statistics.median(times['sequential'])
  print(' '.join(f'{n}/sequential={statistics.median(t) / base:.2f}x' for n, t in times.items()))


if __name__ == '__main__':
  main()
