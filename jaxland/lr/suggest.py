"""Reading a range test: suggested values from its loss and accuracy curves, and the curve's shape.

Pure numpy on the recorded arrays, so each rule can be checked on synthetic curves.

Loss rules (on the smoothed loss, after fastai's trimming: the first n // 10 and the last 5
points are dropped, and everything from the first non-finite value on):
  steepest     the value where the loss falls fastest: argmin of dL/d(log x) for log spacing,
               dL/dx for linear (fastai's `steep`, pytorch-lr-finder's default suggestion).
  minimum_10   the value of the lowest loss divided by 10 (fastai's `minimum`).
  valley       fastai's `valley`: the longest decreasing subsequence of the loss, and the point
               int(L/3) + int(L/6) indices along it (about halfway down).
  robust       the median (in log space) of those three. The steepest slope alone is fooled by a
               spike or a wiggle anywhere in the curve (pytorch-lr-finder#106, Lightning#1767);
               a median of three rules needs two of them fooled to move.
Accuracy rules (on the validation accuracy evaluated every M iterations):
  peak_accuracy  the value where validation accuracy is highest.
  collapse       the first value after the peak where accuracy has lost half of its rise
                 (falls below first + (peak - first) / 2); None if it never does.
Recommendation for one-cycle / cyclical LR (Smith 2017, 2018; seed 001): max_lr is the value of
peak validation accuracy (the value of lowest loss when there is no validation curve) and
min_lr = max_lr / min_lr_div with min_lr_div in 3..4.

Shapes of the accuracy curve (seed 001): 'hill' (rises then falls), 'plateau' (rises then stays
near its peak: Smith's sign that super-convergence is possible), 'collapse_rise' (collapses
towards its start, then rises again), 'flat' (never rises by `min_rise` above its first value:
the model does not learn, or the sweep starts past the rise, as linear spacing often does --
seed 001's complaint that a linear sweep gives the low-LR region under a tenth of the plot).
"""

import numpy as np

SHAPES = ('hill', 'plateau', 'collapse_rise', 'flat')
LOSS_RULES = ('steepest', 'minimum_10', 'valley', 'robust')


def trim(values, losses, skip_start=None, skip_end=5):
  """fastai's trimming: drop the first n // 10 (default) and last `skip_end` points and NaN tail."""
  values, losses = np.asarray(values, float), np.asarray(losses, float)
  bad = np.flatnonzero(~np.isfinite(losses))
  if bad.size:
    values, losses = values[: bad[0]], losses[: bad[0]]
  n = len(losses)
  skip_start = n // 10 if skip_start is None else skip_start
  end = max(n - skip_end, skip_start + min(3, n))
  return values[skip_start:end], losses[skip_start:end]


def _grad(values, losses, log):
  x = np.log(values) if log else values
  return np.gradient(losses, x)


def steepest(values, losses, log=True) -> float:
  """The value of the most negative slope of the loss (per log value when `log`)."""
  return float(values[np.argmin(_grad(values, losses, log))])


def minimum_10(values, losses) -> float:
  """One tenth of the value of the lowest loss."""
  return float(values[np.argmin(losses)]) / 10


def longest_decrease(losses) -> tuple[int, int]:
  """(first, last) index of the longest strictly decreasing subsequence (first one found)."""
  losses = np.asarray(losses, float)
  n = len(losses)
  length, prev = np.ones(n, int), np.full(n, -1)
  for i in range(1, n):
    higher = np.flatnonzero(losses[:i] > losses[i])
    if higher.size:
      j = higher[np.argmax(length[higher])]  # argmax: the earliest of the longest.
      length[i], prev[i] = length[j] + 1, j
  last = int(np.argmax(length))
  first = last
  while prev[first] >= 0:
    first = int(prev[first])
  return first, last


def valley(values, losses) -> float:
  """fastai's valley rule: about halfway along the longest decreasing run of the loss."""
  first, last = longest_decrease(losses)
  sections = (last - first) / 3
  return float(values[first + int(sections) + int(sections / 2)])


def log_median(xs) -> float:
  """Median of positive numbers in log space: the middle one (odd count) or the geometric mean
  of the two middle ones."""
  xs = np.sort(np.asarray(xs, float))
  mid = len(xs) // 2
  return float(xs[mid] if len(xs) % 2 else np.sqrt(xs[mid - 1] * xs[mid]))


def loss_suggestions(values, smooth_loss, log=True, skip_start=None, skip_end=5) -> dict:
  """{rule: value} for LOSS_RULES on a smoothed loss curve (see the module docstring)."""
  v, s = trim(values, smooth_loss, skip_start, skip_end)
  if len(s) < 3:
    return {rule: None for rule in LOSS_RULES}
  out = {'steepest': steepest(v, s, log), 'minimum_10': minimum_10(v, s), 'valley': valley(v, s)}
  positive = [x for x in out.values() if x > 0]
  out['robust'] = log_median(positive) if len(positive) == 3 else out['valley']
  return out


def accuracy_suggestions(values, accuracy) -> dict:
  """{'peak_accuracy', 'collapse'} values from the validation accuracy curve (None if absent)."""
  values, accuracy = np.asarray(values, float), np.asarray(accuracy, float)
  ok = np.isfinite(accuracy)
  values, accuracy = values[ok], accuracy[ok]
  if len(accuracy) < 2:
    return {'peak_accuracy': None, 'collapse': None}
  peak = int(np.argmax(accuracy))
  threshold = accuracy[0] + (accuracy[peak] - accuracy[0]) / 2
  after = np.flatnonzero(accuracy[peak:] < threshold)
  collapse = float(values[peak + after[0]]) if after.size else None
  return {'peak_accuracy': float(values[peak]), 'collapse': collapse}


def classify_shape(accuracy, min_rise=0.05, drop=0.25, collapse=0.25, recover=0.5) -> str:
  """The shape of an accuracy curve (in sweep order) as one of SHAPES.

  With first value a0, peak p (rise r = p - a0 >= min_rise, else 'flat') and the minimum m after
  the peak: 'collapse_rise' when m <= a0 + collapse * r and the curve later climbs back by
  `recover` of what it lost (to >= m + recover * (p - m)); 'hill' when the last value is below
  p - drop * r; else 'plateau'.
  """
  a = np.asarray(accuracy, float)
  a = a[np.isfinite(a)]
  if len(a) < 3:
    return 'flat'
  peak = int(np.argmax(a))
  rise = a[peak] - a[0]
  if rise < min_rise:
    return 'flat'
  tail = a[peak:]
  low = int(np.argmin(tail))
  if tail[low] <= a[0] + collapse * rise and tail[low:].max() >= tail[low] + recover * (
    a[peak] - tail[low]
  ):
    return 'collapse_rise'
  return 'hill' if a[-1] < a[peak] - drop * rise else 'plateau'


def recommend(loss_rules: dict, acc_rules: dict, values, smooth_loss, min_lr_div=4.0) -> dict:
  """One-cycle / cyclical bounds: max_lr (peak accuracy, else lowest loss) and max_lr / div."""
  if acc_rules.get('peak_accuracy') is not None:
    max_lr, source = acc_rules['peak_accuracy'], 'peak_accuracy'
  else:
    v, s = trim(values, smooth_loss, skip_start=0, skip_end=0)
    max_lr, source = (float(v[np.argmin(s)]), 'minimum_loss') if len(s) else (None, 'none')
  min_lr = None if max_lr is None else max_lr / min_lr_div
  return {
    'max_lr': max_lr,
    'min_lr': min_lr,
    'max_lr_from': source,
    'min_lr_div': min_lr_div,
    'constant_lr': loss_rules.get('robust'),
  }
