"""Batched ensemble training against a sequential loop of the same models (issue 6).

The digits MLP 512-256 of `memdash estimate` (20% flipped labels, 70% subsets,
batch size 32), the same 16 models (same seeds, subsets and orders) trained

  sequential   one after another, each a plain nn.Module loop (all cores' threads)
  batched      at once, `memdash.analysis.ensemble.batched.fit_batched` (stacked weights, baddbmm)
  local x2     `memdash estimate`'s local backend: 2 processes of 1 thread, 16 models each

side by side in one process (the first two alternate over the rounds; medians),
as models per minute, and the floating-point rate of the batched training
against the matrix-multiply rate measured here at a single model's shape
(32 x 512 times 512 x 256). Goals: batched >= 4 x the sequential models per
minute; batched >= half the matrix-multiply rate.

Run: .venv/bin/python benchmarks/heldout.py [--epochs 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from memdash.analysis.ensemble.batched import fit_batched, fit_sequential, model_seed, subset_mask
from memdash.analysis.ensemble.estimate import EstimateSpec, estimate
from memdash.analysis.record.config import DataConfig, RunConfig, TrainConfig
from memdash.analysis.record.training import create_run, make_model, prepare_data

K = 16


class Workload(NamedTuple):
    """An estimate's models on the digits with 20% flipped labels: the data, and each
    model's seed and 70% training subset."""

    config: RunConfig
    prepared: object  # memdash.analysis.record.training.Prepared
    x: torch.Tensor
    y: torch.Tensor
    train_ids: np.ndarray
    seeds: list[int]
    subsets: np.ndarray


def digits_models(epochs: int, models: int) -> Workload:
    """The benchmarks' estimate workload: `models` digits MLPs trained for `epochs`."""
    config = RunConfig(
        data=DataConfig(dataset="digits", noise=0.2), train=TrainConfig(epochs=epochs)
    )
    prepared = prepare_data(config)
    train_ids = prepared.train_ids
    seeds = [model_seed(0, 0, k) for k in range(models)]
    return Workload(
        config,
        prepared,
        torch.tensor(prepared.inputs),
        torch.tensor(prepared.examples["label"].to_numpy()),
        train_ids,
        seeds,
        np.stack([subset_mask(s, len(train_ids), 0.7) for s in seeds]),
    )


def gemm_rate() -> float:
    a, b = torch.randn(32, 512), torch.randn(512, 256)
    for _ in range(100):
        torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(5000):
        torch.mm(a, b)
    return 5000 * 2 * 32 * 512 * 256 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config, prepared, x, y, train_ids, seeds, subsets = digits_models(args.epochs, K)
    fit_batched(config, x, y, train_ids, seeds[:2], subsets[:2])  # warm-up
    times = {"sequential": [], "batched": []}
    for _ in range(args.rounds):
        for name, fit in (("sequential", fit_sequential), ("batched", fit_batched)):
            start = time.perf_counter()
            fit(config, x, y, train_ids, seeds, subsets)
            times[name].append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        model = make_model(config, prepared.inputs.shape[1:], prepared.n_classes)
        create_run(run, config, prepared, model).finish("complete", estimate_only=True)
        start = time.perf_counter()
        estimate(run, EstimateSpec(models=2 * K, models_per_batch=K), workers=2)
        local = (time.perf_counter() - start) / 2  # per K models
    per_minute = {n: 60 * K / statistics.median(t) for n, t in times.items()}
    per_minute["local x2"] = 60 * K / local
    steps = args.epochs * int(np.ceil(subsets[0].sum() / config.train.batch_size))
    weights = 64 * 512 + 512 * 256 + 256 * 10
    flops = K * steps * 3 * 2 * config.train.batch_size * weights
    rate = gemm_rate()
    threads = torch.get_num_threads()
    print(f"{threads} torch threads; {K} digits MLPs, {args.epochs} epochs, {steps} steps each")
    for name, value in per_minute.items():
        print(f"  {name}: {value:.0f} models/min")
    speedup = per_minute["batched"] / per_minute["sequential"]
    print(f"batched vs sequential: {speedup:.2f} x  (goal >= 4)")
    print(f"local x2 vs sequential: {per_minute['local x2'] / per_minute['sequential']:.2f} x")
    batched_rate = flops / statistics.median(times["batched"])
    print(
        f"batched: {batched_rate / 1e9:.0f} GFLOP/s against a {rate / 1e9:.0f} GFLOP/s "
        f"matrix multiply at one model's shape: {batched_rate / rate:.2f}  (goal >= 0.5)"
    )
    seq_rate = flops / statistics.median(times["sequential"])
    print(f"sequential: {seq_rate / 1e9:.0f} GFLOP/s: {seq_rate / rate:.2f} of it")


if __name__ == "__main__":
    main()
