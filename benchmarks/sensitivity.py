"""Loss sensitivity recording (issue 14): a training epoch with the end-of-epoch eval pass,
against the same epoch with the eval pass also recording ||dL/dx||_1 per example (the eval
forward kept for one backward per batch), side by side in one process: the digits MLP of
the sample suite, the two variants alternating over the rounds, medians. Goal: <= 1.3 x.

Run: .venv/bin/python benchmarks/sensitivity.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from memdash.analysis.record.config import DataConfig, RunConfig, TrainConfig
from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.record.training import (
    create_run,
    make_model,
    make_optimizer,
    prepare_data,
    train_epoch,
)


def epoch_seconds(config: RunConfig, prepared, folder: Path, *, sensitivity: bool) -> float:
    """One training epoch and its eval pass (recorded and written), timed."""
    model = make_model(config, prepared.inputs.shape[1:], prepared.n_classes)
    opt = make_optimizer(config, model)
    writer = create_run(folder, config, prepared, model, overwrite=True)
    inputs = torch.tensor(prepared.inputs)
    labels = torch.tensor(prepared.examples["label"].to_numpy())
    recorder = TraceRecorder(
        writer,
        model,
        inputs,
        labels,
        record_train=False,
        loss_sensitivity=sensitivity,
        split=prepared.examples["split"].to_numpy(),
    )
    train_ids = torch.from_numpy(prepared.train_ids)
    start = time.perf_counter()
    train_epoch(model, opt, recorder, inputs, labels, train_ids, config, 1)
    recorder.end_epoch(1)
    recorder.flush()
    seconds = time.perf_counter() - start
    recorder.finish()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = RunConfig(data=DataConfig(dataset="digits", noise=0.2), train=TrainConfig(epochs=1))
    prepared = prepare_data(config)
    times = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for flag in (False, True):
                times[flag].append(
                    epoch_seconds(config, prepared, Path(tmp) / "r", sensitivity=flag)
                )
    plain, sensitive = statistics.median(times[False]), statistics.median(times[True])
    print(f"digits MLP 512-256, {len(prepared.inputs):,} examples, {args.rounds} rounds")
    print(f"  epoch + eval pass                      {plain:.3f} s")
    print(f"  epoch + eval pass + loss sensitivity   {sensitive:.3f} s")
    print(f"  ratio {sensitive / plain:.2f} x (goal <= 1.3 x)")


if __name__ == "__main__":
    main()
