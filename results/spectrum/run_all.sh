#!/usr/bin/env bash
# Reruns results/spectrum/ (Hessian spectra during training, 2-core CPU, about 15-20 min):
#  1. Fashion-MNIST MLP 784-256-128-10 (configs/fashion_mlp.py, 2 epochs = 936 steps, SGD momentum
#     0.9, lr 0.05), params saved every 100 steps; the spectrum callback logs the top-10 Hessian
#     eigenvalues on the first 5,000 train examples every 50 steps (Lanczos, 40 steps);
#  2. the spectrum task at steps 0, 200, 500, 936: top-20 eigenpairs (Lanczos 80 steps), SLQ
#     density (5 probes x 80 steps), Hutchinson trace (50 probes), first 5,000 train examples;
#  3. Fashion-MNIST CNN (configs/cifar_cnn.py:fashion,conv=2,filters=16: two 5x5 conv layers of 16
#     filters, dense 128-64, plain SGD lr 0.05, batch 32) on the first 10,000 train images for
#     3 epochs (936 steps), params every 100 steps;
#  4. its spectra at steps 0, 200, 500, 936 on the first 1,000 train examples (Lanczos 40 steps,
#     SLQ 2 x 40, trace 10 probes: a CNN HVP costs ~60x an MLP one on this CPU);
#  5. results/spectrum/report.py: tables, figures and the numbers quoted in README.md.
# Run dirs go to runs/spectrum_results/ (ignored by git). Run from anywhere:
#   bash results/spectrum/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PY:-.venv/bin/python}"
ROOT="${ROOT:-runs/spectrum_results}"
OUT="${OUT:-results/spectrum}"
RUN="nice -n 5 ${PY} -m jaxland.main"
STEPS='(0,200,500,936)' CNN_STEPS='(0,200,500,936)' ARG='' N_MLP=5000 N_CNN=1000 LANCZOS=80
if [ "${SMOKE:-0}" = 1 ]; then  # The same pipeline in seconds: runs and outputs under /tmp.
  ROOT=/tmp/jaxland_results_smoke/spectrum/runs OUT=/tmp/jaxland_results_smoke/spectrum
  STEPS='(0,50)' CNN_STEPS='(0,20)' ARG=,smoke N_MLP=256 N_CNN=128 LANCZOS=20
  mkdir -p "$OUT"
fi
log() { echo "=== $*: $(date +%T)"; }

log "MLP training"
$RUN --config=configs/fashion_mlp.py:spectrum$ARG --workdir="$ROOT/mlp" \
  --config.train.trajectory_every_steps=100 --config.train.log_every_steps=50 \
  --config.spectrum.every_steps=50 --config.spectrum.num_examples=$N_MLP \
  --config.spectrum.top_k=10 --config.spectrum.bottom_k=0 --config.spectrum.lanczos_steps=40 \
  --config.spectrum.slq_probes=0 --config.spectrum.trace_probes=0 \
  --config.spectrum.callback_save=False 2>&1 | grep '^\[jaxland\]'
log "MLP spectra"
$RUN --config=configs/spectrum.py --config.checkpoint="$ROOT/mlp" --workdir="$ROOT/mlp_spectra" \
  --config.spectrum.steps="$STEPS" --config.spectrum.num_examples=$N_MLP \
  --config.spectrum.lanczos_steps=$LANCZOS --config.spectrum.slq_steps=$LANCZOS \
  --config.spectrum.slq_probes=5 --config.spectrum.trace_probes=50 2>&1 | grep '^\[jaxland\]'

log "CNN training"
$RUN --config=configs/cifar_cnn.py:fashion,conv=2,filters=16$ARG --workdir="$ROOT/cnn" \
  --config.data.train_subset=10000 --config.train.num_epochs=3 \
  --config.train.early_stopping_patience=0 --config.train.trajectory_every_steps=100 \
  --config.train.log_every_steps=100 2>&1 | grep '^\[jaxland\]'
log "CNN spectra"
$RUN --config=configs/spectrum.py --config.checkpoint="$ROOT/cnn" --workdir="$ROOT/cnn_spectra" \
  --config.spectrum.steps="$CNN_STEPS" --config.spectrum.num_examples=$N_CNN \
  --config.spectrum.batch_size=250 --config.spectrum.lanczos_steps=40 \
  --config.spectrum.slq_steps=40 --config.spectrum.slq_probes=2 \
  --config.spectrum.trace_probes=10 2>&1 | grep '^\[jaxland\]'

log "report"
nice -n 5 "$PY" results/spectrum/report.py --root="$ROOT" --out="$OUT"
log "finished"
