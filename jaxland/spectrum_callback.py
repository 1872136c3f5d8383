"""The spectrum task's computation as a training callback: every `config.spectrum.every_steps`
steps (and at step 0) the top of the spectrum on the first N training examples, logged as
spectrum/* scalars and, with callback_save, written as <run>/spectrum/<step>/spectrum.npz.
"""

import os

from jaxland import spectrum_report
from jaxland.spectrum import Options, example_batches, options, out_name, scalars, spectrum_at
from jaxland.train import loop


class SpectrumCallback(loop.Callback):
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
      root = os.path.join(run.workdir, out_name(self.opts))
      spectrum_report.write_step(root, result, summary, plots=False)
    return scalars(result)


def spectrum_callback(config):
  """The SpectrumCallback when config.spectrum.every_steps > 0 (jaxland.tasks.CALLBACKS)."""
  section = config.get('spectrum')
  if section is None or not section.get('every_steps', 0):
    return None
  return SpectrumCallback(config, options(config))
