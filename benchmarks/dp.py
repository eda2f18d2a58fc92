"""DP-SGD against plain training, side by side in one process (issue #25).

1. One epoch of the sample MLP (digits, 20% flipped labels, MLP 512-256, batch 32, SGD with
   momentum: sample_runs/digits_mlp_noise20's config) trained

     plain   `record.training.train_epoch` (shuffled batches, mean loss, one step)
     dp      `record.dp.DPTraining.train_epoch` as `memdash train` runs it on an MLP: Poisson
             batches, the dense path (`record.dense_clip.DenseClipping`: one backward pass to
             the layers' outputs, clip to C = 1), Opacus's noise sigma = 1 and step
     ghost   the same with clipping="ghost" (Opacus's ghost clipping, two backward passes:
             the path of every non-MLP model, and of the MLP before issue #25)

   alternating over the rounds (medians, and the fastest rounds beside them: on a shared
   machine a round another process disturbs can only be slower), all through the recorder's
   interface (a stub that keeps nothing, so the training alone is timed). Goal: dp within
   3x plain. The dense DP epoch is split into what dominates: the forward with sampling and
   the loss (the rest), the one backward pass to the layers' outputs (`output_grads`), the
   norms, clip factors and clipped sums (`clipped_sums`), Opacus's copy of the sum
   (accumulate), the noise (add_noise: one Gaussian draw per parameter tensor from the
   epoch's CPU generator), the scaling (scale_grad) and the optimizer's own step; the
   accountant's epsilon (once an epoch, in run.json) is timed beside the epoch, not in it.
   Then the noise alone: Opacus's add_noise for one step against memdash's
   (`record.dp_noise.LeanNoise`, the same values), the bare torch.normal draws (the same
   values) and the CPU generator's uniform stream beneath them, what no change that keeps
   the values can beat.

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
from opacus.optimizers import DPOptimizerFastGradientClipping

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
    trainers = {}
    for clipping in ("auto", "ghost"):  # auto: what `memdash train` picks
        model = make_model(config, shape, prepared.n_classes)
        opt = make_optimizer(config, model)
        private = DPTraining(config, model, opt, len(train_ids), clipping=clipping)
        trainers[clipping] = (model, opt, private)
    dp_model, dp_opt, private = trainers["auto"]
    assert private.clipping == "dense" and private.dense is not None
    spent: dict[str, float] = {}
    for name in ("output_grads", "clipped_sums"):
        _timed(private.dense, name, spent)
    for name in ("accumulate", "add_noise", "scale_grad"):
        _timed(private.optimizer, name, spent)
    _timed(dp_opt, "step", spent)
    times: dict[str, list[float]] = {"plain": [], "dense": [], "ghost": []}
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
        model, opt, ghost = trainers["ghost"]
        start = time.perf_counter()
        ghost.train_epoch(model, opt, stub, inputs, labels, train_ids, config, r + 1)
        ghost_time = time.perf_counter() - start
        if r:
            times["plain"].append(plain)
            times["dense"].append(dp)
            times["ghost"].append(ghost_time)
            parts.append(spent | {"accountant": accountant, "epoch": dp})
    plain, dp, ghost_time = (statistics.median(times[k]) for k in ("plain", "dense", "ghost"))
    n = len(train_ids)
    print(f"1. one epoch of the sample MLP 512-256 on {n:,} training examples, batch 32")
    print(f"   plain          {plain * 1e3:8.1f} ms")
    print(f"   DP-SGD         {dp * 1e3:8.1f} ms   ratio {dp / plain:.2f} x (goal <= 3 x)")
    print(f"   DP, ghost      {ghost_time * 1e3:8.1f} ms   ratio {ghost_time / plain:.2f} x")
    best = {k: min(v) for k, v in times.items()}  # the least disturbed on a shared machine
    print(
        f"   fastest rounds: plain {best['plain'] * 1e3:.1f} ms, DP-SGD {best['dense'] * 1e3:.1f}"
        f" ms ({best['dense'] / best['plain']:.2f} x), ghost {best['ghost'] * 1e3:.1f} ms"
        f" ({best['ghost'] / best['plain']:.2f} x)"
    )
    share = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    rows = {
        "the one backward pass to the layers' outputs (output_grads)": share["output_grads"],
        "norms, clip factors, clipped sums (clipped_sums)": share["clipped_sums"],
        "Opacus's copy of the sums (accumulate)": share["accumulate"],
        "noise (add_noise, a Gaussian draw per parameter)": share["add_noise"],
        "scaling by the expected batch (scale_grad)": share["scale_grad"],
        "the optimizer's own step": share["step"],
    }
    rows["forward, sampling, loss (the rest)"] = share["epoch"] - sum(rows.values())
    print(f"   of the DP-SGD epoch ({private.steps} steps):")
    for what, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"     {seconds * 1e3:8.1f} ms  {seconds / share['epoch']:6.1%}  {what}")
    print(f"   besides, once an epoch: the accountant's epsilon {share['accountant'] * 1e3:.1f} ms")


def noise_against_its_draws(rounds: int, repeats: int = 45) -> None:
    """Opacus's add_noise for the sample MLP's parameters against its bare Gaussian draws
    (torch.normal per parameter tensor, the same generator: the same values) and the
    generator's uniform stream under them (mt19937, serial), `repeats` steps per round."""
    model = make_model(SAMPLE, (64,), 10)
    params = list(model.parameters())
    config = replace(SAMPLE, train=replace(SAMPLE.train, dp=DP))
    opt = DPTraining(config, model, make_optimizer(config, model), 1437).optimizer
    assert isinstance(opt, DPOptimizerFastGradientClipping)
    flat = torch.empty(sum(p.numel() for p in params))

    def opacus(gen, sums):  # sums: fresh summed gradients (add_noise marks them used)
        for p, total in zip(params, sums, strict=True):
            p.summed_grad = total
        opt.generator = gen
        DPOptimizerFastGradientClipping.add_noise(opt)

    def lean(gen, sums):
        for p, total in zip(params, sums, strict=True):
            p.summed_grad = total
        opt.generator = gen
        opt.add_noise()  # dp_noise.LeanNoise's: the same values

    def draws(gen, sums):
        for p in params:
            torch.normal(0.0, 1.0, size=p.shape, generator=gen)

    def uniforms(gen, sums):
        flat.uniform_(generator=gen)

    kinds = {"add_noise": opacus, "lean": lean, "torch.normal": draws, "uniforms": uniforms}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for name, fn in kinds.items():
            sums = [[torch.zeros_like(p) for p in params] for _ in range(repeats)]
            gen = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            for step in range(repeats):
                fn(gen, sums[step])
            times[name].append((time.perf_counter() - start) / repeats)
    t = {k: statistics.median(v) for k, v in times.items()}
    print(f"   noise of one step ({flat.numel():,} parameters in {len(params)} tensors):")
    rows = [
        ("Opacus's add_noise", "add_noise"),
        ("memdash's (dp_noise.LeanNoise: the same values)", "lean"),
        ("its draws alone (torch.normal)", "torch.normal"),
        ("the generator's uniforms beneath", "uniforms"),
    ]
    for what, key in rows:
        share = t[key] / t["add_noise"]
        print(f"     {t[key] * 1e3:7.3f} ms  {share:6.1%}  {what}")


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
    noise_against_its_draws(args.rounds)
    ensembles_side_by_side(args.rounds, args.epochs)


if __name__ == "__main__":
    main()
