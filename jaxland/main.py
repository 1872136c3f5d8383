"""Entry point: python -m jaxland.main --config=configs/<x>.py[:arg] [--workdir=DIR] [--config.k=v].

Parses flags and hands the config to jaxland.tasks.run; mistakes are one line (jaxland.cli).
Kept short on purpose.
"""

import datetime
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxland import cli, runtime, tasks  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config name>/<timestamp>).')
flags.DEFINE_bool('verbose', False, 'Tracebacks and INFO logs (also JAXLAND_VERBOSE=1).')
flags.mark_flags_as_required(['config'])

EXIT_CODES = {'done': 0, 'diverged': 3, 'interrupted': 130}


def default_workdir(config_path: str) -> str:
  """runs/<config file name>[_<arg>]/<timestamp>."""
  path, _, arg = config_path.partition(':')
  name = os.path.splitext(os.path.basename(path))[0] + (f'_{arg}' if arg else '')
  return os.path.join('runs', name, datetime.datetime.now().strftime('%Y%m%d-%H%M%S'))


def main(argv):
  if len(argv) > 1:
    cli.exit_with('bad command', f'unexpected arguments {argv[1:]}', cli.BAD_INPUT)
  cli.quiet_logs()
  runtime.enable_compilation_cache()
  config = FLAGS.config
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS['config']))
  result = cli.run_reporting(tasks.run, config, workdir)
  status = result.get('status', 'done')
  print(f'[jaxland] TensorBoard: tensorboard --logdir {os.path.abspath(workdir)}', flush=True)
  if status != 'done':
    print(
      f'[jaxland] run ended: {status}: {result.get("message", "")}', file=sys.stderr, flush=True
    )
  sys.exit(EXIT_CODES.get(status, 1))


if __name__ == '__main__':
  app.run(main, flags_parser=cli.flags_parser)
