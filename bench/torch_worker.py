"""A PyTorch timing worker that a jax bench drives over stdin/stdout, one JSON object a line.

Run by bench/common.TorchWorker with the torch venv's python (never jaxland's), so that torch and
jax never share a process and the jax side can interleave its own rounds with torch's:

    {"op": "build", "key": K, "model": "resnet20", "image_shape": [32, 32, 3], "batch": 128,
     "dtype": "float32" | "bfloat16", "channels_last": true}      -> {"ok": true}
    {"op": "time", "key": K, "n": 3}                                -> {"s": seconds per step}
    {"op": "info"}                                                  -> versions, threads, device
Only this file and torch_models.py are imported; numpy is not needed.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch_models  # noqa: E402


def _sync(device):
  if device.type == 'cuda':
    torch.cuda.synchronize()


class Worker:
  """Models built by key; each `time` call runs n train steps on one fixed random batch."""

  def __init__(self, device: str):
    self.device = torch.device(device)
    self.built = {}

  def build(self, key, model, image_shape, batch, dtype='float32', channels_last=True):
    h, w, c = image_shape
    net = torch_models.build(model, image_shape).to(self.device)
    x = torch.randn(batch, c, h, w, device=self.device)
    if channels_last and x.ndim == 4 and not model == 'mlp':
      net = net.to(memory_format=torch.channels_last)
      x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=self.device)
    step = torch_models.train_step_fn(net)
    if dtype == 'bfloat16':  # Mixed precision, as jaxland's dtype: params f32, compute bf16.
      plain = step

      def step(x, y):
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
          return plain(x, y)

    self.built[key] = (step, x, y)
    self.time(key, 2)  # Warm-up: allocator, kernels, autocast caches.
    return {'ok': True}

  def time(self, key, n):
    step, x, y = self.built[key]
    _sync(self.device)
    t0 = time.perf_counter()
    for _ in range(n):
      step(x, y)
    _sync(self.device)
    return {'s': (time.perf_counter() - t0) / n}

  def info(self):
    name = torch.cuda.get_device_name() if self.device.type == 'cuda' else 'cpu'
    return {
      'torch': torch.__version__,
      'threads': torch.get_num_threads(),
      'device': name,
      'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY', '(unset)'),
    }


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: keep)')
  parser.add_argument('--device', default='cpu')
  args = parser.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  worker = Worker(args.device)
  for line in sys.stdin:
    msg = json.loads(line)
    op = msg.pop('op')
    if op == 'quit':
      break
    try:
      reply = getattr(worker, op)(**msg)
    except Exception as e:  # noqa: BLE001 - reported to the driver, which decides.
      reply = {'error': f'{type(e).__name__}: {e}'}
    print(json.dumps(reply), flush=True)


if __name__ == '__main__':
  main()
