#!/usr/bin/env bash
# The prepared GPU check (issue 13, part 4): one command, at most 8 minutes on one GPU, that writes
# results/gpu/device_check.md (train-step img/s of ResNet-20/32/56 and the MLP in float32 and
# bfloat16, jaxland against PyTorch on the same GPU; HVP / gradient cost; repulsion per anchor;
# one real epoch of cifar10_jpeg75; placeholders for the population speed-up and the fast CIFAR-10
# time). Commit the file it writes.
#
# Prepare once, here (what does not travel: ../shared and the packages the GPU image lacks):
#   bash bench/device_check.sh --prepare     # wheels + the CIFAR-10 JPEG copy into .device/
# On the GPU machine, from the repository root (the device tool: carry=['.device']):
#   bash bench/device_check.sh
# Anywhere, in seconds (tiny sizes on the CPU; tests/test_device_check.py runs it):
#   bash bench/device_check.sh --dry [OUT.md]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
export PYTHONUNBUFFERED=1

if [[ $mode == --prepare ]]; then
  py=${PYTHON:-.venv/bin/python}
  mkdir -p .device/wheels .device/data/cifar10
  # The GPU image has Python 3.12, jax, flax, optax, orbax, torch, no network; these four travel.
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .device/wheels \
    ml_collections==1.1.0 clu==0.0.12 tensorboardX==2.6.5 simplejpeg==1.9.0
  cp "${JAXLAND_DATA_DIR:-../shared/data}/cifar10/cifar10-jpeg75.tar.xz" .device/data/cifar10/
  du -sh .device
  exit 0
fi

if [[ $mode == --dry ]]; then
  py=${PYTHON:-.venv/bin/python}
  out=${2:-/tmp/jaxland_device_check_dry.md}
  JAX_PLATFORMS=cpu exec "$py" bench/device_check.py --dry --out="$out" --budget_s=600
fi

py=${PYTHON:-python3}
if [[ -d .device/wheels ]]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/jaxland_site .device/wheels/*.whl
  export PYTHONPATH=/tmp/jaxland_site${PYTHONPATH:+:$PYTHONPATH}
fi
export JAXLAND_DATA_DIR=${JAXLAND_DATA_DIR:-$PWD/.device/data}
export JAXLAND_TORCH_PYTHON=${JAXLAND_TORCH_PYTHON:-$(command -v "$py")}
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # PyTorch shares the GPU with jax's processes.
export JAXLAND_CACHE_DIR=''                 # Every compile timed afresh, nothing left behind.
"$py" bench/device_check.py --out=results/gpu/device_check.md --budget_s=450
if [[ -n ${OUT:-} ]]; then cp results/gpu/device_check.md "$OUT/"; fi
