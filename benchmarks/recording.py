"""How much recording adds to a training epoch, measured side by side in one process.

For each setting (the MLP on digits, the CNN on MNIST-1D, the CNN on a
20,000-example synthetic image set) one epoch is timed in five ways, the
modes interleaved round by round (their order rotated each round, garbage
collected before each, each sample spanning enough epochs to last about
0.5 s) and the median per-epoch time kept:

plain        a bare training loop (forward, cross-entropy, backward, step)
in-flight    + TraceRecorder.log_batch, and its once-per-epoch reduction and write
+ eval pass  + the end-of-epoch eval pass over every example, written to disk
+ grad acct  + gradient accounting (clean/flipped parts: one more backward per batch)
host copy    the straightforward alternative to in-flight recording: per-batch
             statistics copied to the host every batch (for comparison)

Goals (issue 2): in-flight <= 1.05 x plain; in-flight + eval pass <= 1.40 x plain.

Run: .venv/bin/python benchmarks/recording.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from memdash.analysis.record.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.record.stats import example_stats
from memdash.analysis.record.training import make_model, make_optimizer, prepare_data, to_device
from memdash.analysis.store import RunWriter

SETTINGS = {
    "digits MLP": RunConfig(
        data=DataConfig(dataset="digits", noise=0.2), model=ModelConfig(name="mlp")
    ),
    "mnist1d CNN": RunConfig(
        data=DataConfig(dataset="mnist1d", noise=0.2),
        model=ModelConfig(name="cnn", channels=(32, 64), hidden=(256,)),
    ),
    "synthetic 20k CNN": RunConfig(
        data=DataConfig(
            dataset="synthetic", n_examples=20_000, shape=(1, 16, 16), noise=0.2, n_classes=10
        ),
        model=ModelConfig(name="cnn", channels=(32, 64), hidden=(256,)),
        train=TrainConfig(batch_size=128),
    ),
}


def _epoch(model, opt, inputs, labels, ids_all, batch_size, recorder=None, host_copy=False):
    """One training epoch; with a recorder, recording as `memdash train` does."""
    model.train()
    order = torch.randperm(len(ids_all))
    sink = []
    for ids in torch.split(ids_all[order], batch_size):
        logits = model(inputs[ids])
        losses = F.cross_entropy(logits, labels[ids], reduction="none")
        if recorder is not None:
            recorder.log_batch(ids, logits)
        if host_copy:
            stats = example_stats(logits.detach(), labels[ids])
            sink.append({k: v.cpu().numpy() for k, v in stats.items()})
        opt.zero_grad(set_to_none=True)
        if recorder is not None:
            recorder.backward(ids, losses)
        else:
            losses.mean().backward()
        opt.step()


def _record_train_source(recorder: TraceRecorder, epoch: int) -> None:
    """The in-flight part of end_epoch alone: reduce the kept logits, hand the part over."""
    table = recorder._train_source_table(epoch)
    recorder._submit([partial(recorder.writer.write_trace, "train", epoch, table)])


def bench(name: str, config: RunConfig, rounds: int, root: Path) -> dict[str, float]:
    prepared = prepare_data(config)
    model, inputs = to_device(
        make_model(config, prepared.inputs.shape[1:], prepared.n_classes),
        prepared.inputs,
        torch.device("cpu"),
    )
    opt = make_optimizer(config, model)
    labels = torch.tensor(prepared.examples["label"].to_numpy())
    noisy = torch.tensor(prepared.examples["is_noisy"].to_numpy())
    ids_all = torch.from_numpy(prepared.train_ids)
    bs = config.train.batch_size

    def recorder(tag: str, **options) -> TraceRecorder:
        writer = RunWriter.create(
            root / f"{name}-{tag}".replace(" ", "_"),
            config=config.to_dict(),
            examples=prepared.examples,
            inputs=prepared.inputs,
            n_classes=prepared.n_classes,
        )
        return TraceRecorder(writer, model, inputs, labels, is_noisy=noisy, **options)

    inflight = recorder("inflight", record_train=True, checkpoint_epochs=())
    evalpass = recorder("eval", record_train=True, checkpoint_epochs=())
    accounting = recorder("grads", record_train=True, grad_accounting=True, checkpoint_epochs=())
    epoch = iter(range(1, 10_000))

    modes = {
        "plain": lambda: _epoch(model, opt, inputs, labels, ids_all, bs),
        "in-flight": lambda: (
            _epoch(model, opt, inputs, labels, ids_all, bs, inflight),
            _record_train_source(inflight, next(epoch)),
        ),
        "+ eval pass": lambda: (
            _epoch(model, opt, inputs, labels, ids_all, bs, evalpass),
            evalpass.end_epoch(next(epoch)),
        ),
        "+ grad acct": lambda: (
            _epoch(model, opt, inputs, labels, ids_all, bs, accounting),
            accounting.end_epoch(next(epoch)),
        ),
        "host copy": lambda: _epoch(model, opt, inputs, labels, ids_all, bs, host_copy=True),
    }
    times: dict[str, list[float]] = {m: [] for m in modes}
    for mode in modes.values():  # warm-up
        mode()
    start = time.perf_counter()
    modes["plain"]()
    # a sample spans enough epochs to last about 0.5 s: short epochs are noisy alone
    per_sample = max(1, math.ceil(0.5 / (time.perf_counter() - start)))
    names = list(modes)
    for r in range(rounds):
        for m in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            gc.collect()
            start = time.perf_counter()
            for _ in range(per_sample):
                modes[m]()
            times[m].append((time.perf_counter() - start) / per_sample)
    return {m: statistics.median(t) for m, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated setting names")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"median of {args.rounds} interleaved rounds"
    )
    header = f"{'setting':<20}{'plain s':>9}" + "".join(
        f"{m:>14}" for m in ("in-flight", "+ eval pass", "+ grad acct", "host copy")
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in SETTINGS.items():
            if args.only and name not in args.only.split(","):
                continue
            t = bench(name, config, args.rounds, Path(tmp))
            ratios = "".join(
                f"{t[m] / t['plain']:>13.3f}x"
                for m in ("in-flight", "+ eval pass", "+ grad acct", "host copy")
            )
            print(f"{name:<20}{t['plain']:>9.3f}{ratios}")
    print("goals: in-flight <= 1.050x, + eval pass <= 1.400x (grad acct reported separately)")


if __name__ == "__main__":
    main()
