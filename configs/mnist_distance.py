"""Seed 000's "mnist1" (configs/mnist_mlp.py: MLP 784-512-512-10, SGD momentum 0.9, lr 1e-2,
coupled L2 1e-3, batch 128) plus the thesis' repulsion (strength 1, width 10), with the thesis'
variants: one anchor, several anchors, merged anchors, step decay and cosine warm restarts.

Run:    python -m jaxland.main --config=configs/mnist_distance.py \
          --config.data.manual_dir=$JAXLAND_DATA_DIR/mnist     (the MNIST IDX .gz files)
        ... :fashion                        Fashion-MNIST instead (found offline on this machine)
        ... :baseline                       repulsion off, same (virtual) anchors: the drift
        ... :anchors=every                  an anchor every 150 epochs (600 epochs, 3 anchors)
        ... :anchors=merged                 the same anchors merged into one kernel
        ... :schedule=step                  x0.1 every 50 epochs, restarted every 150
        ... :schedule=cosine                cosine warm restarts, T_0 150, lr_max 1e-3 (add
                                            `baseline` for the run without repulsion)
Then:   ... --config.task=ensemble --workdir=<run dir>   (snapshot-ensemble tables and heat map)
Expect: test accuracy about 98% (MNIST) / 89% (Fashion-MNIST) with or without repulsion; after
the anchor, anchor/0/distance grows several times faster than the baseline's and levels off as
the kernel exp(-d^2/200) decays; accuracy dips right after the anchor for large strengths only.
CPU scale (results/distance/, about 20 s per run on 2 cores): `fashion,cpu,epochs=36,anchor=6`
(`cpu`: the first 5,000 training and 2,000 test images, a checkpoint only at the end); see
results/distance/README.md for every command that was run.

Lengths: `epochs` (default 20 = mnist1 for one anchor with a constant lr, 600 = the thesis for
anchors=every|merged or a schedule), `anchor` (default: epoch 10 of 20, or 100 of 600), `period`
(default 150). Other arguments as in configs/cifar_distance.py: strength, width, wd (0 = no L2), lr,
smoke (seconds on CPU: scikit-learn digits, 3 epochs, anchors/restarts every epoch).
"""

from configs import cifar_distance, common, default

DEFAULTS = dict(cifar_distance.DEFAULTS, fashion=False, cpu=False, epochs=0, anchor=0)
del DEFAULTS['net'], DEFAULTS['jpeg75']


def get_config(arg=None):
  args = common.parse_arg(arg, **DEFAULTS)
  config = default.get_config()
  config.data.name = 'fashion_mnist' if args.fashion else 'mnist'
  config.data.batch_size = 128
  config.model.hidden_sizes = (512, 512)
  config.train.log_every_steps = 100
  long = args.anchors != 'one' or args.schedule != 'constant'
  if args.smoke:
    args.epochs, args.anchor, args.period = 3, 1, 1
  args.epochs = args.epochs or (600 if long else 20)
  args.anchor = args.anchor or (100 if args.epochs >= 200 else args.epochs // 2)
  cifar_distance.apply_distance_args(config, args)
  if args.cpu:
    config.data.train_subset = 5000
    config.data.test_subset = 2000
    config.train.log_every_steps = 0  # Once per epoch.
    config.train.checkpoint_every_epochs = args.epochs  # Only the final one (orbax is slow here).
    config.train.keep_checkpoints = 1
  if args.smoke:
    config.data.name = 'digits'
    config.data.eval_batch_size = 64
    config.data.batch_size = 64
    config.train.log_every_steps = 10
  return config
