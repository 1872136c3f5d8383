"""Seed 000's "mnist1": the SLS MLP (784-512-512-10, ReLU) on MNIST, SGD momentum, coupled L2 1e-3.

Run:    python -m jaxland.main --config=configs/mnist_mlp.py \
          --config.data.manual_dir=<folder of the MNIST IDX .gz files>
Expect: about 98% test accuracy after 20 epochs (seed 000: lr 1e-2 best of 1e-1..1e-4; wd 1e-3).
The seed names its optimizer "sgd_momentum_wdecay" without the momentum value; 0.9 is used here.
`:smoke` trains 50 steps.
"""

from configs import default


def get_config(arg=None):
  config = default.get_config()
  config.data.name = 'mnist'
  config.data.batch_size = 128
  config.model.hidden_sizes = (512, 512)
  config.optim.name = 'sgd'
  config.optim.learning_rate = 1e-2
  config.optim.momentum = 0.9
  config.optim.weight_decay = 1e-3
  config.train.num_epochs = 20
  config.train.log_every_steps = 100
  if arg == 'smoke':
    config.train.max_steps = 50
    config.train.log_every_steps = 10
  return config
