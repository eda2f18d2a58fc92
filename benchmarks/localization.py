"""Batched neuron flipping against the one-example-at-a-time algorithm (issue 4).

On the sample run's final model (digits, MLP 512-256, 20% flipped labels),
the same examples (seeded, half flipped and half clean, as `memdash localize`
picks them) are flipped both ways, in alternating rounds, with the defaults
of `memdash localize` (128 other examples, B = 1, cap 100 units, hidden
layers): `memdash.analysis.localization.flipping.flip_one`, the definition (gradients with respect
to the weights, one example at a time), and `memdash.analysis.localization.flipping.flip_batched`
(every example with its own unit mask in one batched computation). Both
must zero the same number of units for every example. Prints examples per
second and their ratio, and the batched rate in floating-point operations
against the matrix-multiply rate measured in the same process. Goal: batched
>= 10 x the one-at-a-time rate.

Run: .venv/bin/python benchmarks/localization.py [--examples 400] [--rounds 1]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=int, default=400, help="examples per round (half flipped)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
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
            len(
                flip_one(
                    data.model, data.inputs, data.labels, int(i), others_t, layers=layers, **options
                )[0]
            )
            for i in ids
        ]

    times = {"batched": [], "one at a time": []}
    for _ in range(args.rounds):
        for name, fn in (("batched", batched), ("one at a time", sequential)):
            start = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - start)
            counts = out.neurons_zeroed if name == "batched" else np.array(out)
            if name == "batched":
                reference = counts
            elif not np.array_equal(counts, reference):
                raise SystemExit("batched and one-at-a-time flipping disagree")
    rate = {name: len(ids) / statistics.median(t) for name, t in times.items()}
    print(
        f"{torch.get_num_threads()} torch threads; {len(ids)} examples "
        f"({(kinds == 'flipped').sum()} flipped, {(kinds == 'clean').sum()} clean), "
        f"median units zeroed: {int(np.median(reference))}"
    )
    for name, r in rate.items():
        print(f"  {name}: {r:.1f} examples/s")
    # what the batched pass computes: every example-iteration runs its row and the
    # others' rows forward and back to the layer outputs (about 2 + 2 flops per weight)
    weights = sum(p.numel() for n, p in data.model.named_parameters() if n.endswith("weight"))
    steps = int(reference.sum()) + len(ids)
    flops = steps * (1 + len(others)) * 4 * weights
    print(
        f"  batched: {flops / statistics.median(times['batched']) / 1e9:.0f} GFLOP/s "
        f"against a {gemm_rate() / 1e9:.0f} GFLOP/s matrix multiply"
    )
    print(
        f"batched vs one at a time: {rate['batched'] / rate['one at a time']:.1f} x  (goal >= 10)"
    )


if __name__ == "__main__":
    main()
