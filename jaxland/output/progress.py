"""One progress line per unit of a long task (a spectrum step, a probe, a sweep point), with the
time it took and the time left at the rate so far."""

import time


class Progress:
  """`tick(name)` after each of `total` units prints `[jaxland] <label> i/total name: dt, ETA`."""

  def __init__(self, label: str, total: int, prefix: str = '[jaxland]'):
    self.label, self.total, self.prefix = label, total, prefix
    self.done, self.t0, self.last = 0, time.time(), time.time()

  def tick(self, name: str = '', note: str = '') -> str:
    now = time.time()
    self.done += 1
    left = (now - self.t0) / self.done * (self.total - self.done)
    line = f'{self.prefix} {self.label} {self.done}/{self.total}'
    line += f' {name}' if name else ''
    line += f': {note}' if note else ':'
    line += f' {now - self.last:.1f} s' + (f', about {duration(left)} left' if left >= 1 else '')
    self.last = now
    print(line, flush=True)
    return line


def duration(seconds: float) -> str:
  """3.2 days, 1.5 h, 12.0 min or 40 s."""
  for unit, size in (('days', 86400), ('h', 3600), ('min', 60)):
    if seconds >= size:
      return f'{seconds / size:.1f} {unit}'
  return f'{seconds:.0f} s'
