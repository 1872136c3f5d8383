"""The demo: an MLP on real Fashion-MNIST, SGD with momentum, 2 epochs, well under a minute on CPU.

Run:    python -m jaxland.main --config=configs/fashion_mlp.py   (or `make demo`)
Expect: test accuracy about 0.85-0.86 after 2 epochs (>= 0.84 is tested).
Data:   Debian's /usr/share/datasets/fashion-mnist when present, else TFDS's download when online,
        else scikit-learn's digits (printed loudly).
`:smoke` trains 50 steps; `:spectrum` adds config.spectrum, so that
--config.spectrum.every_steps=50 computes the top of the Hessian spectrum during training.
"""

from configs import common, default
from jaxland import spectrum


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, spectrum=False)
  config = default.get_config()
  config.data.name = 'fashion_mnist'
  config.data.fallback = 'digits'
  config.data.batch_size = 128
  config.model.hidden_sizes = (256, 128)
  config.optim.learning_rate = 0.05
  config.optim.momentum = 0.9
  config.train.num_epochs = 2
  config.train.log_every_steps = 100
  if args.spectrum:
    config.spectrum = spectrum.defaults()
  if args.smoke:
    config.train.max_steps = 50
    config.train.log_every_steps = 10
  return config
