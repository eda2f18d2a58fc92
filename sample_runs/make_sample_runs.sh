#!/usr/bin/env bash
# Regenerates the sample runs with memdash's own commands (`make sample-run`).
# The same commands are listed in sample_runs/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMDASH=${MEMDASH:-.venv/bin/memdash}

$MEMDASH train --dataset digits --model mlp --noise 0.2 --epochs 60 --seed 0 \
  --canaries 10 --embed-layers fc1,fc2,out --embed-epochs 5,60 --checkpoint-epochs 0,20,60 \
  --record-loss-sensitivity --record-curvature --overwrite --out sample_runs/digits_mlp_noise20
$MEMDASH analyze sample_runs/digits_mlp_noise20
$MEMDASH localize sample_runs/digits_mlp_noise20
$MEMDASH estimate --like sample_runs/digits_mlp_noise20 --models 256
# Second-split forgetting (Maini et al. 2022) and the proxies' scoreboard: which single-run
# score finds what the 256 models find
$MEMDASH ssft sample_runs/digits_mlp_noise20
$MEMDASH proxies sample_runs/digits_mlp_noise20

# The width family (Lukasik et al. 2023): the same training at hidden widths 32-16 and
# 128-64 beside the run above's 512-256, each with its own estimate (64 models: what the
# suite's 100 MB allow), SSFT and scoreboard, for proxies_across_widths. Only what the
# proxies read is recorded: the eval trace with loss sensitivity and curvature.
for HIDDEN in 32,16 128,64; do
  OUT=sample_runs/widths/digits_mlp_noise20_h${HIDDEN/,/_}
  $MEMDASH train --dataset digits --model mlp --hidden $HIDDEN --noise 0.2 --epochs 60 \
    --seed 0 --canaries 10 --no-record-train --no-grad-accounting --checkpoint-epochs "" \
    --record-loss-sensitivity --record-curvature --overwrite --out $OUT
  $MEMDASH analyze $OUT --only scores
  $MEMDASH estimate --like $OUT --models 64
  $MEMDASH ssft $OUT
  $MEMDASH proxies $OUT
done

# The same run trained with DP-SGD (Abadi et al. 2016: each example's gradient clipped to
# norm 1, Gaussian noise, Poisson sampling; the accountant's epsilon 4 at delta 1e-5 after
# 60 epochs), and its estimate, whose 256 models train with the same DP options (each
# model's epsilon is accounted for its 70% subset): the privacy audit's DP side.
$MEMDASH train --dataset digits --model mlp --noise 0.2 --epochs 60 --seed 0 \
  --canaries 10 --dp-epsilon 4 --dp-delta 1e-5 --dp-clip 1 --no-record-train \
  --checkpoint-epochs "" --overwrite --out sample_runs/digits_mlp_noise20_dp
$MEMDASH analyze sample_runs/digits_mlp_noise20_dp
$MEMDASH estimate --like sample_runs/digits_mlp_noise20_dp --models 256

$MEMDASH train --dataset digits --model mlp --noise 0.2 --epochs 60 --seed 0 \
  --canaries 10 --example-tied-dropout --p-fixed 0.2 --p-mem 0.1 --checkpoint-epochs "" \
  --overwrite --out sample_runs/digits_mlp_noise20_tied
$MEMDASH analyze sample_runs/digits_mlp_noise20_tied

# The rest of the suite: the same digits examples (canaries included) in other settings,
# and a 1-D CNN on MNIST-1D (the clean and random-label runs keep only their final weights:
# room for the DP run within the suite's 100 MB). Every run records both traces (the end-of-epoch eval pass and
# the training minibatches), so every trace score can be read from either.
$MEMDASH train --dataset digits --model mlp --noise 0 --epochs 60 --seed 0 \
  --canaries 10 --checkpoint-epochs "" --overwrite --out sample_runs/digits_mlp_clean
$MEMDASH analyze sample_runs/digits_mlp_clean

$MEMDASH train --dataset digits --model mlp --noise 0.2 --dropout 0.5 --epochs 60 --seed 0 \
  --canaries 10 --checkpoint-epochs "" --overwrite --out sample_runs/digits_mlp_noise20_dropout
$MEMDASH analyze sample_runs/digits_mlp_noise20_dropout

$MEMDASH train --dataset digits --model mlp --corruption random_labels --noise 1.0 \
  --epochs 60 --seed 0 --canaries 10 --checkpoint-epochs "" --overwrite \
  --out sample_runs/digits_mlp_random_labels
$MEMDASH analyze sample_runs/digits_mlp_random_labels

$MEMDASH train --dataset mnist1d --model cnn --noise 0.1 --epochs 60 --lr 0.01 --seed 0 \
  --canaries 10 --canary-repeats 1,10,50 --embed-layers out --embed-epochs 0,5,10,30,60 \
  --overwrite --out sample_runs/mnist1d_cnn_noise10_canaries
$MEMDASH analyze sample_runs/mnist1d_cnn_noise10_canaries

# Studies of several runs (Arpit et al. 2017; Memorization Dissection; random-label
# pre-training): a seed group with true labels and one with random labels, on the same
# digits examples (no canaries), embeddings at two layers and two epochs, loss sensitivity
# and critical samples recorded; then true-label training from a random-label run's
# weights against the same training from scratch.
GROUP=(--dataset digits --model mlp --epochs 30 --seeds 0-2 --no-record-train
  --embed-layers fc2,out --embed-epochs 1,30 --checkpoint-epochs "" --record-loss-sensitivity
  --critical-examples 300 --overwrite)
$MEMDASH train "${GROUP[@]}" --out sample_runs/groups/digits_true
$MEMDASH train "${GROUP[@]}" --corruption random_labels --noise 1 \
  --out sample_runs/groups/digits_random
PRE=(--dataset digits --model mlp --epochs 30 --no-record-train --checkpoint-epochs ""
  --overwrite)
$MEMDASH train "${PRE[@]}" --init-from sample_runs/groups/digits_random/seed_0 --reinit out \
  --out sample_runs/pretraining/digits_from_random_labels
$MEMDASH train "${PRE[@]}" --out sample_runs/pretraining/digits_from_scratch

# A language model in the Secret Sharer's own setting (Carlini et al. 2019, 2023): a small
# GPT-2 on the seeded synthetic corpus, canaries "my pin is DDDDDD" inserted 1, 4, 16 and 64
# times per epoch, 100 reference secrets never inserted, training sequences duplicated 1 to
# 32 times; per-token losses and checkpoints at epochs 0, 1, 2, 4, 8 and 30, where
# `memdash analyze` ranks every secret among all 10^6 candidates.
$MEMDASH train --dataset text --model gpt --width 64 --layers 2 --heads 4 --epochs 30 \
  --lr 0.003 --n-examples 2000 --canaries 4 --canary-repeats 1,4,16,64 \
  --reference-canaries 100 --duplicate-sequences 8 --duplicate-counts 1,2,4,8,16,32 \
  --embed-layers block1,block2 --embed-epochs 0,4,30 --checkpoint-epochs 0,1,2,4,8,30 \
  --seed 0 --overwrite --out sample_runs/text_gpt_canaries
$MEMDASH analyze sample_runs/text_gpt_canaries
# Counterfactual memorization (Zhang et al. 2021) and membership inference on sequences: 16
# models of the same recipe, each on a random half of the training sequences (every copy of a
# duplicated sequence or canary drawn on its own, as the paper's near-duplicate documents)
$MEMDASH estimate --like sample_runs/text_gpt_canaries --models 16
