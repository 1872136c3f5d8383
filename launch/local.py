"""`python -m launch.local --num_processes=N [--gpus=0,1,..] -- <launch.train flags>`.

Starts N processes of `launch.train` on this machine, joined through a coordinator on a free
localhost port: one process per GPU (with --gpus), or N CPU processes (each with
--cpu_devices_per_process virtual devices) to test the multi-process path without a cluster.
Waits for all; if one fails, stops the others. Exit status: the first non-zero one, else 0.
"""

import os
import socket
import subprocess
import sys
import time

from absl import app, flags

from launch import distributed

FLAGS = flags.FLAGS
flags.DEFINE_integer('num_processes', 2, 'Processes to start.')
flags.DEFINE_list('gpus', [], 'GPU ids shared out round-robin, one set per process (empty: CPU).')
flags.DEFINE_integer('cpu_devices_per_process', 1, 'CPU only: XLA host devices per process.')
flags.DEFINE_integer('port', 0, 'Coordinator port (0: a free one).')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
  """A TCP port nobody listens on right now."""
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def process_env(i: int, n: int, port: int, gpus, cpu_devices: int, base=None) -> dict:
  """Environment of process i of n: coordinator variables plus its device share."""
  env = dict(os.environ if base is None else base)
  env[distributed.ENV_COORDINATOR] = f'localhost:{port}'
  env[distributed.ENV_NUM_PROCESSES] = str(n)
  env[distributed.ENV_PROCESS_ID] = str(i)
  if gpus:
    env['CUDA_VISIBLE_DEVICES'] = ','.join(gpus[j] for j in range(len(gpus)) if j % n == i)
  else:
    flags_ = [f for f in env.get('XLA_FLAGS', '').split() if 'host_platform_device_count' not in f]
    env['XLA_FLAGS'] = ' '.join([*flags_, f'--xla_force_host_platform_device_count={cpu_devices}'])
    env['JAX_PLATFORMS'] = 'cpu'
  return env


def launch(args, num_processes: int, gpus=(), cpu_devices: int = 1, port: int = 0) -> int:
  """Runs `python -m launch.train *args` as num_processes joined processes; their exit status."""
  if gpus and len(gpus) < num_processes:
    raise ValueError(f'--gpus lists {len(gpus)} GPUs for {num_processes} processes')
  port = port or free_port()
  procs = [
    subprocess.Popen(
      [sys.executable, '-m', 'launch.train', *args],
      cwd=ROOT,
      env=process_env(i, num_processes, port, list(gpus), cpu_devices),
    )
    for i in range(num_processes)
  ]
  status = 0
  while any(p.poll() is None for p in procs):
    failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
    if failed and not status:
      status = failed[0]
      for p in procs:
        if p.poll() is None:
          p.terminate()
    time.sleep(0.2)
  return status or next((p.returncode for p in procs if p.returncode), 0)


def main(argv):
  sys.exit(
    launch(argv[1:], FLAGS.num_processes, FLAGS.gpus, FLAGS.cpu_devices_per_process, FLAGS.port)
  )


if __name__ == '__main__':
  app.run(main)
