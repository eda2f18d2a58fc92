"""DP-SGD of the vmapped CNN ensemble against the plain one, side by side in one process (#25).

The estimate's 16 models (70% subsets) of the sample MNIST-1D CNN (conv 32, 64, dense 512,
batch 32, SGD with momentum: sample_runs/mnist1d_cnn_noise10_canaries's config; digits when
the `mnist1d` package is missing) trained for 2 epochs

    plain   `ensemble.batched.fit_batched` (a VmapEnsemble: shuffled batches, mean loss)
    dp      `ensemble.dp_batched.fit_dp` (Poisson batches, per-example gradients with
            torch.func clipped to C = 1 by `ensemble.dp_vmap.clipped_sums`, the dense layers
            in closed form, noise sigma = 1)
    dp, materialized (with --materialized) the same with every per-example gradient
            materialized (``closed_form=False``)

alternating over the rounds (medians), with the time of the clipped sums alone.

Run: .venv/bin/python benchmarks/dp_cnn.py [--rounds 1] [--epochs 2] [--materialized]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from memdash.analysis.ensemble import dp_vmap
from memdash.analysis.ensemble.batched import fit_batched, model_seed, subset_mask
from memdash.analysis.ensemble.dp_batched import fit_dp
from memdash.analysis.record.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from memdash.analysis.record.training import prepare_data

K = 16
DATASET = "mnist1d" if importlib.util.find_spec("mnist1d") else "digits"
SAMPLE = RunConfig(
    data=DataConfig(dataset=DATASET, noise=0.1),
    model=ModelConfig(name="cnn"),
    train=TrainConfig(epochs=2, batch_size=32, lr=0.01, momentum=0.9),
)
DP = {"noise_multiplier": 1.0, "clip": 1.0, "delta": 1e-5, "epsilon": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--materialized", action="store_true", help="also closed_form=False")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = replace(SAMPLE, train=replace(SAMPLE.train, epochs=args.epochs))
    prepared = prepare_data(config)
    inputs = torch.from_numpy(prepared.inputs)
    labels = torch.tensor(prepared.examples["label"].to_numpy())
    train_ids = np.flatnonzero((prepared.examples["split"] == "train").to_numpy())
    seeds = [model_seed(0, 0, k) for k in range(K)]
    subsets = np.stack([subset_mask(s, len(train_ids), 0.7) for s in seeds])

    load_before = os.getloadavg()[0]
    variants = {"dp": True, "dp, materialized": False} if args.materialized else {"dp": True}
    inner = dp_vmap.clipped_sums
    times: dict[str, list[float]] = {"plain": []}
    steps = 0
    for _ in range(args.rounds):
        start = time.perf_counter()
        plain = fit_batched(config, inputs, labels, train_ids, seeds, subsets)
        times["plain"].append(time.perf_counter() - start)
        for name, closed_form in variants.items():
            spent: list[float] = []

            def timed(*a, closed_form=closed_form, spent=spent, **kw):
                start = time.perf_counter()
                try:
                    return inner(*a, closed_form=closed_form, **kw)
                finally:
                    spent.append(time.perf_counter() - start)

            dp_vmap.clipped_sums = timed  # fit_dp calls it through the module
            start = time.perf_counter()
            try:
                fit_dp(config, inputs, labels, train_ids, seeds, subsets, DP)
            finally:
                dp_vmap.clipped_sums = inner
            times.setdefault(name, []).append(time.perf_counter() - start)
            times.setdefault(f"{name} clip", []).append(sum(spent))
            steps = len(spent)
    median = {name: statistics.median(t) for name, t in times.items()}
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    n_params = sum(p[0].numel() for p in plain.parameters())
    p = median["plain"]
    print(
        f"torch threads: {torch.get_num_threads()}, {load}, "
        f"dataset {DATASET}, inputs {tuple(inputs.shape)}"
    )
    print(
        f"{K} CNNs ({n_params:,} parameters each) at once, {args.epochs} epochs on 70% subsets "
        f"({int(subsets[0].sum()):,} examples), batch {config.train.batch_size}, "
        f"{args.rounds} round(s), {steps} DP steps"
    )
    print(f"   plain              {p:8.2f} s  ({K * args.epochs / p:.2f} model-epochs/s)")
    for name in variants:
        d, c = median[name], median[f"{name} clip"]
        print(
            f"   {name:18} {d:8.2f} s  ratio {d / p:.2f} x  (clipped sums {c:.2f} s, {c / d:.0%})"
        )


if __name__ == "__main__":
    main()
