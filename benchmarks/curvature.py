"""Curvature recording (issue 26): a training epoch with the end-of-epoch eval pass, against
the same epoch with the eval pass and the input-loss curvature (Garg, Roy et al. 2023) at
the default number of directions, side by side in one process.

The sample suite's digits MLP (sample_runs/digits_mlp_noise20's config: digits, 20% flipped
labels, 10 canaries at each of 1, 10 and 50 repeats, 500 reference canaries, MLP 512-256,
batch 32, the training minibatches and the gradient accounting recorded as `memdash train`
records them). Each variant trains epoch 1 from the same initialization and records it
(written and flushed); the variants alternate over the rounds (their order swapped every
round), medians, in wall seconds and in the process's CPU seconds. One torch thread by
default: the machine is shared, and on one thread CPU seconds count the work alone (two
threads on two busy cores wait on each other). Goal: <= 2 x. The recorder's clock (run.json's
``timing``) splits each epoch into its parts, which says what dominates; the curvature's
passes are set beside the machine's own limit, the matrix-product rate measured here on the
same shapes (CPU seconds), which gives the floor of any implementation of the paper's passes.

Run: .venv/bin/python benchmarks/curvature.py [--rounds 7] [--directions 10,1,3,5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from memdash.analysis.measures.curvature import DIRECTIONS, MAX_ROWS, STEP
from memdash.analysis.record.config import DataConfig, RunConfig
from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.record.training import (
    create_run,
    grad_accounting_on,
    make_model,
    make_optimizer,
    prepare_data,
    train_epoch,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_runs" / "digits_mlp_noise20" / "run.json"


def sample_config() -> RunConfig:
    """The sample run's config (its stored one when the suite is here), one epoch long."""
    if SAMPLE.is_file():
        config = RunConfig.from_dict(json.loads(SAMPLE.read_text())["config"])
    else:  # the same, built by hand: `memdash train --dataset digits --noise 0.2 --canaries 10`
        config = RunConfig(data=DataConfig(dataset="digits", noise=0.2, canaries=10))
    return replace(config, train=replace(config.train, epochs=1))


def epoch_parts(
    config: RunConfig, prepared, folder: Path, *, directions: int | None
) -> dict[str, float]:
    """Epoch 1 trained and recorded (written, flushed): its seconds in all and by part."""
    model = make_model(config, prepared.inputs.shape[1:], prepared.n_classes)
    opt = make_optimizer(config, model)
    writer = create_run(folder, config, prepared, model, overwrite=True)
    inputs = torch.tensor(prepared.inputs)
    labels = torch.tensor(prepared.examples["label"].to_numpy())
    is_noisy = torch.tensor(prepared.examples["is_noisy"].to_numpy())
    recorder = TraceRecorder(
        writer,
        model,
        inputs,
        labels,
        is_noisy=is_noisy,
        record_train=config.record.record_train,
        grad_accounting=grad_accounting_on(config),
        curvature=None if directions is None else (directions, STEP, config.seed),
        eval_batch_size=config.record.eval_batch_size,
        split=prepared.examples["split"].to_numpy(),
    )
    train_ids = torch.from_numpy(prepared.train_ids)
    start, cpu = time.perf_counter(), time.process_time()
    with recorder.clock.part("train"):
        train_epoch(model, opt, recorder, inputs, labels, train_ids, config, 1)
    recorder.end_epoch(1)
    recorder.flush()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    recorder.finish()
    return {"epoch": seconds, "cpu": cpu} | recorder.clock.totals()


def matmul_rate(rows: int, widths: list[int]) -> float:
    """FLOP/s (CPU seconds) of the MLP's matrix products on `rows` rows, forward and
    transposed as the input gradient's backward has them, without autograd: the machine's
    limit for the curvature's stacked passes."""
    weights = [torch.randn(a, b) for a, b in zip(widths, widths[1:], strict=False)]
    x = torch.randn(rows, widths[0])

    def passes() -> None:
        h = x
        for w in weights:
            h = h @ w
        for w in reversed(weights):
            h = h @ w.T

    passes()
    samples = []
    for _ in range(5):
        start = time.process_time()
        passes()
        samples.append(time.process_time() - start)
    flops = 4 * rows * sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    return flops / statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: its default)")
    parser.add_argument(
        "--directions",
        default=str(DIRECTIONS),
        help="comma-separated numbers of directions; the first is the one the goal is for",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.directions.split(",")]
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    config = sample_config()
    prepared = prepare_data(config)
    variants: list[int | None] = [None, *counts]
    runs: dict[int | None, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        epoch_parts(config, prepared, Path(tmp) / "warm", directions=counts[0])  # warm-up
        for round_ in range(args.rounds):
            for variant in variants if round_ % 2 == 0 else variants[::-1]:
                runs[variant].append(
                    epoch_parts(config, prepared, Path(tmp) / "r", directions=variant)
                )

    def median(variant: int | None, part: str) -> float:
        return statistics.median(r.get(part, 0.0) for r in runs[variant])

    n = len(prepared.inputs)
    presented = len(prepared.train_ids)
    widths = [int(prepared.inputs[0].size), *config.model.hidden, prepared.n_classes]
    print(
        f"digits MLP {'-'.join(map(str, config.model.hidden))}, {n:,} examples "
        f"({presented:,} presentations an epoch, batch {config.train.batch_size}), "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds, medians"
    )
    plain, plain_cpu = median(None, "epoch"), median(None, "cpu")
    print(
        f"  epoch + eval pass                       {plain:.3f} s, CPU {plain_cpu:.3f} s   "
        f"(train loop {median(None, 'train'):.3f} s, eval pass {median(None, 'eval_pass'):.3f} s)"
    )
    flops_row = 2 * sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    for count in counts:
        total, curv, cpu = median(count, "epoch"), median(count, "curvature"), median(count, "cpu")
        print(
            f"  epoch + eval pass + curvature (n = {count:>2})  {total:.3f} s, CPU {cpu:.3f} s   "
            f"(curvature {curv:.3f} s)   ratio {total / plain:.2f} x, CPU {cpu / plain_cpu:.2f} x"
            + ("   (goal <= 2 x)" if count == DIRECTIONS else "")
        )
    count = counts[0]
    rows = count * n  # the n perturbed copies, each a forward and a backward pass
    rate = matmul_rate((MAX_ROWS // 512) * 512, widths)
    # the input gradient's backward costs about a forward; at x, the eval pass's forward
    # is shared, its backward is the curvature's
    work = (rows * 2 + n) * flops_row
    curv_cpu = median(count, "cpu") - plain_cpu
    print(
        f"what dominates at n = {count}: the curvature's {rows:,} rows (n x {n:,}), each a "
        f"forward and a backward pass, and the backward at x of {n:,}: "
        f"{work / 1e9:.1f} GFLOP of matrix products: "
        f"{curv_cpu:.3f} CPU s ({work / max(curv_cpu, 1e-9) / 1e9:.0f} GFLOP/s) against the "
        f"products' own {rate / 1e9:.0f} GFLOP/s here, a floor of {work / rate:.3f} s; the "
        f"training epoch's {presented:,} rows in batches of {config.train.batch_size} "
        f"take {plain_cpu:.3f} CPU s with its eval pass, so no implementation of the "
        f"paper's n forward and backward passes beats "
        f"{(plain_cpu + work / rate) / plain_cpu:.2f} x on this machine"
    )


if __name__ == "__main__":
    main()
