"""Logging in one place: clu writers (TensorBoard) plus a JSONL file of every scalar logged.

results/ scripts read `metrics.jsonl`; nothing scrapes logs.
"""

import json
import math
import os
import time

import jax
import numpy as np
from clu import metric_writers

JSONL_NAME = 'metrics.jsonl'


class RunWriter:
  """Writes scalars to TensorBoard (clu) and appends them, with step and wall time, to JSONL."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    just_logging = jax.process_index() > 0
    self.writer = metric_writers.create_default_writer(workdir, just_logging=just_logging)
    self._jsonl = None if just_logging else open(os.path.join(workdir, JSONL_NAME), 'a')

  def write_scalars(self, step: int, scalars: dict) -> None:
    """Logs a flat dict of scalars (device arrays are fetched here, once)."""
    scalars = {k: float(np.asarray(v)) for k, v in jax.device_get(scalars).items()}
    self.writer.write_scalars(step, scalars)
    if self._jsonl is not None:
      record = {
        'step': int(step),
        'time': time.time(),
        **{k: _json_float(v) for k, v in scalars.items()},
      }
      self._jsonl.write(json.dumps(record) + '\n')
      self._jsonl.flush()

  def write_hparams(self, hparams: dict) -> None:
    self.writer.write_hparams(hparams)

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None


def _json_float(v: float):
  return v if math.isfinite(v) else str(v)


def read_jsonl(workdir_or_file: str) -> list[dict]:
  """All records of a run's metrics.jsonl (non-finite values come back as floats)."""
  path = workdir_or_file
  if os.path.isdir(path):
    path = os.path.join(path, JSONL_NAME)
  records = []
  with open(path) as f:
    for line in f:
      rec = json.loads(line)
      records.append(
        {k: float(v) if isinstance(v, str) and k != 'status' else v for k, v in rec.items()}
      )
  return records


def series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
  """(steps, values) of one metric across records that have it."""
  pairs = [(r['step'], r[key]) for r in records if key in r]
  if not pairs:
    return np.zeros(0, int), np.zeros(0)
  steps, values = zip(*pairs, strict=True)
  return np.asarray(steps), np.asarray(values, dtype=float)
