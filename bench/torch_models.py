"""PyTorch twins of the jaxland models the benches time (never imported by jaxland itself).

ResNet-20/32/56 as akamaster/pytorch_resnet_cifar10 (option A shortcuts, conv without bias, BN
after every conv), the fashion MLP (784-512-512-10) and seed 003's CPU ConvNet with BatchNorm, the
same shapes as jaxland's. Only speed is compared, so inits are PyTorch's defaults.
"""

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
  """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the option-A shortcut, then ReLU."""

  def __init__(self, cin: int, cout: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.pad = cout - cin
    self.stride = stride

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    if self.stride != 1 or self.pad:
      x = x[:, :, :: self.stride, :: self.stride]
      x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
    return F.relu(y + x)


class CifarResNet(nn.Module):
  """He et al.'s CIFAR ResNet of depth 6n + 2 (16/32/64 channels)."""

  def __init__(self, depth: int, num_classes: int = 10):
    super().__init__()
    n = (depth - 2) // 6
    self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
    self.bn = nn.BatchNorm2d(16)
    layers, cin = [], 16
    for stage, cout in enumerate((16, 32, 64)):
      for block in range(n):
        layers.append(BasicBlock(cin, cout, 2 if stage > 0 and block == 0 else 1))
        cin = cout
    self.layers = nn.Sequential(*layers)
    self.fc = nn.Linear(64, num_classes)

  def forward(self, x):
    x = self.layers(F.relu(self.bn(self.conv(x))))
    return self.fc(x.mean((2, 3)))


class MLP(nn.Module):
  """Flatten -> Dense + ReLU per hidden size -> Dense."""

  def __init__(self, in_features: int, hidden=(512, 512), num_classes: int = 10):
    super().__init__()
    sizes = (in_features, *hidden)
    self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    self.out = nn.Linear(sizes[-1], num_classes)

  def forward(self, x):
    x = x.flatten(1)
    for layer in self.hidden:
      x = F.relu(layer(x))
    return self.out(x)


class ConvNet(nn.Module):
  """Seed 003's ConvNet with BatchNorm: [conv k x k -> BN -> ReLU -> 2x2 max pool] per layer, then
  [Dense -> BN -> ReLU] per hidden size, then the classifier (jaxland's convnet, batch_norm=True).
  The defaults are results/sweeps' CPU CNN: 3 conv layers of 16 filters, 5x5 padded by 2."""

  def __init__(self, cin, size, layers=3, filters=16, kernel=5, pad=2, hidden=(128, 64)):
    super().__init__()
    convs = []
    for _ in range(layers):
      convs += [nn.Conv2d(cin, filters, kernel, 1, pad), nn.BatchNorm2d(filters), nn.ReLU()]
      size = size + 2 * pad - kernel + 1
      if size >= 2:
        convs.append(nn.MaxPool2d(2))
        size //= 2
      cin = filters
    dense, width = [], filters * size * size
    for h in hidden:
      dense += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU()]
      width = h
    self.body = nn.Sequential(*convs, nn.Flatten(), *dense, nn.Linear(width, 10))

  def forward(self, x):
    return self.body(x)


class Airbench(nn.Module):
  """jaxland's `airbench` (airbench94's network): a frozen 2x2 conv to 24 channels with bias,
  GELU, per width [conv 3x3, 2x2 max pool, BN (no scale), GELU, conv 3x3, BN, GELU], a 3x3 max
  pool, a bias-free linear head x 1/9."""

  def __init__(self, widths=(64, 256, 256), num_classes: int = 10):
    super().__init__()
    whiten = nn.Conv2d(3, 24, 2)
    whiten.weight.requires_grad = False
    layers, cin = [whiten, nn.GELU()], 24
    for w in widths:
      for i in range(2):
        bn = nn.BatchNorm2d(w, eps=1e-12, momentum=0.4)
        bn.weight.requires_grad = False
        conv = nn.Conv2d(cin if i == 0 else w, w, 3, padding=1, bias=False)
        layers += [conv, nn.MaxPool2d(2), bn, nn.GELU()] if i == 0 else [conv, bn, nn.GELU()]
      cin = w
    layers += [nn.MaxPool2d(3), nn.Flatten(), nn.Linear(cin, num_classes, bias=False)]
    self.body = nn.Sequential(*layers)

  def forward(self, x):
    return self.body(x) / 9


def build(name: str, image_shape) -> nn.Module:
  """The torch twin of a jaxland model name: resnet20/32/56, mlp, convnet, airbench(_cpu)."""
  h, _, c = image_shape
  if name == 'airbench':
    return Airbench()
  if name == 'airbench_cpu':
    return Airbench((24, 96, 96))
  if name.startswith('resnet'):
    return CifarResNet(int(name[len('resnet') :]))
  if name == 'mlp':
    return MLP(h * h * c)
  if name == 'convnet':
    return ConvNet(c, h)
  raise ValueError(
    f'Unknown model {name!r}; choose from resnet20/32/56, mlp, convnet, airbench, airbench_cpu'
  )


def train_step_fn(model: nn.Module, lr: float = 0.1, momentum: float = 0.9, wd: float = 5e-4):
  """One SGD step (coupled L2, momentum), as jaxland's sgd recipe: a closure of (x, y)."""
  params = [p for p in model.parameters() if p.requires_grad]
  opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)

  def step(x, y):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss

  return step
