"""Model zoo tests against independent oracles.

Parameter counts come from formulas written out here from the reference architectures (He et al.
2016, kuangliu/pytorch-cifar, seed 003's PyTorch classes), never from the modules; big models are
only traced (jax.eval_shape), so nothing heavy runs. BatchNorm and dropout are checked against
PyTorch semantics written out in numpy.
"""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.linen import initializers as nn_init

from jaxland import models
from jaxland.models import get_model
from jaxland.models.resnet import conv3x3, shortcut_a

REPO = pathlib.Path(__file__).resolve().parents[1]
SHAPES = [(28, 28, 1), (32, 32, 3)]


# --------------------------------------------------------------------------------------------------
# Helpers.


def init_shapes(model, image_shape):
  """Variables of `model` as ShapeDtypeStructs (traced only)."""
  x = jnp.zeros((2, *image_shape), jnp.float32)
  return jax.eval_shape(lambda: model.init({'params': jax.random.PRNGKey(0)}, x, train=False))


def count(tree) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def key(seed):
  """An 'rbg' key: the same distributions as threefry at a third of the CPU compile time."""
  return jax.random.key(seed, impl='rbg')


def init(model, x, seed=0):
  return jax.jit(lambda k: model.init({'params': k}, x, train=False))(key(seed))


def forward(model, variables, x, train, rng=0):
  """Jitted apply as COMMON.md calls it: (logits, batch_stats after the call)."""

  def f(v, x, key):
    if train:
      return model.apply(v, x, train=True, rngs={'dropout': key}, mutable=['batch_stats'])
    return model.apply(v, x, train=False), {}

  logits, updates = jax.jit(f)(variables, x, key(rng))
  return logits, updates.get('batch_stats', {})


# --------------------------------------------------------------------------------------------------
# Parameter formulas, written from the reference code (PyTorch counts: BN weight + bias; running
# statistics are buffers, here the 'batch_stats' collection).


def conv_p(cin, cout, k, bias=False):
  return cin * cout * k * k + (cout if bias else 0)


def bn_p(c):
  return 2 * c


def dense_p(fan_in, fan_out):
  return fan_in * fan_out + fan_out


def cifar_resnet_params(n, classes=10):
  """He et al. 2016 sec. 4.2: 3x3 stem (16), stages 16/32/64 of n two-conv blocks, option A."""
  total, cin = conv_p(3, 16, 3) + bn_p(16), 16
  for c in (16, 32, 64):
    for _ in range(n):
      total += conv_p(cin, c, 3) + bn_p(c) + conv_p(c, c, 3) + bn_p(c)  # A: free shortcut.
      cin = c
  return total + dense_p(64, classes)


def kuangliu_resnet_params(blocks, classes=10):
  """kuangliu models/resnet.py with BasicBlock: 1x1 conv + BN shortcut where the shape changes."""
  total, cin = conv_p(3, 64, 3) + bn_p(64), 64
  for stage, (num, c) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
    for b in range(num):
      stride = 2 if stage and b == 0 else 1
      total += conv_p(cin, c, 3) + bn_p(c) + conv_p(c, c, 3) + bn_p(c)
      if stride != 1 or cin != c:
        total += conv_p(cin, c, 1) + bn_p(c)
      cin = c
  return total + dense_p(512, classes)


def kuangliu_mobilenetv2_params(classes=10):
  """kuangliu models/mobilenetv2.py: (expansion, out, blocks, stride) cfg, expand conv always."""
  cfg = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
  cfg += [(6, 160, 3, 2), (6, 320, 1, 1)]
  total, cin = conv_p(3, 32, 3) + bn_p(32), 32
  for t, c, n, s in cfg:
    for i in range(n):
      h = t * cin
      total += conv_p(cin, h, 1) + bn_p(h) + 9 * h + bn_p(h) + conv_p(h, c, 1) + bn_p(c)
      if (s if i == 0 else 1) == 1 and cin != c:
        total += conv_p(cin, c, 1) + bn_p(c)
      cin = c
  return total + conv_p(320, 1280, 1) + bn_p(1280) + dense_p(1280, classes)


def test_resnet20_count_by_hand():
  # stem 3*16*9 + 32 = 464; stage 1: 3 * (2*16*16*9 + 64) = 14,016;
  # stage 2: (16*32*9 + 32*32*9 + 128) + 2 * (2*32*32*9 + 128) = 13,952 + 37,120 = 51,072;
  # stage 3: (32*64*9 + 64*64*9 + 256) + 2 * (2*64*64*9 + 256) = 55,552 + 147,968 = 203,520;
  # head 64*10 + 10 = 650. Total 269,722.
  assert cifar_resnet_params(3) == 269_722
  assert count(init_shapes(get_model('resnet20'), (32, 32, 3))['params']) == 269_722


# Published sizes (millions) and the digits they are rounded to: the count must round to them.
# He et al. Table 6 for the CIFAR ResNets; kuangliu's ResNet-18/34 as usually quoted. The 2.24M
# often quoted for MobileNetV2 on CIFAR is torchvision's block (no 1x1 expand when t=1, no conv
# shortcuts); kuangliu's reference, which this module follows, has 2,296,922 = 2.30M.
PUBLISHED = {
  'resnet20': (0.27, 2),
  'resnet32': (0.46, 2),
  'resnet44': (0.66, 2),
  'resnet56': (0.85, 2),
  'resnet110': (1.7, 1),
  'resnet18': (11.17, 2),
  'resnet34': (21.28, 2),
  'mobilenetv2': (2.30, 2),
}

FORMULAS = {
  'resnet8': cifar_resnet_params(1),
  'resnet20': cifar_resnet_params(3),
  'resnet32': cifar_resnet_params(5),
  'resnet44': cifar_resnet_params(7),
  'resnet56': cifar_resnet_params(9),
  'resnet110': cifar_resnet_params(18),
  'resnet18': kuangliu_resnet_params((2, 2, 2, 2)),
  'resnet34': kuangliu_resnet_params((3, 4, 6, 3)),
  'mobilenetv2': kuangliu_mobilenetv2_params(),
}


@pytest.mark.parametrize('name', sorted(FORMULAS))
def test_param_counts_match_reference(name):
  n = count(init_shapes(get_model(name), (32, 32, 3))['params'])
  assert n == FORMULAS[name]
  if name in PUBLISHED:
    published, digits = PUBLISHED[name]
    assert round(n / 1e6, digits) == published, n


def test_num_classes_changes_only_the_head():
  n = count(init_shapes(get_model('resnet18', num_classes=100), (32, 32, 3))['params'])
  assert n == kuangliu_resnet_params((2, 2, 2, 2), classes=100)


SEED_MODELS = [
  # SLS MNIST MLP (seed 000): 784 -> 512 -> 256 -> 10.
  (
    'mlp',
    dict(hidden_sizes=(512, 256)),
    (28, 28, 1),
    dense_p(784, 512) + dense_p(512, 256) + dense_p(256, 10),
  ),
  # Seed 003 MLPNet_4_layer_bn(256, 256, 256).
  (
    'mlp',
    dict(hidden_sizes=(256,) * 3, batch_norm=True),
    (32, 32, 3),
    dense_p(3072, 256) + 2 * dense_p(256, 256) + dense_p(256, 10) + 3 * bn_p(256),
  ),
  # Seed 003 ConvNet_2 from its grid: filters 32, hidden (128, 64); padding 0, flatten 32*5*5.
  (
    'convnet',
    dict(num_conv_layers=2, filters=32, hidden_sizes=(128, 64)),
    (32, 32, 3),
    conv_p(3, 32, 5, True)
    + conv_p(32, 32, 5, True)
    + dense_p(800, 128)
    + dense_p(128, 64)
    + dense_p(64, 10),
  ),
  # ConvNet_2 on 28x28x1: 28 -> 24 -> 12 -> 8 -> 4, flatten 8*4*4.
  (
    'convnet',
    dict(num_conv_layers=2, filters=(10, 8)),
    (28, 28, 1),
    conv_p(1, 10, 5, True)
    + conv_p(10, 8, 5, True)
    + dense_p(128, 120)
    + dense_p(120, 84)
    + dense_p(84, 10),
  ),
  # Seed 003 ConvNet_3(10, 8, 8): padding 3, flatten conv3_channels*5*5.
  (
    'convnet',
    dict(num_conv_layers=3, filters=(10, 8, 8)),
    (32, 32, 3),
    conv_p(3, 10, 5, True)
    + conv_p(10, 8, 5, True)
    + conv_p(8, 8, 5, True)
    + dense_p(200, 120)
    + dense_p(120, 84)
    + dense_p(84, 10),
  ),
  # Seed 003 ConvNet_5_bn (16 filters): flatten conv5_channels*2*2, BN on convs and hidden fcs.
  (
    'convnet',
    dict(num_conv_layers=5, filters=16, batch_norm=True),
    (32, 32, 3),
    conv_p(3, 16, 5, True)
    + 4 * conv_p(16, 16, 5, True)
    + 5 * bn_p(16)
    + dense_p(64, 120)
    + bn_p(120)
    + dense_p(120, 84)
    + bn_p(84)
    + dense_p(84, 10),
  ),
]


@pytest.mark.parametrize('name,kwargs,shape,expected', SEED_MODELS)
def test_seed_model_param_counts(name, kwargs, shape, expected):
  assert count(init_shapes(get_model(name, **kwargs), shape)['params']) == expected


def test_convnet_skips_pools_that_do_not_fit():
  # Padding 2 keeps 5x5 convs size-preserving: 32 -> 16 -> 8 -> 4 -> 2 -> 1, then two unpooled 1x1.
  model = get_model('convnet', num_conv_layers=7, filters=4, padding=2)
  assert init_shapes(model, (32, 32, 3))['params']['Dense_0']['kernel'].shape == (4, 120)


def test_convnet_raises_when_a_kernel_no_longer_fits():
  model = get_model('convnet', num_conv_layers=5, padding=0)
  with pytest.raises(ValueError, match='conv layer 4 of 5'):
    init_shapes(model, (32, 32, 3))


# --------------------------------------------------------------------------------------------------
# Shapes, modes, dtypes.


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('name', models.model_names())
def test_output_shapes(name, shape):
  model = get_model(name, num_classes=7)
  x = jnp.zeros((2, *shape), jnp.float32)

  def run():
    v = model.init({'params': jax.random.PRNGKey(0)}, x, train=False)
    train = model.apply(
      v, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)}, mutable=['batch_stats']
    )
    return train, model.apply(v, x, train=False)

  (train_logits, _), eval_logits = jax.eval_shape(run)
  for logits in (train_logits, eval_logits):
    assert logits.shape == (2, 7) and logits.dtype == jnp.float32


def test_batchnorm_running_stats_follow_pytorch_momentum():
  """flax momentum 0.9 == PyTorch 0.1: running = 0.9 running + 0.1 batch statistic (biased var)."""
  model = get_model('mlp', hidden_sizes=(6,), batch_norm=True, bn_momentum=0.9)
  x = jax.random.normal(jax.random.PRNGKey(1), (16, 4, 4, 1))
  variables = init(model, x)
  _, stats = forward(model, variables, x, train=True)
  w, b = (np.asarray(variables['params']['Dense_0'][k], np.float64) for k in ('kernel', 'bias'))
  h = np.asarray(x, np.float64).reshape(16, -1) @ w + b
  np.testing.assert_allclose(stats['BatchNorm_0']['mean'], 0.1 * h.mean(0), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(stats['BatchNorm_0']['var'], 0.9 + 0.1 * h.var(0), rtol=1e-4)

  # Eval mode normalizes with these running statistics, whatever the batch.
  variables = {'params': variables['params'], 'batch_stats': stats}
  logits, _ = forward(model, variables, x, train=False)
  p, s = variables['params'], stats['BatchNorm_0']
  z = (h - s['mean']) / np.sqrt(np.asarray(s['var']) + 1e-5) * p['BatchNorm_0']['scale']
  z = np.maximum(z + p['BatchNorm_0']['bias'], 0)
  expected = z @ np.asarray(p['Dense_1']['kernel']) + p['Dense_1']['bias']
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope='module')
def resnet8():
  """resnet8, its initial variables and a small batch (one init compile for several tests)."""
  model = get_model('resnet8')
  x = jax.random.normal(jax.random.PRNGKey(2), (4, 8, 8, 3))
  return model, init(model, x), x


def test_train_mode_updates_batch_stats_and_eval_mode_does_not(resnet8):
  model, variables, x = resnet8
  _, stats = forward(model, variables, x, train=True)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables['batch_stats'], stats)
  assert all(jax.tree.leaves(changed))

  eval_fn = jax.jit(lambda v, x: model.apply(v, x, train=False, mutable=['batch_stats']))
  logits, updates = eval_fn(variables, x)
  same = jax.tree.map(
    lambda a, b: bool(jnp.all(a == b)), variables['batch_stats'], updates['batch_stats']
  )
  assert all(jax.tree.leaves(same))
  # Eval: an example's logits don't depend on the rest of the batch; train: they do.
  np.testing.assert_allclose(eval_fn(variables, x[:1])[0][0], logits[0], rtol=1e-4, atol=1e-5)
  train_all, _ = forward(model, variables, x, train=True)
  train_half, _ = forward(model, variables, x[:2], train=True)
  assert not np.allclose(train_all[0], train_half[0], atol=1e-3)


def test_dropout_only_in_train_mode():
  x = jax.random.normal(jax.random.PRNGKey(3), (8, 28, 28, 1))
  model = get_model('mlp', hidden_sizes=(64,), dropout=0.5)
  variables = init(model, x)
  eval_a, _ = forward(model, variables, x, train=False, rng=0)
  eval_b, _ = forward(model, variables, x, train=False, rng=1)
  no_dropout, _ = forward(get_model('mlp', hidden_sizes=(64,)), variables, x, train=False)
  np.testing.assert_array_equal(eval_a, eval_b)
  np.testing.assert_array_equal(eval_a, no_dropout)
  train_a, _ = forward(model, variables, x, train=True, rng=0)
  train_b, _ = forward(model, variables, x, train=True, rng=1)
  assert not np.allclose(train_a, train_b)
  assert not np.allclose(train_a, eval_a)


@pytest.mark.parametrize('rate, broadcast_dims', [(0.0, ()), (0.3, ()), (0.5, (1, 2))])
def test_dropout_layer_is_flax_dropout_and_takes_a_traced_rate(rate, broadcast_dims):
  """The models' Dropout against flax's own nn.Dropout (the oracle) at a python rate, bit for
  bit; a traced rate (a population member's) gives the same output where 1 - rate is exact."""
  import flax.linen as nn

  from jaxland.models.mlp import Dropout

  x = jax.random.normal(jax.random.PRNGKey(6), (4, 6, 6, 3))
  rngs = {'dropout': key(7)}

  def apply(layer):
    return layer.apply({}, x, rngs=rngs)

  ours = apply(Dropout(rate, broadcast_dims))
  np.testing.assert_array_equal(ours, apply(nn.Dropout(rate, broadcast_dims, deterministic=False)))
  if rate in (0.0, 0.5):
    traced = jax.jit(lambda r: apply(Dropout(r, broadcast_dims)))(jnp.float32(rate))
    np.testing.assert_array_equal(traced, ours)


def test_dropout2d_drops_whole_channels():
  """PyTorch Dropout2d: each (example, channel) map is zeroed or scaled by 1/(1-p) as a whole."""
  model = get_model('convnet', filters=4, dropout2d=0.5)
  x = jax.random.normal(jax.random.PRNGKey(4), (4, 28, 28, 1))
  variables = init(model, x)

  @jax.jit
  def dropout_outputs(v, x):
    def output(train):
      _, state = model.apply(
        v,
        x,
        train=train,
        rngs={'dropout': key(5)},
        capture_intermediates=True,
        mutable=['intermediates', 'batch_stats'],
      )
      return state['intermediates']['Dropout_0']['__call__'][0]

    return output(False), output(True)

  before, after = map(np.asarray, dropout_outputs(variables, x))  # Eval: the undropped maps.
  assert before.shape == (4, 12, 12, 4)
  kept = np.all(np.isclose(after, 2 * before, atol=1e-6), axis=(1, 2))
  dropped = np.all(after == 0, axis=(1, 2)) & np.any(before != 0, axis=(1, 2))
  assert np.all(kept | dropped) and kept.any() and dropped.any()


@pytest.mark.parametrize(
  'name, kwargs, shape',
  [
    ('mlp', {'hidden_sizes': (64, 32)}, (28, 28, 1)),
    ('convnet', {'batch_norm': True}, (32, 32, 3)),
  ],
)
def test_init_compiled_at_o1_gives_the_bits_of_xla_default_o3(name, kwargs, shape):
  """init_variables compiles the one-shot init at LLVM -O1; the oracle is the same init compiled
  at -O3 (XLA's default; the option overrides conftest's -O1 flag), bit for bit."""
  model = get_model(name, num_classes=10, **kwargs)
  params, stats = models.init_variables(model, shape, seed=3)
  x, key = jnp.zeros((1, *shape), jnp.float32), jax.random.PRNGKey(3)
  init = jax.jit(lambda k: model.init({'params': k}, x, train=False))
  want = init.lower(key).compile({'xla_backend_optimization_level': 3})(key)
  got = {'params': params, **({'batch_stats': stats} if stats else {})}
  assert jax.tree.structure(got) == jax.tree.structure(dict(want))
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(dict(want)), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize('name', ['mlp', 'convnet', 'resnet8', 'resnet18', 'mobilenetv2_tiny'])
def test_bfloat16_compute_dtypes(name):
  """bf16 activations (first layer, BatchNorm), float32 params, BN statistics and logits."""
  kwargs = {'batch_norm': True} if name in ('mlp', 'convnet') else {}
  model = get_model(name, dtype='bfloat16', **kwargs)
  x = jnp.zeros((2, 32, 32, 3), jnp.float32)

  def run():
    v = model.init({'params': jax.random.PRNGKey(0)}, x, train=False)
    logits, state = model.apply(
      v,
      x,
      train=True,
      rngs={'dropout': jax.random.PRNGKey(1)},
      capture_intermediates=True,
      mutable=['batch_stats', 'intermediates'],
    )
    return v, logits, state, model.apply(v, x, train=False)

  variables, train_logits, state, eval_logits = jax.eval_shape(run)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state['batch_stats']))
  assert train_logits.dtype == eval_logits.dtype == jnp.float32
  inner = state['intermediates']
  first = 'Conv_0' if 'Conv_0' in inner else 'Dense_0'
  assert inner[first]['__call__'][0].dtype == jnp.bfloat16
  assert inner['BatchNorm_0']['__call__'][0].dtype == jnp.bfloat16


def test_airbench_bfloat16_computes_in_bfloat16_with_float32_params_and_gradients():
  """The fast CIFAR-10 network's bf16 path (what device_check.sh times on a GPU; its --dry does not
  train it): bf16 convolutions and BatchNorm inputs, float32 params, statistics, logits and
  gradients. Shapes only (jax.eval_shape): no compilation."""
  model = get_model('airbench_tiny', dtype='bfloat16', num_classes=10)
  x = jnp.zeros((2, 32, 32, 3), jnp.float32)

  def run():
    v = model.init({'params': jax.random.PRNGKey(0)}, x, train=False)
    logits, state = model.apply(
      v, x, train=True, capture_intermediates=True, mutable=['batch_stats', 'intermediates']
    )
    grads = jax.grad(lambda p: model.apply({**v, 'params': p}, x, train=False).sum())(v['params'])
    return v, logits, state, grads

  variables, logits, state, grads = jax.eval_shape(run)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(grads))
  assert logits.dtype == jnp.float32
  inner = state['intermediates']
  for name in ('group0_conv1', 'group2_conv2', 'group0_norm1', 'group2_norm2'):
    assert inner[name]['__call__'][0].dtype == jnp.bfloat16, name


def test_bfloat16_logits_close_to_float32(resnet8):
  model32, variables, x = resnet8
  model16 = get_model('resnet8', dtype='bfloat16')
  for train in (False, True):
    logits16, _ = forward(model16, variables, x, train)
    logits32, _ = forward(model32, variables, x, train)
    scale = float(jnp.max(jnp.abs(logits32)))
    np.testing.assert_allclose(logits16, logits32, atol=0.05 * scale)


# --------------------------------------------------------------------------------------------------
# Initialization (PyTorch-like) and the option A shortcut.


def test_dense_init_is_pytorch_default():
  """nn.Linear: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  params = init(get_model('mlp', hidden_sizes=(512,)), jnp.zeros((1, 28, 28, 1)))['params']
  bound = 1 / np.sqrt(784)
  w, b = np.asarray(params['Dense_0']['kernel']), np.asarray(params['Dense_0']['bias'])
  assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
  assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.02  # Uniform law: std = bound / sqrt(3).
  assert b.std() > bound / 3


def test_cifar_resnet_conv_init_is_kaiming_normal(resnet8):
  """akamaster's init: kaiming_normal_ (fan_in, gain sqrt 2) on convs; BN weight 1, bias 0."""
  variables = resnet8[1]
  w = np.asarray(variables['params']['BasicBlock_2']['Conv_1']['kernel'])  # 3x3, 64 -> 64.
  assert w.shape == (3, 3, 64, 64)
  assert abs(w.std() / np.sqrt(2 / (9 * 64)) - 1) < 0.03 and abs(w.mean()) < 3e-3
  bn = variables['params']['BatchNorm_0']
  assert np.all(bn['scale'] == 1) and np.all(bn['bias'] == 0)


def test_shortcut_a_matches_akamaster():
  """F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4)), in NHWC."""
  x = np.random.default_rng(0).normal(size=(2, 6, 6, 16)).astype(np.float32)
  out = np.asarray(shortcut_a(jnp.asarray(x), 32, 2))
  expected = np.zeros((2, 3, 3, 32), np.float32)
  expected[..., 8:24] = x[:, ::2, ::2, :]
  np.testing.assert_array_equal(out, expected)


def test_stride2_conv_pads_like_pytorch():
  """PyTorch pads 1 on every side, so a centre-tap 3x3 kernel with stride 2 picks x[2i, 2j]
  ('SAME' would pad (0, 1) on even sizes and pick x[2i + 1, 2j + 1])."""
  x = jnp.arange(36.0).reshape(1, 6, 6, 1)
  kernel = jnp.zeros((3, 3, 1, 1)).at[1, 1].set(1.0)
  out = conv3x3(1, 2, jnp.float32, nn_init.zeros).apply({'params': {'kernel': kernel}}, x)
  np.testing.assert_array_equal(out, x[:, ::2, ::2, :])


# --------------------------------------------------------------------------------------------------
# Registry errors and config compatibility.


def test_unknown_model_lists_the_choices():
  with pytest.raises(ValueError) as err:
    get_model('resnet21')
  assert str(err.value) == f"Unknown model 'resnet21'; choose from {sorted(models.MODELS)}"
  assert models.model_names() == sorted(models.MODELS)


def test_unknown_kwarg_names_it_and_the_allowed_ones():
  with pytest.raises(ValueError) as err:
    get_model('resnet20', hidden_sizes=(100,), activation='relu')
  message = str(err.value)
  for word in ("'activation'", "'hidden_sizes'", "'resnet20'", "'bn_momentum'", "'width'"):
    assert word in message
  with pytest.raises(ValueError, match="'depth'"):
    get_model('resnet20', depth=32)  # Fixed by the name.


@pytest.mark.parametrize(
  'name,kwargs,words',
  [
    ('mlp', {'activation': 'swish2'}, ["'swish2'", "'relu'", "'gelu'"]),
    ('mlp', {'dtype': 'float16'}, ["'float16'", "'bfloat16'", "'float32'"]),
    ('mlp', {'dropout': 1.0}, ['dropout']),
    ('convnet', {'num_conv_layers': 3, 'filters': (8, 8)}, ['filters', 'num_conv_layers']),
    ('convnet', {'dropout2d': -0.1}, ['dropout2d']),
    ('resnet18', {'bn_momentum': 1.5}, ['bn_momentum']),
  ],
)
def test_bad_values_raise_at_construction(name, kwargs, words):
  with pytest.raises(ValueError) as err:
    get_model(name, **kwargs)
  for word in words:
    assert word in str(err.value)


@pytest.mark.parametrize('name', models.model_names())
def test_every_model_takes_the_common_kwargs(name):
  model = get_model(name, num_classes=3, dtype=jnp.bfloat16, bn_momentum=0.99)
  assert (model.num_classes, model.dtype, model.bn_momentum) == (3, jnp.bfloat16, 0.99)
  assert {'num_classes', 'dtype', 'bn_momentum'} <= set(models.allowed_kwargs(name))


def test_default_config_model_section_builds():
  spec = importlib.util.spec_from_file_location('default_config', REPO / 'configs' / 'default.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  model = get_model(**config.model, num_classes=10)
  assert model.hidden_sizes == tuple(config.model.hidden_sizes)
  # Lists (as JSON or the command line may give) become tuples.
  assert get_model('mlp', hidden_sizes=[32, 16]).hidden_sizes == (32, 16)


# --------------------------------------------------------------------------------------------------
# The CPU-fast convolution of the CIFAR ResNets (jaxland.models.layers) against lax.conv.


def _plain_conv(x, w, strides, padding):
  return jax.lax.conv_general_dilated(
    x, w, strides, padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


@pytest.mark.parametrize(
  'batch, size, cin, cout, stride',
  [
    (10, 8, 3, 4, 1),
    (9, 8, 4, 8, 2),
    (16, 6, 8, 8, 1),
    (4, 7, 2, 3, 2),
  ],  # 10, 9, 4: partial chunks.
)
def test_layers_conv_values_and_gradients_equal_lax_conv(batch, size, cin, cout, stride):
  """Same forward, and the same dL/dx and dL/dW as jax.grad of the plain convolution (f32)."""
  from jaxland.models import layers

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) / 3, jnp.float32)
  args = ((stride, stride), ((1, 1), (1, 1)))
  target = jnp.asarray(rng.normal(size=_plain_conv(x, w, *args).shape), jnp.float32)

  def loss(conv):
    return lambda x, w: jnp.sum(jnp.sin(conv(jnp.maximum(x, 0.1 * x), w, *args)) * target)

  fast = jax.jit(jax.value_and_grad(loss(layers.conv), argnums=(0, 1)))(x, w)
  plain = jax.jit(jax.value_and_grad(loss(_plain_conv), argnums=(0, 1)))(x, w)
  np.testing.assert_allclose(fast[0], plain[0], rtol=1e-6)
  for got, want in zip(fast[1], plain[1], strict=True):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6 * float(jnp.max(jnp.abs(want))))
  # The weight gradient alone, chunk by chunk, is the same sum in another order.
  g = jnp.asarray(rng.normal(size=target.shape), jnp.float32)
  dw = layers.weight_grad(x, g, w.shape, *args, chunk=4)
  want = jax.vjp(lambda w: _plain_conv(x, w, *args), w)[1](g)[0]
  np.testing.assert_allclose(dw, want, rtol=2e-5, atol=2e-6 * float(jnp.max(jnp.abs(want))))


def test_layers_conv_hvp_and_vmap_equal_lax_conv():
  """Forward-over-reverse (HVPs) and vmap (populations) through the custom gradient: the same
  Hessian-vector product and the same per-member gradients as the plain convolution's."""
  from jaxland.models import layers

  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(6, 8, 8, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 3, 4)) / 3, jnp.float32)
  args = ((1, 1), ((1, 1), (1, 1)))

  def loss(conv):
    return lambda w, x: jnp.sum(jnp.tanh(conv(x, w, *args)) ** 2)

  def hvp(conv):
    grad = jax.grad(loss(conv))
    return jax.jit(lambda w, v: jax.jvp(lambda q: grad(q, x), (w,), (v,))[1])

  v = jnp.asarray(rng.normal(size=w.shape), jnp.float32)
  want = hvp(_plain_conv)(w, v)
  np.testing.assert_allclose(
    hvp(layers.conv)(w, v), want, rtol=1e-4, atol=1e-5 * jnp.abs(want).max()
  )
  two = jnp.stack([w, 1.1 * w])
  batched = jax.jit(jax.vmap(jax.grad(loss(layers.conv)), in_axes=(0, None)))(two, x)
  for member, weights in enumerate(two):
    want = jax.grad(loss(_plain_conv))(weights, x)
    # The same sums in another order: float32 rounding of terms as large as the largest entry
    # (an AVX-512 VM's kernels put 2.3e-6 on an entry of 4e-3 where the largest is 25).
    atol = 2e-6 * float(jnp.max(jnp.abs(want)))
    np.testing.assert_allclose(batched[member], want, rtol=1e-4, atol=atol)


@pytest.mark.parametrize('batch, size, cin, cout, padding', [(5, 8, 3, 4, 1), (4, 7, 2, 3, 0)])
def test_matmul_backward_conv_equals_lax_conv(batch, size, cin, cout, padding):
  """layers.conv_matmul (im2col-matmul backward, airbench's option): the same forward, dL/dx and
  dL/dW as jax.grad of the plain stride-1 convolution (f32)."""
  from jaxland.models import layers

  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) / 3, jnp.float32)
  pads = ((padding, padding), (padding, padding))
  target = jnp.asarray(rng.normal(size=_plain_conv(x, w, (1, 1), pads).shape), jnp.float32)

  def loss(conv):
    return lambda x, w: jnp.sum(jnp.sin(conv(jnp.maximum(x, 0.1 * x), w)) * target)

  fast = jax.jit(jax.value_and_grad(loss(lambda x, w: layers.conv_matmul(x, w, pads)), (0, 1)))
  plain = jax.jit(jax.value_and_grad(loss(lambda x, w: _plain_conv(x, w, (1, 1), pads)), (0, 1)))
  got, want = fast(x, w), plain(x, w)
  np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
  for g, e in zip(got[1], want[1], strict=True):
    np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6 * float(jnp.max(jnp.abs(e))))


def _flax_conv(features, kernel_size, strides, padding, dtype, kernel_init, name=None):
  """jaxland.models.layers.Conv's plain flax twin (what CifarResNet used before it)."""
  import flax.linen as nn

  return nn.Conv(
    features,
    kernel_size,
    strides=strides,
    padding=padding,
    use_bias=False,
    dtype=dtype,
    kernel_init=kernel_init,
    name=name,
  )


def test_cifar_resnet_equals_its_plain_flax_twin(monkeypatch):
  """Same parameter tree and initial values, same train-mode logits and batch statistics, and the
  same gradients (to float32 rounding) as the ResNet built from nn.Conv (HVPs and vmap through
  the custom gradient: test_layers_conv_hvp_and_vmap_equal_lax_conv)."""
  from jaxland.models import resnet

  model = get_model('resnet8')
  x = jax.random.normal(jax.random.PRNGKey(2), (12, 8, 8, 3))
  labels = jnp.arange(12) % 10
  variables = init(model, x)

  def loss(params):
    logits, state = model.apply(
      {'params': params, 'batch_stats': variables['batch_stats']},
      x,
      train=True,
      mutable=['batch_stats'],
    )
    ce = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(12), labels])
    return ce, (logits, state['batch_stats'])

  def results():
    (value, (logits, stats)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
      variables['params']
    )
    return value, logits, stats, grads

  fast = results()
  monkeypatch.setattr(resnet, 'Conv', _flax_conv)
  twin = init(get_model('resnet8'), x)
  assert jax.tree.structure(twin) == jax.tree.structure(variables)
  assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), twin, variables)))
  plain = results()
  for got, want in zip(jax.tree.leaves(fast), jax.tree.leaves(plain), strict=True):
    scale = float(jnp.max(jnp.abs(want))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)
  monkeypatch.undo()
