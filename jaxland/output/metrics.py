"""Logging in one place: every scalar goes to the INFO log, TensorBoard and metrics.jsonl.

`RunWriter.writer` is a clu MetricWriter (what clu.periodic_actions.ReportProgress is handed), so
whatever is written through it, steps_per_sec included, lands in all three. results/ scripts read
`metrics.jsonl` (full float64 values, step and wall time); nothing scrapes logs.

TensorBoard files are written without TensorFlow: tensorboardX's record format and protos (pure
Python, ~40 ms to import, imported once a RunWriter is built), as simple_value scalars (float32:
TensorBoard's data server reads no other float type). TensorBoard's own writer would not do:
tensorboard.compat imports TensorFlow whenever it is installed.

Resuming. Each RunWriter opens a NEW events file, never appending to an old one, named to sort
after every events file already there (TensorBoard reads a run's files in name order, so it sees
the old run first). TensorBoard merges all the files of a directory, so the old file's points past
the restored step would show beside the new ones unless something drops them:
- TensorBoard's data server (the default loader) drops a tag's earlier points at or after the
  step of any point that arrives later with a step no larger than the last one seen: the resumed
  run's first point of each tag replaces the old file's points from that step on. Old points
  between `step` and it stay (the loop logs at the same steps, so only time-based ones can), and
  a tag the resumed run never logs again keeps all its old points.
- `RunWriter.resume(step)` also writes a SessionLog START at step + 1, on which the Python loader
  (`tensorboard --load_fast=false`, EventAccumulator) drops every earlier point past `step`.
- metrics.jsonl is cut to the records at or before `step` (truncate_jsonl), so a resumed run's file
  equals an uninterrupted one's, but for wall times and the time-based steps_per_sec / uptime.
"""

from jaxland import runtime

runtime.clu_without_tensorflow()  # Before clu.metric_writers is first imported.

import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import logging  # noqa: E402
from clu import metric_writers  # noqa: E402

JSONL_NAME = 'metrics.jsonl'
EVENTS_PREFIX = 'events.out.tfevents.'


class RunWriter:
  """Writes scalars to the log, TensorBoard and JSONL (process 0; other processes only log)."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.just_logging = jax.process_index() > 0
    self.events = None if self.just_logging else EventWriter(workdir)
    writers = [metric_writers.LoggingWriter()]
    if not self.just_logging:
      writers += [self.events, JsonlWriter(os.path.join(workdir, JSONL_NAME))]
    self.writer = metric_writers.MultiWriter(writers)

  def write_scalars(self, step: int, scalars: dict) -> None:
    """Logs a flat dict of scalars (device arrays are fetched here, once)."""
    scalars = {k: float(np.asarray(v)) for k, v in jax.device_get(scalars).items()}
    self.writer.write_scalars(step, scalars)

  def write_hparams(self, hparams: dict) -> None:
    self.writer.write_hparams(hparams)

  def resume(self, step: int) -> None:
    """A run restored at `step` goes on from here: drops what was logged after it (see above)."""
    if self.just_logging:
      return
    truncate_jsonl(self.workdir, step)
    self.events.write_start(step + 1)

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()


class EventWriter(metric_writers.MetricWriter):
  """A clu MetricWriter that writes one new TensorBoard events file, synchronously, no TensorFlow.

  Scalars, texts, histograms, images and hparams; raw summaries, audio and video are not written.
  """

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    self.path = os.path.join(logdir, new_events_name(logdir))
    self._file = open(self.path, 'xb')  # 'x': never appends to, nor overwrites, another file.
    self._write(_tbx().event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, event) -> None:
    """One TFRecord: length, masked CRC32C of the length, the event, masked CRC32C of it."""
    data, crc = event.SerializeToString(), _tbx().masked_crc32c
    header = struct.pack('<Q', len(data))
    crcs = struct.pack('<I', crc(header)), struct.pack('<I', crc(data))
    self._file.write(header + crcs[0] + data + crcs[1])
    self._file.flush()  # A live TensorBoard sees it at once (no fsync).

  def _write_summary(self, step: int, summary) -> None:
    self._write(_tbx().event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

  def write_start(self, step: int) -> None:
    """A SessionLog START at `step`: TensorBoard's Python loader drops earlier points >= step."""
    event_pb2 = _tbx().event_pb2
    start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
    self._write(event_pb2.Event(wall_time=time.time(), step=int(step), session_log=start))

  def write_scalars(self, step, scalars):
    summary = _tbx().summary_pb2.Summary
    values = [summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._write_summary(step, summary(value=values))

  def write_texts(self, step, texts):
    for key, text in texts.items():
      self._write_summary(step, _tbx().summary.text(key, text))

  def write_histograms(self, step, arrays, num_buckets=None):
    for key, values in arrays.items():
      bins = (num_buckets or {}).get(key, 30)
      self._write_summary(step, _tbx().summary.histogram(key, np.asarray(values), bins))

  def write_images(self, step, images):
    for key, image in images.items():
      image = np.asarray(image)
      layout = 'NHWC' if image.ndim == 4 else 'HWC'
      self._write_summary(step, _tbx().summary.image(key, image, dataformats=layout))

  def write_hparams(self, hparams):
    plain = {
      k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in hparams.items()
    }
    experiment, session_start, _ = _tbx().summary.hparams(plain, {})
    self._write_summary(0, experiment)
    self._write_summary(0, session_start)

  def write_summaries(self, step, values, metadata=None):
    logging.log_first_n(logging.WARNING, 'EventWriter does not write raw summaries.', 1)

  def write_audios(self, step, audios, *, sample_rate):
    logging.log_first_n(logging.WARNING, 'EventWriter does not write audio.', 1)

  def write_videos(self, step, videos):
    logging.log_first_n(logging.WARNING, 'EventWriter does not write videos.', 1)

  def flush(self):
    if not self._file.closed:
      self._file.flush()

  def close(self):
    self._file.close()


@functools.cache
def _tbx():
  """tensorboardX's protos, record checksum and summary builders: imported where events are
  written, so that scripts which write none (bench/ on GPU images) need no tensorboardX."""
  from tensorboardX import summary
  from tensorboardX.proto import event_pb2, summary_pb2
  from tensorboardX.record_writer import masked_crc32c

  return types.SimpleNamespace(
    summary=summary, event_pb2=event_pb2, summary_pb2=summary_pb2, masked_crc32c=masked_crc32c
  )


def new_events_name(logdir: str) -> str:
  """events.out.tfevents.<unix time>.<n>.<host>.<pid>: n counts the events files already in
  logdir, so the new name sorts after all of them even within the same second."""
  n = sum(name.startswith(EVENTS_PREFIX) for name in os.listdir(logdir))
  return f'{EVENTS_PREFIX}{int(time.time()):010d}.{n:04d}.{socket.gethostname()}.{os.getpid()}'


class JsonlWriter(metric_writers.MetricWriter):
  """A clu MetricWriter that appends each write_scalars call to a JSONL file as one record
  {'step', 'time', **scalars}; non-finite values are written as strings ('nan', 'inf')."""

  def __init__(self, path: str):
    self.path = path

  def write_scalars(self, step, scalars):
    values = {k: _json_float(float(np.asarray(v))) for k, v in scalars.items()}
    record = {'step': int(step), 'time': time.time(), **values}
    with open(self.path, 'a') as f:  # Opened per call: truncate_jsonl may replace the file.
      f.write(json.dumps(record) + '\n')

  def write_summaries(self, step, values, metadata=None):
    pass

  def write_images(self, step, images):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_texts(self, step, texts):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass

  def write_hparams(self, hparams):
    pass

  def flush(self):
    pass

  def close(self):
    pass


def _json_float(v: float):
  return v if math.isfinite(v) else str(v)


def truncate_jsonl(workdir_or_file: str, step: int) -> int:
  """Keeps only the records of metrics.jsonl with record['step'] <= step, byte for byte (a line
  that does not parse, as a killed writer may leave, goes too); returns how many lines went.
  Atomic: a reader sees the old file or the new one, never half of one."""
  path = _jsonl_path(workdir_or_file)
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    lines = f.readlines()
  steps = [_step_of(line) for line in lines]
  kept = [line for line, s in zip(lines, steps, strict=True) if s is not None and s <= step]
  if len(kept) == len(lines):
    return 0
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w') as f:
    f.writelines(kept)
  os.replace(tmp, path)
  return len(lines) - len(kept)


def _step_of(line: str) -> int | None:
  try:
    return int(json.loads(line)['step'])
  except (ValueError, KeyError, TypeError):
    return None


def _jsonl_path(workdir_or_file: str) -> str:
  if os.path.isdir(workdir_or_file):
    return os.path.join(workdir_or_file, JSONL_NAME)
  return workdir_or_file


def read_jsonl(workdir_or_file: str) -> list[dict]:
  """All records of a run's metrics.jsonl (non-finite values come back as floats)."""
  records = []
  with open(_jsonl_path(workdir_or_file)) as f:
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
