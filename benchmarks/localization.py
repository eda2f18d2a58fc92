"""Batched neuron flipping against the one-example-at-a-time algorithm (issues 4 and 28).

On the sample run's final model (digits, MLP 512-256, 20% flipped labels),
the same examples (seeded, half flipped and half clean, as `memdash localize`
picks them) are flipped both ways, in alternating rounds, with the defaults
of `memdash localize` (128 other examples, B = 1, cap 100 units, hidden
layers): `memdash.analysis.localization.flipping.flip_one`, the definition
(gradients with respect to the weights, one example at a time), and
`memdash.analysis.localization.flipping.flip_batched` (every example with its
own unit mask in one batched computation, the others' batch run once per
distinct mask at each step). Both must zero the same units in the same order
for every example.

Prints examples per second and their ratio (goal of issue 28: batched >= 2 x
the one-at-a-time rate), the rows each runs forward and back (what the
deduplication saves: the others' batch runs once per distinct mask, not once
per example), and each one's rate in floating-point operations against the
matrix-multiply rate measured in the same process (what bounds the ratio).

Run: .venv/bin/python benchmarks/localization.py [--examples 400] [--rounds 1] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from memdash.analysis.localization.flipping import flip_batched, flip_one
from memdash.analysis.record.config import LocalizeConfig
from memdash.analysis.steps.final_model import load
from memdash.analysis.steps.flipping import flip_layers, flip_sample
from memdash.analysis.store import Run

RUN = Path(__file__).resolve().parents[1] / "sample_runs" / "digits_mlp_noise20"


def gemm_rate() -> float:
    """float32 multiply-add rate at the shape of the batched pass (4096 rows, 512 x 256)."""
    a, b = torch.randn(4096, 512), torch.randn(512, 256)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(20):
        torch.mm(a, b)
    return 20 * 2 * 4096 * 512 * 256 / (time.perf_counter() - start)


def work(order: np.ndarray) -> tuple[int, int, int]:
    """From `FlipResult.order` (M, cap): the example-steps (forward passes of an
    example's own row: one per unit zeroed, one more for the last check), those
    that needed the gradient, and the distinct masks among those at each step,
    summed (the others' batch passes of `flip_batched`)."""
    lengths = (order >= 0).sum(1)
    needed = passes = 0
    for step in range(order.shape[1]):
        need = lengths > step
        if not need.any():
            break
        needed += int(need.sum())
        zeroed = np.sort(order[need, :step], 1)
        passes += len(np.unique(zeroed, axis=0)) if step else 1
    return int(lengths.sum()) + len(order), needed, passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=int, default=400, help="examples per round (half flipped)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = LocalizeConfig(flip_examples=args.examples // 2)
    run = Run.open(RUN)
    data = load(run)
    ids, kinds, others = flip_sample(run, config)
    ids_t, others_t = torch.from_numpy(ids), torch.from_numpy(others)
    layers = flip_layers(data.model, config)
    options = {"own_weight": config.flip_own_weight, "max_units": config.flip_max_units}

    def batched():
        return flip_batched(
            data.model, data.inputs, data.labels, ids_t, others_t, layers=layers, **options
        )

    def sequential():
        return [
            flip_one(
                data.model, data.inputs, data.labels, int(i), others_t, layers=layers, **options
            )
            for i in ids
        ]

    times = {"batched": [], "one at a time": []}
    gemm = []
    for _ in range(args.rounds):
        gemm.append(gemm_rate())
        for name, fn in (("batched", batched), ("one at a time", sequential)):
            start = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - start)
            if name == "batched":
                result = out
            elif [result.zeroed(i) for i in range(len(ids))] != [o for o, _ in out] or not (
                np.array_equal(result.flipped, [f for _, f in out])
            ):
                raise SystemExit("batched and one-at-a-time flipping disagree")
    rate = {name: len(ids) / statistics.median(t) for name, t in times.items()}
    counts = result.neurons_zeroed
    print(
        f"{torch.get_num_threads()} torch threads; {len(ids)} examples "
        f"({(kinds == 'flipped').sum()} flipped, {(kinds == 'clean').sum()} clean), "
        f"median units zeroed: {int(np.median(counts))}, {(~result.flipped).sum()} at the cap; "
        "same units zeroed in the same order both ways"
    )
    for name, r in rate.items():
        print(f"  {name}: {r:.1f} examples/s")
    k = len(others)
    steps, needed, passes = work(result.order)
    rows_one = steps * (1 + k)  # flip_one runs the example and the others at every step
    rows_batched = steps + passes * k
    print(
        f"  others' batch passes: {passes} for {needed} example-steps that needed one "
        f"({needed / passes:.2f} examples per distinct mask); rows run: one at a time "
        f"{rows_one}, batched {rows_batched} ({rows_one / rows_batched:.2f} x fewer)"
    )
    # flops per weight and row: forward 2; back to the layer outputs about 2 (batched),
    # back to the weights about 4 (one at a time: weight and input gradients)
    weights = sum(p.numel() for n, p in data.model.named_parameters() if n.endswith("weight"))
    flops = {"batched": rows_batched * 4 * weights, "one at a time": rows_one * 6 * weights}
    gemm = statistics.median(gemm)  # measured in each round, between the others
    for name, f in flops.items():
        achieved = f / statistics.median(times[name])
        print(
            f"  {name}: {achieved / 1e9:.0f} GFLOP/s, {achieved / gemm:.0%} of a "
            f"{gemm / 1e9:.0f} GFLOP/s matrix multiply"
        )
    print(f"batched vs one at a time: {rate['batched'] / rate['one at a time']:.1f} x  (goal >= 2)")


if __name__ == "__main__":
    main()
