"""The plain PyTorch script that bench/short_run.py times against a whole jaxland run: what
`python -m jaxland.main --config=configs/fashion_mlp.py --config.train.num_epochs=N` does, written
the way a researcher would write it by hand.

The same work: Fashion-MNIST from Debian's IDX files, normalised by the training set's channel
mean and std; an MLP 784-256-128-10 with PyTorch's default init; SGD with momentum 0.9, lr 0.05,
batch 128, a fresh shuffle each epoch (the last partial batch dropped, as jaxland does); the train
loss printed every 100 steps; the test set evaluated after every epoch; a checkpoint written after
every epoch. Bench-only: it needs a python with torch (never a jaxland dependency).

Run:    $JAXLAND_TORCH_PYTHON bench/torch_fashion_mlp.py [--epochs=1] [--threads=2] [--out=DIR]
Prints the test accuracy after each epoch.
"""

import argparse
import gzip
import os
import tempfile

import numpy as np
import torch
from torch import nn

DEBIAN = '/usr/share/datasets/fashion-mnist'


def read_idx(path: str, header: int) -> np.ndarray:
  with gzip.open(path, 'rb') as f:
    return np.frombuffer(f.read(), np.uint8, offset=header)


def load(data_dir: str, prefix: str):
  images = read_idx(os.path.join(data_dir, f'{prefix}-images-idx3-ubyte.gz'), 16)
  labels = read_idx(os.path.join(data_dir, f'{prefix}-labels-idx1-ubyte.gz'), 8)
  return torch.from_numpy(images.reshape(-1, 784).copy()), torch.from_numpy(labels.astype(np.int64))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=DEBIAN)
  parser.add_argument('--epochs', type=int, default=1)
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--out', default='')
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  train_x, train_y = load(args.data_dir, 'train')
  test_x, test_y = load(args.data_dir, 't10k')
  scaled = train_x.float() / 255
  mean, std = scaled.mean(), scaled.std()
  train_x, test_x = (scaled - mean) / std, (test_x.float() / 255 - mean) / std
  model = nn.Sequential(
    nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
  )
  opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
  loss_fn = nn.CrossEntropyLoss()
  out = args.out or tempfile.mkdtemp(prefix='torch_fashion_mlp_')
  batch, step = 128, 0
  for epoch in range(args.epochs):
    model.train()
    order = torch.randperm(len(train_x))
    for i in range(len(train_x) // batch):
      idx = order[i * batch : (i + 1) * batch]
      loss = loss_fn(model(train_x[idx]), train_y[idx])
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
      step += 1
      if step % 100 == 0:
        print(f'step {step} train/loss {loss.item():.4f}')
    model.eval()
    with torch.no_grad():
      correct = sum(
        (model(test_x[i : i + 1000]).argmax(1) == test_y[i : i + 1000]).sum().item()
        for i in range(0, len(test_x), 1000)
      )
    torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step},
               os.path.join(out, f'checkpoint_{step}.pt'))  # fmt: skip
    print(f'epoch {epoch + 1} test/accuracy {correct / len(test_x):.4f}')


if __name__ == '__main__':
  main()
