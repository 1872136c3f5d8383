"""Entry point: python -m jaxland.main --config=configs/<x>.py[:arg] [--workdir=DIR] [--config.k=v].

Parses flags and hands the config to jaxland.tasks.run. Kept short on purpose.
"""

import datetime
import logging as pylogging
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxland import tasks, validation  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config name>/<timestamp>).')
flags.mark_flags_as_required(['config'])

EXIT_CODES = {'done': 0, 'diverged': 3, 'interrupted': 130}


def default_workdir(config_path: str) -> str:
  """runs/<config file name>[_<arg>]/<timestamp>."""
  path, _, arg = config_path.partition(':')
  name = os.path.splitext(os.path.basename(path))[0] + (f'_{arg}' if arg else '')
  return os.path.join('runs', name, datetime.datetime.now().strftime('%Y%m%d-%H%M%S'))


class _QuietLibraries(pylogging.Filter):
  """Drops INFO chatter from orbax's internals; its warnings and errors still show."""

  def filter(self, record):
    noisy = ('/orbax/', 'xla_bridge')
    return record.levelno > pylogging.INFO or not any(s in record.pathname for s in noisy)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietLibraries())
  config = FLAGS.config
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS['config']))
  try:
    result = tasks.run(config, workdir)
  except validation.ConfigError as e:
    raise app.UsageError(f'Bad config: {e}') from e
  status = result.get('status', 'done')
  print(f'[jaxland] TensorBoard: tensorboard --logdir {os.path.abspath(workdir)}', flush=True)
  if status != 'done':
    print(
      f'[jaxland] run ended: {status}: {result.get("message", "")}', file=sys.stderr, flush=True
    )
  sys.exit(EXIT_CODES.get(status, 1))


if __name__ == '__main__':
  app.run(main)
