"""Seed 003's CNN: 5 conv layers of 256 5x5 filters (its `ConvNet_5`), dense 128-64, SGD lr 0.05.

Each conv: pad 3 (pad 0 with 2 layers, as the seed) -> ReLU -> 2x2 max pool; batch 32, plain SGD,
up to 100 epochs, early stopping after 25 epochs without a better test accuracy (seed 003).
Run:    python -m jaxland.main --config=configs/cifar_cnn.py            (CIFAR-10 from TFDS)
        python -m jaxland.main --config=configs/cifar_cnn.py:jpeg75     (cifar10_jpeg75, offline)
        python -m jaxland.main --config=configs/cifar_cnn.py:fashion    (Fashion-MNIST)
Expect: seed 003 on CIFAR-10 reached a best test accuracy of 0.808 (best epoch 79); with dropout
0.3 (both kinds) 0.831. A GPU job: 256 filters take minutes per epoch on a CPU.
Arguments: conv=5 (2, 3 or 5), filters=256, smoke (20 steps; digits if the data is missing).
"""

import ml_collections

from configs import cifar_mlp, common, default


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, jpeg75=False, fashion=False, conv=5, filters=256)
  config = default.get_config()
  cifar_mlp.seed003_data(config, args)
  config.model = ml_collections.ConfigDict(
    {
      'name': 'convnet',
      'num_conv_layers': args.conv,
      'filters': args.filters,
      'kernel_size': 5,
      'pool_size': 2,
      'padding': -1,  # The seed's: 0 for two conv layers, 3 for more.
      'hidden_sizes': (128, 64),
      'activation': 'relu',
      'dropout': 0.0,
      'dropout2d': 0.0,  # The seed used one rate for both; its dropout sweep sets both.
      'batch_norm': False,
      'bn_momentum': 0.9,
      'dtype': 'float32',
    }
  )
  cifar_mlp.seed003_training(config)
  if args.smoke:
    cifar_mlp.seed003_smoke(config)
  return config
