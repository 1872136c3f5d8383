"""The spectrum task's computation as a training callback: every `config.spectrum.every_steps`
steps (and at step 0) the top of the spectrum on the first N training examples, logged as
spectrum/* scalars and, with callback_save, written as <run>/spectrum/<step>/spectrum.npz.
"""

import os

from jaxland.spectrum import report
from jaxland.spectrum.settings import Options, options
from jaxland.spectrum.task import example_batches, out_name, scalars, spectrum_at
from jaxland.train import callbacks


class SpectrumCallback(callbacks.Callback):
  """Every `every_steps` training steps (and at step 0): the spectrum on the first N examples."""

  def __init__(self, config, opts: Options):
    self.config, self.opts, self.every_steps = config, opts, opts.every_steps
    self.batches = self.num_examples = None

  def on_start(self, run) -> None:
    c = self.config.data
    self.batches, self.num_examples = example_batches(
      run.dataset, self.opts, c.batch_size, c.eval_batch_size, run.mesh
    )
    if run.step == 0:
      run.writer.write_scalars(0, self.on_step(run))

  def on_step(self, run) -> dict:
    state, step = run.state, run.step
    info = {
      'source': 'train',
      'batch_stats_source': 'live',
      'num_examples': self.num_examples,
      'dataset': run.dataset.name,
    }
    result, summary = spectrum_at(
      run.model, state.params, state.batch_stats, self.batches, self.opts, step, info
    )
    if self.opts.callback_save:
      report.write_step(os.path.join(run.workdir, out_name(self.opts)), result, summary, False)
    return scalars(result)


def spectrum_callback(config) -> SpectrumCallback | None:
  """The SpectrumCallback when the config has a spectrum section with every_steps > 0."""
  if 'spectrum' not in config or not config.spectrum.every_steps:
    return None
  return SpectrumCallback(config, options(config))
