"""Seed 004's quadratic-approximation probes on a small Fashion-MNIST model (CPU scale).

Run:    python -m jaxland.main --config=configs/landscape.py --workdir=runs/quadratic/mlp
        (model=cnn for the small ConvNet; act=gelu for a smooth control; jpeg75 for the
        CIFAR-10 JPEG copy, GPU-sized; epochs=N)
It first trains the model into <workdir>/train (SGD + momentum 0.9, LR 0.05 then 0.005 for the
last quarter, params saved every 10 steps to train/trajectory/, batch order saved), unless
--config.checkpoint='<run dir>[:step]' names a trained run. Then it writes <workdir>/landscape/:
eigen_*.npz, profiles.npz, *.csv, summary.json and figures.
Expect (MLP 784-64-10, 4000 train examples, ~1-2 min on 2 busy cores once trained): top
Hessian eigenvalue ~6; line-fitted curvatures ~1.17x the Lanczos eigenvalues (ReLU kinks; ~1.01x
with act=gelu); Gaussian directions' v^T H v predicted from top-16 + trace within ~6%; minibatch
minima spread as 1/sqrt(b). The CNN takes ~4 min. See results/quadratic/README.md.
`:smoke` runs everything on sklearn digits in well under a minute.
"""

from configs import common, default
from jaxland import landscape as landscape_line
from jaxland.landscape import intervene


def base(arg):
  """The training run and the probe settings shared with configs/intervene.py."""
  args = common.parse_arg(arg, model='mlp', smoke=False, jpeg75=False, epochs=0, act='relu')
  config = default.get_config()
  config.landscape = landscape_line.defaults()
  config.intervene = intervene.defaults()
  config.data.name = 'fashion_mnist'
  config.data.val_size = 1000
  config.data.train_subset = 4000
  config.data.batch_size = 128
  config.data.eval_batch_size = 1000
  config.optim.learning_rate = 0.05
  config.optim.momentum = 0.9
  epochs = args.epochs or 30
  if args.model == 'mlp':
    config.model.name = 'mlp'
    config.model.hidden_sizes = (64,)
  elif args.model == 'cnn':
    config.model.name = 'convnet'
    config.model.num_conv_layers = 2
    config.model.filters = 8
    config.model.hidden_sizes = (32,)
    config.data.train_subset = 2000
    config.landscape.batch_size = 500
    # On CPU a vmapped conv with per-t kernels becomes a grouped conv, slower than one t at a time
    # (bench/landscape.py); on GPU raise t_chunk.
    config.landscape.t_chunk = 1
    # Fewer and smaller probes than the MLP: CNN forward passes are ~20x dearer on 2 CPU cores.
    c = config.landscape
    c.num_top, c.lanczos_steps, c.num_bulk, c.trace_probes = 12, 30, 3, 10
    c.line_points, c.num_random = 21, 3
    c.minibatch_sizes, c.minibatch_repeats, c.minibatch_directions = (32, 128), 16, 2
    c.dense_points, c.dense_scales, c.dense_examples = 201, (1.0, 0.01), 500
    c.num_spectra, c.per_example_examples = 3, 1000
    i = config.intervene
    i.noise_bands, i.noise_levels, i.noise_samples = (
      ('top', 'all'),
      (0.0, 0.003, 0.01, 0.03, 0.1),
      4,
    )
  else:
    raise ValueError(f'Unknown config argument model={args.model!r}; choose from mlp, cnn')
  config.model.activation = args.act  # act=gelu: a smooth control (no ReLU kinks).
  if args.jpeg75:
    common.use_cifar10_jpeg75(config)
    config.data.train_subset = 10000
  if args.smoke:
    _smoke(config)
    epochs = args.epochs or 3
  config.train.num_epochs = epochs
  config.optim.schedule.name = 'piecewise'
  config.optim.schedule.boundaries_epochs = (0.75 * epochs,)  # The last quarter at LR / 10.
  config.optim.schedule.scales = (0.1,)
  config.train.log_every_steps = 0  # Once per epoch.
  config.train.checkpoint_every_epochs = epochs
  config.train.trajectory_every_steps = 2 if args.smoke else 10
  config.train.save_batch_order = True
  return config


def _smoke(config):
  config.data.name = 'digits'
  config.data.val_size = 200
  config.data.train_subset = 0
  config.data.batch_size = 64
  config.data.eval_batch_size = 256
  config.model.hidden_sizes = (16,)
  if config.model.name == 'convnet':
    config.model.filters, config.model.kernel_size = 4, 3  # Digits are 8x8.
  c = config.landscape
  c.num_top, c.lanczos_steps, c.num_bulk, c.num_bottom, c.trace_probes = 4, 12, 2, 1, 4
  c.batch_size = 300
  c.line_points, c.num_random, c.minibatch_sizes, c.minibatch_repeats = 11, 2, (16, 64), 4
  c.minibatch_directions, c.dense_points, c.dense_scales = 2, 51, (1.0, 0.1)
  c.num_spectra, c.grad_noise_batches, c.per_example_examples = 3, 8, 200
  i = config.intervene
  i.noise_levels, i.noise_samples, i.epochs = (0.0, 0.01, 0.1), 2, 1
  i.batch1_examples, i.hmc_samples, i.hmc_burnin, i.hmc_leapfrog = 100, 4, 2, 3
  i.lr_values = (0.02, 0.1)


def get_config(arg=None):
  config = base(arg)
  config.task = 'landscape'
  return config
