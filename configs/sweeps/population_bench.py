"""The grids bench/population.py times: seeds x learning rates, run point by point, in parallel
processes, or as one population (--vectorize).

Run:    python -m jaxland.sweep --config=configs/sweeps/population_bench.py --workdir=DIR
        [--vectorize | --parallel=2]
Args:   `resnet20`: a 4-point ResNet-20 grid (2 seeds x 2 LRs) on 2,048 cifar10_jpeg75 images
        ($JAXLAND_DATA_DIR), 1 epoch; default: the 8-point Fashion-MNIST MLP grid (2 seeds x 4
        LRs, 2 epochs of configs/fashion_mlp.py); `jpeg75`: the same MLP grid on cifar10_jpeg75
        (the GPU machine has no TFDS to prepare Fashion-MNIST); `smoke`: 2 x 2 points, 20 steps (the
        MLP on scikit-learn's bundled digits).
"""

import ml_collections

from configs import cifar_resnet, common, fashion_mlp
from jaxland import sweep


def get_config(arg=None):
  args = common.parse_arg(arg, resnet20=False, jpeg75=False, smoke=False)
  if args.resnet20:
    base = cifar_resnet.get_config('jpeg75')
    base.data.train_subset, base.data.test_subset = 2048, 1000
    base.train.num_epochs = 1
    seeds, lrs = (0, 1), (0.05, 0.1)
  else:
    base = fashion_mlp.get_config()
    if args.jpeg75:
      common.use_cifar10_jpeg75(base)
      base.data.val_size = 0
    base.train.num_epochs = 2
    seeds, lrs = (0, 1), (0.02, 0.05, 0.1, 0.2)
  if args.smoke:  # On the bundled digits (no TFDS preparation, no TensorFlow import).
    base.train.max_steps = 20
    if not args.resnet20:
      base.data.name, base.data.fallback, base.data.val_size = 'digits', '', 0
    seeds, lrs = seeds[:2], lrs[:2]
  config = ml_collections.ConfigDict()
  config.name = 'population_bench_' + ('resnet20' if args.resnet20 else 'mlp')
  config.name += '_jpeg75' if args.jpeg75 and not args.resnet20 else ''
  config.base = base
  config.space = sweep.product(
    sweep.values('seed', list(seeds)), sweep.values('optim.learning_rate', list(lrs))
  )
  return config
