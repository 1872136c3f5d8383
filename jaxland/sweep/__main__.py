"""`python -m jaxland.sweep --config=configs/sweeps/<x>.py --workdir=DIR`: see jaxland.sweep.run."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from jaxland.sweep import run  # noqa: E402

if __name__ == '__main__':
  run.cli()
