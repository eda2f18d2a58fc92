"""Curvature recording (issue 26): a training epoch with the end-of-epoch eval pass, against
the same epoch with the eval pass and the input-loss curvature (Garg, Roy et al. 2023) at
the default number of directions, side by side in one process. The recorder computes the
curvature of the training split's examples only (NaN for test and reference examples); the
same epoch with every example's curvature (the recorder without a split, as before) is timed
beside it.

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
The load average of the machine is printed before and after (other users' work slows the
wall seconds; the CPU seconds less so).

Run: .venv/bin/python benchmarks/curvature.py [--rounds 7] [--directions 10,1,3,5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
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
    config: RunConfig, prepared, folder: Path, *, directions: int | None, every: bool = False
) -> dict[str, float]:
    """Epoch 1 trained and recorded (written, flushed): its seconds in all and by part.
    `every`: the curvature of every example (the recorder given no split), not the training
    split's only."""
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
        split=None if every else prepared.examples["split"].to_numpy(),
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
    # (directions, every example): the eval pass alone, the training split's curvature at
    # each count, every example's at the first count
    variants: list[tuple[int | None, bool]] = [(None, False), *((c, False) for c in counts)]
    variants.append((counts[0], True))
    runs: dict[tuple[int | None, bool], list[dict[str, float]]] = {v: [] for v in variants}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        epoch_parts(config, prepared, Path(tmp) / "warm", directions=counts[0])  # warm-up
        for round_ in range(args.rounds):
            for count, every in variants if round_ % 2 == 0 else variants[::-1]:
                runs[(count, every)].append(
                    epoch_parts(config, prepared, Path(tmp) / "r", directions=count, every=every)
                )

    def median(variant: tuple[int | None, bool], part: str) -> float:
        return statistics.median(r.get(part, 0.0) for r in runs[variant])

    n = len(prepared.inputs)
    trained = int((prepared.examples["split"] == "train").sum())
    presented = len(prepared.train_ids)
    widths = [int(prepared.inputs[0].size), *config.model.hidden, prepared.n_classes]
    print(
        f"digits MLP {'-'.join(map(str, config.model.hidden))}, {n:,} examples, {trained:,} "
        f"of the training split ({trained / n:.0%}; {presented:,} presentations an epoch, "
        f"batch {config.train.batch_size}), {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds, medians; load average {load[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores"
    )
    plain, plain_cpu = median((None, False), "epoch"), median((None, False), "cpu")
    print(
        f"  epoch + eval pass                                 {plain:.3f} s, CPU "
        f"{plain_cpu:.3f} s   (train loop {median((None, False), 'train'):.3f} s, eval pass "
        f"{median((None, False), 'eval_pass'):.3f} s)"
    )
    for count, every in variants[1:]:
        v = (count, every)
        total, curv, cpu = median(v, "epoch"), median(v, "curvature"), median(v, "cpu")
        scope = "every example " if every else "training split"
        print(
            f"  epoch + eval pass + curvature ({scope}, n = {count:>2})  {total:.3f} s, CPU "
            f"{cpu:.3f} s   (curvature {curv:.3f} s)   ratio {total / plain:.2f} x, CPU "
            f"{cpu / plain_cpu:.2f} x"
            + ("   (goal <= 2 x)" if count == DIRECTIONS and not every else "")
        )
    flops_row = 2 * sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    count = counts[0]
    rows = count * trained  # the n perturbed copies of each training example: forward, backward
    rate = matmul_rate((MAX_ROWS // 512) * 512, widths)
    # the input gradient's backward costs about a forward; at x, the eval pass's forward
    # is shared, its backward (of every example: loss sensitivity's too) is the curvature's
    work = (rows * 2 + n) * flops_row
    curv_cpu = median((count, False), "cpu") - plain_cpu
    print(
        f"what dominates at n = {count}: the curvature's {rows:,} rows (n x {trained:,} "
        f"training examples), each a forward and a backward pass, and the eval pass's backward "
        f"at x of all {n:,}: {work / 1e9:.1f} GFLOP of matrix products: "
        f"{curv_cpu:.3f} CPU s ({work / max(curv_cpu, 1e-9) / 1e9:.0f} GFLOP/s) against the "
        f"products' own {rate / 1e9:.0f} GFLOP/s here, a floor of {work / rate:.3f} s; the "
        f"training epoch's {presented:,} rows in batches of {config.train.batch_size} "
        f"take {plain_cpu:.3f} CPU s with its eval pass, so no implementation of the "
        f"paper's n forward and backward passes on these examples beats "
        f"{(plain_cpu + work / rate) / plain_cpu:.2f} x on this machine"
    )


if __name__ == "__main__":
    main()
