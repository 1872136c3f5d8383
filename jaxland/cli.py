"""The command line's manners, shared by `python -m jaxland.main` and `python -m jaxland.sweep`:
every mistake is one line (`jaxland: bad config: <key>: <what is wrong>; <what is allowed>`)
with exit code 2, a failure is one line with exit code 1, and library chatter (Orbax, XLA, clu's
per-write log lines) stays out of the way. `--verbose` (or JAXLAND_VERBOSE=1) brings back
tracebacks and INFO logs.
"""

import logging as pylogging
import os
import re
import sys

from absl import flags, logging

from jaxland import validation
from jaxland.data import sources
from jaxland.rundir import workdir as workdir_lib
from jaxland.train.population import ALL_VARYING as VARYING

BAD_INPUT = 2
FAILED = 1


def verbose(argv=None) -> bool:
  argv = sys.argv if argv is None else argv
  return '--verbose' in argv or os.environ.get('JAXLAND_VERBOSE', '') not in ('', '0')


def quiet_logs(argv=None) -> None:
  """WARNING and above from absl / Python logging unless verbose."""
  if not verbose(argv):
    logging.set_verbosity(logging.WARNING)
    pylogging.getLogger().setLevel(pylogging.WARNING)


def exit_with(kind: str, message: str, code: int, error: BaseException | None = None):
  """Prints `jaxland: <kind>: <message>` (one line; the traceback too when verbose) and exits."""
  if error is not None and verbose():
    logging.exception('%s', error)
  line = ' '.join(str(message).split())
  print(f'jaxland: {kind}: {line}', file=sys.stderr, flush=True)
  sys.exit(code)


def flag_error_line(error: BaseException, argv) -> str:
  """What went wrong while the flags (and the config file they name) were parsed, in one line."""
  text = str(error).strip().replace('\\n', '\n').replace("\\'", "'")
  typo = re.search(r"'(\w+)'\s+Did you mean \"(\w+)\"", text)
  if typo:
    bad, good = typo.groups()
    key = next((a[2:].split('=')[0] for a in argv if f'.{bad}' in a.split('=')[0]), bad)
    if key.startswith('config.population.'):
      return f'{key}: a population member cannot vary this key; it varies {VARYING}'
    return f'{key}: no such key; did you mean "{good}"?'
  missing = re.search(r'Attempted \[[^\]]*\]:\s*(\S+)\s*\[Errno 2\]', text)
  if missing:
    return f'--config={missing.group(1)}: no such config file; see configs/ for the experiments'
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if isinstance(error, flags.Error) and 'Traceback' not in text:
    return text.removeprefix('flag ').replace('--config.', 'config.', 1)
  config_arg = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), '')
  return f'--config={config_arg}: {lines[-1] if lines else type(error).__name__}'


def flags_parser(argv):
  """absl's flags parser with one line for any mistake (app.run(..., flags_parser=this))."""
  try:
    parsed = flags.FLAGS(argv)
    _ = flags.FLAGS['config'].value.keys()  # config_flags defers a config file's errors.
    return parsed
  except Exception as e:  # Config files raise anything: a typo, a bad :arg, a missing file.
    exit_with('bad config', flag_error_line(e, argv), BAD_INPUT, e)


def run_reporting(fn, *args):
  """fn(*args), with known failures as one line: bad config / input (exit 2), a locked
  workdir (exit 2), anything else (exit 1; the run's status.json says `failed`)."""
  try:
    return fn(*args)
  except validation.BadInput as e:
    exit_with('bad config', str(e), BAD_INPUT, e)
  except sources.DataUnavailableError as e:
    exit_with('data unavailable', str(e), BAD_INPUT, e)
  except workdir_lib.WorkdirLocked as e:
    exit_with('workdir in use', str(e), BAD_INPUT, e)
  except KeyboardInterrupt:
    raise
  except Exception as e:
    exit_with('failed', f'{type(e).__name__}: {e}', FAILED, e)
