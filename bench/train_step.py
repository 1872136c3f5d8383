"""Train-step speed: jaxland against PyTorch eager, where the step's time goes, and XLA flags.

    .venv/bin/python bench/train_step.py [--parts=torch,profile] [--models=resnet20,...]
        [--rounds=5] [--torch_python=PATH] [--device=cpu]

Parts:
  torch    images/s of jaxland's jitted train step (the loop's own: gather, normalise, forward,
           backward, SGD momentum + coupled L2) against the same network, batch and optimizer in
           PyTorch eager (bench/torch_worker.py in the torch venv named by $JAXLAND_TORCH_PYTHON,
           torch.set_num_threads(cores)), under libgomp's default wait policy and under
           OMP_WAIT_POLICY=PASSIVE. All three are timed in one run, round by round with a
           rotating order; the ratio is jaxland / torch (above 1: jaxland is faster).
  profile  the compiled step's thunk times from jax.profiler, summed per kind of HLO instruction
           (conv forward / input gradient / weight gradient, transposes and copies, BatchNorm,
           ReLU and residuals, the update), per step.
  flags    the older per-process sweep of XLA CPU flags and bfloat16 (ratios to float32).
The last line printed is every ratio measured.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import common

# name -> (image shape, batch, config.model overrides); seed 003's ConvNet as in results/sweeps.
MODELS = {
  'resnet20': ((32, 32, 3), 128, {'name': 'resnet20'}),
  'resnet32': ((32, 32, 3), 128, {'name': 'resnet32'}),
  'resnet56': ((32, 32, 3), 128, {'name': 'resnet56'}),
  'mlp': ((28, 28, 1), 128, {'name': 'mlp', 'hidden_sizes': (512, 512)}),
  # The fast CIFAR-10 network (configs/cifar_fast.py), published and :cpu widths.
  'airbench': ((32, 32, 3), 256, {'name': 'airbench'}),
  'airbench_cpu': ((32, 32, 3), 256, {'name': 'airbench', 'widths': (24, 96, 96)}),
  'convnet': (
    (28, 28, 1),
    32,
    {
      'name': 'convnet',
      'num_conv_layers': 3,
      'filters': 16,
      'padding': 2,
      'hidden_sizes': (128, 64),
      'batch_norm': True,
    },
  ),
}
STEPS = {'resnet20': 2, 'resnet32': 1, 'resnet56': 1, 'mlp': 40, 'convnet': 20}
STEPS |= {'airbench': 1, 'airbench_cpu': 1}
FLAG_VARIANTS = {  # name -> (extra XLA_FLAGS, compute dtype)
  'baseline': ('', 'float32'),
  'bfloat16': ('', 'bfloat16'),
  'fast_math': ('--xla_cpu_enable_fast_math=true', 'float32'),
  'no_thunks': ('--xla_cpu_use_thunk_runtime=false', 'float32'),
}


def model_config(model: str, dtype: str = 'float32', batch: int = 0):
  """A synthetic-data run config of `model` with the torch side's optimizer (SGD m 0.9, L2)."""
  import ml_collections

  from configs import default

  shape, default_batch, fields = MODELS[model]
  batch = batch or default_batch
  config = default.get_config()
  config.data.name = 'synthetic'
  config.data.synthetic.image_shape = shape
  config.data.synthetic.num_train = batch * 4
  config.data.batch_size = batch
  config.model = ml_collections.ConfigDict({**fields, 'dtype': dtype})
  config.optim.learning_rate = 0.1
  config.optim.momentum = 0.9
  config.optim.weight_decay = 5e-4
  return config


def jax_step(model: str, dtype: str = 'float32', batch: int = 0):
  """(jitted loop step, box holding the state, call()) for `model`; call() runs one step."""
  from jaxland.data import pipeline
  from jaxland.train import loop

  config = model_config(model, dtype, batch)
  run = loop.build_run(config, '/tmp/jaxland_bench_unused', writer=None)
  step = loop.make_train_step(run)
  images, labels = run.device_data['train']
  idx = pipeline.epoch_batches(0, 0, len(run.dataset.train[1]), config.data.batch_size)
  box = {'state': run.state}

  def call():
    box['state'], m = step(box['state'], images, labels, idx)
    return m['loss']

  return step, box, call, (images, labels, idx)


# ---------------------------------------------------------------------------------------- torch


def torch_part(models, rounds, torch_python, device, dtype='float32', batch=0, steps=0):
  """Rows of jaxland vs torch (both wait policies on CPU) images/s, and the ratios."""
  threads = os.cpu_count() if device == 'cpu' else 0
  workers = {}
  if torch_python:
    for policy in ('', 'PASSIVE') if device == 'cpu' else ('',):
      workers[policy or 'default'] = common.TorchWorker(torch_python, threads, device, policy)
  info = next(iter(workers.values())).info if workers else {}
  lines = [
    f'## jaxland vs PyTorch eager, train step, {dtype} ({common.machine()}; torch '
    f'{info.get("torch", "absent")}, {info.get("threads", "-")} threads; {common.load()} at start)',
    '',
    '| model | batch | jaxland img/s (min-med s) | torch default img/s | torch PASSIVE img/s | '
    'ratio vs default | ratio vs PASSIVE |',
    '|---|---|---|---|---|---|---|',
  ]
  ratios = {}
  for model in models:
    shape, default_batch, _ = MODELS[model]
    batch = batch or default_batch
    n = steps or STEPS[model] * (10 if device != 'cpu' else 1)
    _, _, call, _ = jax_step(model, dtype, batch)
    timers = {'jax': lambda call=call, n=n: common.time_calls(call, n)}
    for name, w in workers.items():
      w.call('build', key=model, model=model, image_shape=shape, batch=batch, dtype=dtype)
      timers[name] = w.timer(model, n)
    timers['jax']()  # compile
    times = common.rounds_of(timers, rounds)
    row = [model, str(batch), _rate(times['jax'], batch)]
    for name in ('default', 'PASSIVE'):
      row.append(_rate(times[name], batch) if name in times else 'n/a')
    for name in ('default', 'PASSIVE'):
      if name in times:
        per_round = [t / j for j, t in zip(times['jax'], times[name], strict=True)]
        ratios[f'{model}/{name}'] = statistics.median(per_round)
        row.append(f'{ratios[f"{model}/{name}"]:.2f}')
      else:
        row.append('-')
    lines.append('| ' + ' | '.join(row) + ' |')
    print(lines[-1], file=sys.stderr, flush=True)  # Progress; the table is printed at the end.
  for w in workers.values():
    w.close()
  lines.append(f'\n{common.load()} at the end; ratio = median over rounds of torch s / jaxland s.')
  return lines, ratios


def _rate(seconds, batch):
  med = statistics.median(seconds)
  return f'{batch / med:.0f} ({min(seconds):.3f}-{med:.3f})'


# -------------------------------------------------------------------------------------- profile


def _entry_kinds(hlo: str, batch: int) -> dict:
  """{instruction name: kind} for the entry computation of a compiled module's text."""
  bodies = {}
  for m in re.finditer(r'^(%\S+) .*?\{\n(.*?)\n\}', hlo, re.M | re.S):
    bodies[m.group(1)] = m.group(2)
  entry = hlo[hlo.index('\nENTRY') :]
  kinds = {}
  for line in entry.splitlines()[1:]:
    m = re.match(r'\s*(?:ROOT )?%(\S+) = (\S+) (\S+?)\(', line)
    if not m:
      continue
    name, shape, op = m.groups()
    called = re.search(r'calls=(%[\w.\-]+)', line)
    body = bodies.get(called.group(1), '') if called else line
    op_name = re.search(r'op_name="([^"]*)"', line)
    kinds[name] = _kind(name, shape, op, body, op_name.group(1) if op_name else '', batch)
  return kinds


def _kind(name, shape, op, body, op_name, batch):
  """The kind of one entry instruction, from its op, its fused body and its metadata op_name."""
  backward = 'transpose(jvp' in op_name
  if 'convolution(' in body:
    dims = [int(d) for d in re.findall(r'\d+', shape.split('{')[0])]
    if batch not in dims:
      return 'conv weight grad'
    return 'conv input grad' if backward else 'conv forward'
  if ' dot(' in body or op == 'dot':
    return 'dot (dense, im2col matmuls)'
  if name.startswith(('transpose', 'copy')) or op in ('copy', 'transpose'):
    return 'transpose / copy'
  if '/BatchNorm' in op_name or '/BN/' in op_name:
    return 'BatchNorm ' + ('backward' if backward else 'forward')
  if 'Net)' in op_name or 'Net))' in op_name or 'Block' in op_name:
    return 'relu / residual / pad ' + ('backward' if backward else 'forward')
  if op in ('parameter', 'constant', 'tuple', 'get-tuple-element', 'bitcast'):
    return 'free'
  return 'update, loss, data, grad norm'


def profile_part(model, steps=3):
  """Markdown rows: thunk time per step by kind of instruction, from a jax.profiler trace."""
  import jax

  step, box, call, args = jax_step(model)
  _, batch, _ = MODELS[model]
  hlo = step.lower(box['state'], *args).compile().as_text()
  kinds = _entry_kinds(hlo, batch)
  call_time = [common.time_calls(call, STEPS[model]) for _ in range(3)]
  with tempfile.TemporaryDirectory() as tmp:
    jax.profiler.start_trace(tmp)
    for _ in range(steps):
      call()
    jax.block_until_ready(box['state'])
    jax.profiler.stop_trace()
    trace = json.load(gzip.open(glob.glob(f'{tmp}/plugins/profile/*/*.trace.json.gz')[0]))
  spent, count = collections.defaultdict(float), collections.Counter()
  for e in trace['traceEvents']:
    op = e.get('args', {}).get('hlo_op')
    if e.get('ph') == 'X' and op and e['args'].get('hlo_module') == 'jit_train_step':
      kind = kinds.get(op, 'other')
      spent[kind] += e['dur'] / 1e3 / steps
      count[kind] += 1
  total = sum(spent.values())
  lines = [
    f'## {model} (batch {batch}): thunk time per step by kind ({common.machine()}; '
    f'{common.load()})',
    '',
    f'Step wall time {1e3 * min(call_time):.1f} ms (min of 3 x {STEPS[model]} steps); summed '
    f'thunk time {total:.1f} ms (two thunks may overlap on the two cores).',
    '',
    '| kind | ms / step | share | thunks / step |',
    '|---|---|---|---|',
  ]
  for kind, ms in sorted(spent.items(), key=lambda kv: -kv[1]):
    lines.append(f'| {kind} | {ms:.1f} | {100 * ms / total:.1f}% | {count[kind] // steps} |')
  return lines, {f'{model}/conv_share': _conv_share(spent, total)}


def _conv_share(spent, total):
  return sum(v for k, v in spent.items() if k.startswith(('conv', 'dot'))) / max(total, 1e-9)


# ---------------------------------------------------------------------------------------- flags


def flags_child(model: str, dtype: str) -> float:
  """Runs inside the subprocess of the flags part: images/s of the loop's step."""
  _, box, call, _ = jax_step(model, dtype)
  return MODELS[model][1] / min(common.time_calls(call, STEPS[model]) for _ in range(2))


def flags_part(models, rounds):
  rates = {(m, v): [] for m in models for v in FLAG_VARIANTS}
  for _ in range(rounds):
    for model in models:
      for name, (flags, dtype) in FLAG_VARIANTS.items():
        env = dict(os.environ, XLA_FLAGS=f'{os.environ.get("XLA_FLAGS", "")} {flags}'.strip())
        out = subprocess.run(
          [sys.executable, __file__, '--child', model, dtype],
          env=env,
          capture_output=True,
          text=True,
          check=False,
        )
        found = [ln for ln in out.stdout.splitlines() if ln.startswith('{')]
        rates[model, name].append(json.loads(found[-1])['images_per_s'] if found else float('nan'))
  lines, ratios = [f'## XLA flags and dtypes, one process each ({common.load()})', ''], {}
  for model in models:
    base = statistics.median(rates[model, 'baseline'])
    lines.append(f'{model}: baseline {base:.0f} images/s')
    for name in FLAG_VARIANTS:
      r = statistics.median(rates[model, name]) / base
      ratios[f'{model}/{name}'] = r
      lines.append(f'  {name:>10}: ratio to baseline {r:5.2f}')
  return lines, ratios


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--parts', default='torch,profile')
  parser.add_argument('--models', default='resnet20')
  parser.add_argument('--profile_models', default='resnet20')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--dtype', default='float32')
  parser.add_argument('--torch_python', default='')
  parser.add_argument('--device', default='cpu', help="torch's device: cpu | cuda")
  parser.add_argument('--batch', type=int, default=0, help='0: the model default')
  parser.add_argument('--steps', type=int, default=0, help='steps per timed call (0: per model)')
  parser.add_argument('--child', nargs=2, metavar=('MODEL', 'DTYPE'))
  args = parser.parse_args()
  if args.child:
    print(json.dumps({'images_per_s': flags_child(*args.child)}))
    return
  parts, models = args.parts.split(','), args.models.split(',')
  ratios = {}
  print(f'# {common.machine()}; {common.load()}', flush=True)
  if 'torch' in parts:
    torch_python = common.torch_python(args.torch_python)
    lines, r = torch_part(
      models, args.rounds, torch_python, args.device, args.dtype, args.batch, args.steps
    )
    print('\n'.join(lines) + '\n', flush=True)
    ratios.update({f'vs_torch/{k}': v for k, v in r.items()})
  if 'profile' in parts:
    for model in args.profile_models.split(','):
      lines, r = profile_part(model)
      print('\n'.join(lines) + '\n', flush=True)
      ratios.update(r)
  if 'flags' in parts:
    lines, r = flags_part(models, max(1, args.rounds // 2))
    print('\n'.join(lines) + '\n', flush=True)
    ratios.update({f'flags/{k}': v for k, v in r.items()})
  print('ratios: ' + ', '.join(f'{k} {v:.2f}' for k, v in ratios.items()) + f' ({common.load()})')


if __name__ == '__main__':
  main()
