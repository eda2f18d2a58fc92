"""DP-SGD against plain training, side by side in one process (issue #25).

1. One epoch of the sample MLP (digits, 20% flipped labels, MLP 512-256, batch 32, SGD with
   momentum: sample_runs/digits_mlp_noise20's config) trained

     plain   `record.training.train_epoch` (shuffled batches, mean loss, one step)
     dp      `record.dp.DPTraining.train_epoch` (Poisson batches, Opacus's ghost
             clipping to C = 1, noise sigma = 1, the accountant's epsilon)

   alternating over the rounds (medians), both through the recorder's interface (a stub that
   keeps nothing, so the training alone is timed). Goal: dp within 3x plain. The DP epoch is
   split into what dominates: the forward and ghost clipping's two backward passes (norms,
   clipped sum), any clipping left to the optimizer (clip_and_accumulate), the noise
   (add_noise), the optimizer's own step, and the accountant's epsilon (once an epoch).

2. The batched estimate's 16 models (70% subsets, the same MLP) trained for a few epochs by
   `ensemble.batched.fit_batched` and with DP-SGD by `ensemble.dp_batched.fit_dp`.

Run: .venv/bin/python benchmarks/dp.py [--rounds 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from memdash.analysis.ensemble.batched import fit_batched, model_seed, subset_mask
from memdash.analysis.ensemble.dp_batched import fit_dp
from memdash.analysis.record.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from memdash.analysis.record.dp import DPTraining
from memdash.analysis.record.privacy import DPConfig, epsilon_spent
from memdash.analysis.record.training import make_model, make_optimizer, prepare_data, train_epoch

K = 16
SAMPLE = RunConfig(
    data=DataConfig(dataset="digits", noise=0.2),
    model=ModelConfig(hidden=(512, 256)),
    train=TrainConfig(epochs=60, batch_size=32, lr=0.05, momentum=0.9),
)
DP = DPConfig(delta=1e-5, clip=1.0, noise_multiplier=1.0)


class Stub:
    """The recorder's interface in the loop, keeping nothing."""

    def log_batch(self, ids, logits) -> None:
        pass

    def backward(self, ids, losses) -> None:
        losses.mean().backward()


def _timed(obj, name: str, spent: dict[str, float]) -> None:
    """Wrap a method of `obj` to add its seconds to spent[name]."""
    inner = getattr(obj, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

    setattr(obj, name, wrapper)


def epochs_side_by_side(rounds: int) -> None:
    prepared = prepare_data(SAMPLE)
    inputs = torch.from_numpy(prepared.inputs)
    labels = torch.tensor(prepared.examples["label"].to_numpy())
    train_ids = torch.from_numpy(prepared.train_ids)
    shape = prepared.inputs.shape[1:]
    config = replace(SAMPLE, train=replace(SAMPLE.train, dp=DP))
    plain_model = make_model(SAMPLE, shape, prepared.n_classes)
    plain_opt = make_optimizer(SAMPLE, plain_model)
    dp_model = make_model(config, shape, prepared.n_classes)
    dp_opt = make_optimizer(config, dp_model)
    private = DPTraining(config, dp_model, dp_opt, len(train_ids))
    spent: dict[str, float] = {}
    for name in ("clip_and_accumulate", "add_noise"):
        _timed(private.optimizer, name, spent)
    _timed(dp_opt, "step", spent)
    times: dict[str, list[float]] = {"plain": [], "dp": []}
    parts: list[dict[str, float]] = []
    stub = Stub()
    for r in range(rounds + 1):  # round 0 warms up
        start = time.perf_counter()
        train_epoch(plain_model, plain_opt, stub, inputs, labels, train_ids, SAMPLE, r + 1)
        plain = time.perf_counter() - start
        spent.clear()
        start = time.perf_counter()
        private.train_epoch(dp_model, dp_opt, stub, inputs, labels, train_ids, config, r + 1)
        dp = time.perf_counter() - start
        before = time.perf_counter()
        epsilon_spent(DP.noise_multiplier, private.q, private.steps * (r + 1), DP.delta)
        accountant = time.perf_counter() - before
        if r:
            times["plain"].append(plain)
            times["dp"].append(dp)
            parts.append(spent | {"accountant": accountant, "epoch": dp})
    plain, dp = statistics.median(times["plain"]), statistics.median(times["dp"])
    n = len(train_ids)
    print(f"1. one epoch of the sample MLP 512-256 on {n:,} training examples, batch 32")
    print(f"   plain          {plain * 1e3:8.1f} ms")
    print(f"   DP-SGD         {dp * 1e3:8.1f} ms   ratio {dp / plain:.2f} x (goal <= 3 x)")
    share = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    clip, noise = share.get("clip_and_accumulate", 0.0), share.get("add_noise", 0.0)
    step = share.get("step", 0.0)  # the wrapped optimizer's own step
    rest = share["epoch"] - clip - noise - step
    rows = {
        "forward, ghost clipping's two backward passes (norms, clipped sum), sampling": rest,
        "clipping outside the backward passes (none with ghost clipping)": clip,
        "noise (Gaussian, per parameter)": noise,
        "the optimizer's own step": step,
        "the accountant's epsilon (once an epoch)": share["accountant"],
    }
    for what, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"     {seconds * 1e3:8.1f} ms  {seconds / share['epoch']:6.1%}  {what}")


def ensembles_side_by_side(rounds: int, epochs: int) -> None:
    prepared = prepare_data(SAMPLE)
    inputs = torch.from_numpy(prepared.inputs)
    labels = torch.tensor(prepared.examples["label"].to_numpy())
    train_ids = np.flatnonzero((prepared.examples["split"] == "train").to_numpy())
    seeds = [model_seed(0, 0, k) for k in range(K)]
    subsets = np.stack([subset_mask(s, len(train_ids), 0.7) for s in seeds])
    config = replace(SAMPLE, train=replace(SAMPLE.train, epochs=epochs))
    dp = {"noise_multiplier": 1.0, "clip": 1.0, "delta": 1e-5, "epsilon": None}
    times: dict[str, list[float]] = {"plain": [], "dp": []}
    for _ in range(rounds):
        start = time.perf_counter()
        fit_batched(config, inputs, labels, train_ids, seeds, subsets)
        times["plain"].append(time.perf_counter() - start)
        start = time.perf_counter()
        fit_dp(config, inputs, labels, train_ids, seeds, subsets, dp)
        times["dp"].append(time.perf_counter() - start)
    plain, private = statistics.median(times["plain"]), statistics.median(times["dp"])
    print(f"2. the estimate's {K} models at once, {epochs} epochs on 70% subsets")
    print(f"   plain batched  {plain:8.2f} s  ({K * epochs / plain:.1f} model-epochs/s)")
    print(f"   DP batched     {private:8.2f} s   ratio {private / plain:.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}")
    epochs_side_by_side(args.rounds)
    ensembles_side_by_side(args.rounds, args.epochs)


if __name__ == "__main__":
    main()
