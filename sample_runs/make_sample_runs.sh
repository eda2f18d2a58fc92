#!/usr/bin/env bash
# Regenerates the sample runs with memdash's own commands (`make sample-run`).
# The same commands are listed in sample_runs/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMDASH=${MEMDASH:-.venv/bin/memdash}

$MEMDASH train --dataset digits --model mlp --noise 0.2 --epochs 60 --seed 0 \
  --canaries 10 --embed-layers fc2,out --embed-epochs 0,10,30,60 --checkpoint-epochs 0,20,60 \
  --overwrite --out sample_runs/digits_mlp_noise20
$MEMDASH analyze sample_runs/digits_mlp_noise20
$MEMDASH localize sample_runs/digits_mlp_noise20
$MEMDASH estimate --like sample_runs/digits_mlp_noise20 --models 256

$MEMDASH train --dataset digits --model mlp --noise 0.2 --epochs 60 --seed 0 \
  --canaries 10 --example-tied-dropout --p-fixed 0.2 --p-mem 0.1 \
  --overwrite --out sample_runs/digits_mlp_noise20_tied
$MEMDASH analyze sample_runs/digits_mlp_noise20_tied
