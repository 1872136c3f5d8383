"""ResNet-20 (He et al. 2016) on CIFAR-10: SGD momentum 0.9, lr 0.1 cosine, coupled L2 5e-4.

Run (online, TFDS downloads CIFAR-10):
    python -m jaxland.main --config=configs/cifar_resnet.py
Run offline on the lossy JPEG copy (report it as cifar10_jpeg75):
    python -m jaxland.main --config=configs/cifar_resnet.py:jpeg75   (reads $JAXLAND_DATA_DIR)
Expect: about 92% test accuracy on CIFAR-10 after 160 epochs on a GPU (~2-3 points less on
cifar10_jpeg75). `:smoke` (or `:jpeg75,smoke`) trains 20 steps of resnet8 on 2,048 images.
Other arguments: `resnet32`, `resnet56`, ... pick the depth.
"""

import ml_collections

from configs import common, default


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, jpeg75=False, depth=20)
  config = default.get_config()
  common.cifar10_data(config, args.jpeg75, batch_size=128)
  config.model = ml_collections.ConfigDict(
    {'name': f'resnet{args.depth}', 'bn_momentum': 0.9, 'dtype': 'float32'}
  )
  config.optim.learning_rate = 0.1
  config.optim.momentum = 0.9
  config.optim.weight_decay = 5e-4
  config.optim.schedule.name = 'cosine'
  config.train.num_epochs = 160
  config.train.log_every_steps = 100
  if args.smoke:
    common.smoke(config, model='resnet8')
  return config
