"""`python -m launch.train --config=... --workdir=...`: jaxland.main in a multi-process run.

Same flags as jaxland.main. Initialises jax.distributed first (see launch.distributed), so one
command serves a single GPU, all GPUs of a host (one process sees them all), or many hosts:

    srun --ntasks-per-node=1 python -m launch.train --config=configs/cifar_resnet.py --workdir=DIR

Every process computes the same replicated state and writes the same checkpoints (orbax
coordinates them); metrics.jsonl and TensorBoard events come from process 0 only.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402

from launch import distributed  # noqa: E402


def main():
  distributed.initialize()
  from jaxland import main as jaxland_main

  app.run(jaxland_main.main, flags_parser=jaxland_main.cli.flags_parser)


if __name__ == '__main__':
  main()
