"""How much recording adds to a language model's training epoch, side by side in one process.

The sample suite's text run (a GPT-2 of 2 blocks, width 64, on 1,181 training sequences of
64 bytes with its canaries and duplicates) is timed for one epoch in three ways, the modes
interleaved round by round (their order rotated each round, garbage collected before each)
and the median kept:

plain        a bare training loop (forward, token cross-entropy, backward, step)
in-flight    + TextRecorder.log_batch (each batch's per-sequence statistics: the loss, the
             log-perplexity, token accuracy and extractability from the batch's own logits)
+ eval pass  + the end-of-epoch eval pass over every sequence (the trace with extraction,
             per-token losses, written to disk as `memdash train` writes them)

Extraction is read from the eval pass's own forward (greedy decoding reproduces the suffix
iff every suffix token is the argmax fed the true tokens), so it costs nothing beyond it;
autoregressive decoding never runs while training.

Goal (issue 24): + eval pass <= 1.5 x plain.

Run: .venv/bin/python benchmarks/text_recording.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from memdash.analysis.record.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from memdash.analysis.record.text.recorder import TextRecorder
from memdash.analysis.record.text.scoring import model_inputs
from memdash.analysis.record.text.training import (
    create_text_run,
    make_lm,
    prepare_text,
    train_text_epoch,
)

CONFIG = RunConfig(
    data=DataConfig(
        dataset="text",
        n_examples=2000,
        canaries=4,
        canary_repeats=(1, 4, 16, 64),
        reference_canaries=100,
        duplicate_sequences=8,
    ),
    model=ModelConfig(name="gpt", width=64, n_layers=2, n_heads=4),
    train=TrainConfig(optimizer="adam", lr=0.003, batch_size=32),
)


def _plain_epoch(model, opt, tokens, train_ids, batch_size, bos, seed):
    """One epoch of the bare loop `train_text_epoch` runs, without a recorder."""
    order = torch.randperm(len(train_ids), generator=torch.Generator().manual_seed(seed))
    lengths = (tokens >= 0).sum(1)
    model.train()
    for ids in torch.split(train_ids[order], batch_size):
        batch = tokens[ids][:, : int(lengths[ids].max())]
        inputs, mask = model_inputs(batch, bos)
        logits = model(inputs)
        losses = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), batch.clamp(min=0).flatten(), reduction="none"
        )
        loss = (losses * mask.flatten()).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    prepared = prepare_text(CONFIG.data, 0)
    tokens = torch.from_numpy(prepared.tokens.astype(np.int64))
    train_ids = torch.from_numpy(prepared.train_ids)
    bos = prepared.tokenizer.bos_id
    examples = prepared.examples
    times: dict[str, list[float]] = {"plain": [], "in-flight": [], "+ eval pass": []}
    with tempfile.TemporaryDirectory() as tmp:
        model = make_lm(CONFIG, prepared)
        opt = torch.optim.Adam(model.parameters(), lr=CONFIG.train.lr)
        writer = create_text_run(Path(tmp) / "run", CONFIG, prepared, model)

        def recorder(record_train: bool) -> TextRecorder:
            return TextRecorder(
                writer,
                model,
                tokens,
                bos=bos,
                prefix_len=examples["prefix_len"].to_numpy(),
                suffix_len=examples["suffix_len"].to_numpy(),
                split=examples["split"].to_numpy(),
                record_train=record_train,
                checkpoint_epochs=(),
            )

        in_flight, full = recorder(True), recorder(True)
        runs = {
            "plain": lambda e: _plain_epoch(model, opt, tokens, train_ids, 32, bos, e),
            "in-flight": lambda e: (
                train_text_epoch(model, opt, in_flight, tokens, train_ids, CONFIG, e),
                in_flight._train_source_table(e),
            ),
            "+ eval pass": lambda e: (
                train_text_epoch(model, opt, full, tokens, train_ids, CONFIG, e),
                full.end_epoch(e),
                full.flush(),
            ),
        }
        epoch = 0
        for r in range(args.rounds):
            names = list(runs)
            for name in names[r % 3 :] + names[: r % 3]:
                gc.collect()
                epoch += 1
                start = time.perf_counter()
                runs[name](epoch)
                times[name].append(time.perf_counter() - start)
        full.finish()
    plain = statistics.median(times["plain"])
    print(f"text run: {len(train_ids):,} presentations of 64 tokens an epoch, {args.rounds} rounds")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:12s} {median:7.2f} s an epoch   {median / plain:5.2f} x plain")
    ratio = statistics.median(times["+ eval pass"]) / plain
    print(
        f"goal: + eval pass <= 1.50 x plain: {'met' if ratio <= 1.5 else 'NOT met'} ({ratio:.2f})"
    )


if __name__ == "__main__":
    main()
