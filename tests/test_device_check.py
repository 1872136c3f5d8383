"""bench/device_check.sh --dry: the prepared GPU check runs every section at tiny sizes on the CPU,
so that it cannot rot while no GPU is at hand."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_gpu_check_dry_run_writes_every_section(tmp_path):
  out = tmp_path / 'device_check.md'
  done = subprocess.run(
    ['bash', 'bench/device_check.sh', '--dry', str(out)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=900,
    env={
      'PATH': '/usr/bin:/bin',
      'PYTHON': sys.executable,
      'HOME': str(pathlib.Path.home()),
      'XLA_FLAGS': os.environ['XLA_FLAGS'],  # conftest's -O1: the sections compile faster.
    },
    check=False,
  )
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  text = out.read_text()
  statuses = re.findall(r'^`[^`]*`: (.*), \d+ s$', text, re.M)  # One per section.
  # Train step x 2 dtypes, population, HVP, repulsion, one real run; fast CIFAR x 2 skipped (its
  # float32 smoke trains in tests/test_fast.py, its bfloat16 dtypes are tests/test_models.py's).
  skipped = 'skipped in --dry (tests/test_fast.py and test_models.py cover it)'
  assert sorted(statuses) == ['ok'] * 6 + [skipped] * 2, text
  assert '| status | final_test_accuracy |' in text  # The real run's summary table.
