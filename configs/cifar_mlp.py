"""Seed 003's MLP: 3 hidden ReLU layers of 256 (its `MLPNet_4_layer`), plain SGD lr 0.05, batch 32.

Up to 100 epochs with early stopping after 25 epochs without a better test accuracy, the best epoch
kept, as in the seed (which selected and stopped on the test set; there is no validation split).
Run:    python -m jaxland.main --config=configs/cifar_mlp.py            (CIFAR-10 from TFDS)
        python -m jaxland.main --config=configs/cifar_mlp.py:jpeg75     (offline JPEG copy in
        $JAXLAND_DATA_DIR/cifar10, reported as cifar10_jpeg75)
        python -m jaxland.main --config=configs/cifar_mlp.py:fashion    (Fashion-MNIST)
Expect: seed 003 on CIFAR-10 reached a best test accuracy of 0.549 (best epoch 13).
Arguments: layers=4 (2, 3, 4, 6 in the seed), width=256, smoke (20 steps; digits if the data is
missing). Data exploration: add --config.task=eda.
"""

from configs import common, default


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, jpeg75=False, fashion=False, layers=4, width=256)
  config = default.get_config()
  seed003_data(config, args)
  config.model.name = 'mlp'
  config.model.hidden_sizes = (args.width,) * (args.layers - 1)
  seed003_training(config)
  if args.smoke:
    seed003_smoke(config)
  return config


def seed003_data(config, args) -> None:
  """CIFAR-10 (TFDS), its JPEG copy (`jpeg75`) or Fashion-MNIST (`fashion`); batch 32."""
  config.data.name = 'cifar10'
  if args.jpeg75:
    common.use_cifar10_jpeg75(config)
  if args.fashion:
    config.data.name = 'fashion_mnist'
  config.data.batch_size = 32
  config.data.eval_batch_size = 1000


def seed003_training(config) -> None:
  """Plain SGD (no momentum), lr 0.05, 100 epochs, early stopping on test accuracy (25 epochs)."""
  config.optim.name = 'sgd'
  config.optim.learning_rate = 0.05
  config.optim.momentum = 0.0
  config.train.num_epochs = 100
  config.train.early_stopping_patience = 25
  config.train.best_metric = 'test/accuracy'
  config.train.log_every_steps = 500
  config.train.keep_checkpoints = 1


def seed003_smoke(config) -> None:
  """Seconds long: 20 steps on a subset; digits when the dataset is not on this machine."""
  common.smoke(config)
  config.data.fallback = 'digits'
  config.data.train_subset = 1024  # Digits has 1500 train and 297 test examples.
  config.data.test_subset = 256
  config.data.eval_batch_size = 256
