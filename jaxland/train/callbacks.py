"""The Callback protocol: how research lines hook into the one loop, which is handed its callbacks
(jaxland.training composes them from the config) and looks nothing up itself."""


class Callback:
  """A hook into the loop. `every_steps` > 0 makes the loop call `on_step` every that many steps."""

  every_steps = 0

  def on_start(self, run) -> None:
    """After the state is created or restored, before the first step (run: train.loop.Run)."""

  def on_step(self, run) -> dict:
    """After step `run.step` (only every `every_steps`); returns scalars to log."""
    return {}

  def on_epoch_end(self, run, epoch: int) -> dict:
    """After epoch `epoch` (1-based) is evaluated; may replace run.state; returns scalars."""
    return {}
