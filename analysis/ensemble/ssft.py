"""Second-split forgetting time (SSFT; Maini et al. 2022) of every training example of a run.

The run's training examples are split into two seeded halves, A and B, and two models of the
run's config (model, optimizer, learning rate, batch size; its labels as trained, flipped
labels and canaries included, a canary as many times per epoch as it was trained) are trained
at once with `batched.fit_batched`: model 0 on A, then on B; model 1 on B, then on A. Each
first phase lasts `SSFTSpec.epochs` epochs; the second (`SSFTSpec.second_epochs`) continues
from the first's weights with a fresh optimizer, and after each of its epochs both models
are evaluated on every training example. An example's SSFT is read from the model that
trained on its half first (`measures.ssft`): model 0's grid for A, model 1's for B, so every
training example gets one, as in the paper's code (its "standard" and "reverse" runs).

`write_ssft` stores RUN/derived/ssft.parquet, one row per training example: ``example_id``,
``ssft`` (int: the first second-phase epoch from which it stays wrong; second_epochs + 1 when
never forgotten; 0 when the first phase never fit it), ``half`` (``A``/``B``),
``learned_first`` (bool: right at the end of the first phase) and ``second_epochs``; and the
manifest's ``ssft`` entry (its key, params and the wall time in ``seconds``).

Differences from the paper, by design: the first phase runs the run's own epochs rather than
to convergence, the learning rate is the run's in both phases (the paper lowers it for the
second), one seed per direction (the paper averages over seeds), no DP-SGD for a DP run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memdash.analysis.ensemble.batched import (
    ensemble_correct,
    fit_batched,
    model_seed,
    subset_mask,
)
from memdash.analysis.measures.ssft import second_split_forgetting_time
from memdash.analysis.record.config import RunConfig
from memdash.analysis.store import Run, write_lock

STEP = "ssft"
FILE = "ssft.parquet"
VERSION = 1  # bump when the table changes meaning
COLUMNS = ("example_id", "ssft", "half", "learned_first", "second_epochs")
_NEEDED = ("model", "train")  # run.json config parts the models are rebuilt from


@dataclass(frozen=True)
class SSFTSpec:
    """What an SSFT computation trains."""

    epochs: int  # first-phase epochs on each half (the run's own, by default)
    second_epochs: int  # second-phase epochs on the other half, each followed by an evaluation
    seed: int = 0  # the halves, the models' initialization and their orders derive from it

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.second_epochs < 1:
            raise ValueError(
                f"SSFT needs epochs >= 1 and second_epochs >= 1, got {self.epochs} and "
                f"{self.second_epochs}"
            )


def split_halves(seed: int, n_train: int) -> np.ndarray:
    """bool (n_train,): which training examples are in half A (round(n_train / 2) of them,
    seeded); the others are half B."""
    if n_train < 2:
        raise ValueError(f"SSFT splits the training examples in two halves; got {n_train}")
    return subset_mask(seed, n_train, 0.5)


def check_ssft(run: Run) -> RunConfig:
    """The run's config, or ValueError (one line) when SSFT cannot be computed for it: a
    language model's run, a run whose config does not say how to rebuild its model and
    training (recorded from one's own loop), example-tied dropout, fewer than two training
    examples."""
    if run.is_text:
        raise ValueError(f"{run.path} is a language model's run: SSFT is for classifiers")
    raw = run.config
    missing = [part for part in _NEEDED if not isinstance(raw.get(part), dict)]
    if missing:
        raise ValueError(
            f"{run.path}/run.json has no config.{missing[0]}: SSFT retrains the run's model "
            "with its training, which memdash knows only for runs it trained"
        )
    config = RunConfig.from_dict(raw)
    if config.model.example_tied_dropout:
        raise ValueError(f"{run.path}: SSFT does not support example-tied dropout")
    n_train = int((run.examples(["split"])["split"] == "train").sum())
    if n_train < 2:
        raise ValueError(
            f"{run.path} has {n_train} training example(s): SSFT needs two halves of them"
        )
    return config


def second_split_grids(
    config: RunConfig,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    train_ids: np.ndarray,
    first: np.ndarray,
    *,
    second_epochs: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Train K models on their first-phase positions, then on the others, and record their
    correctness on every training example after the first phase and each second-phase epoch.

    Parameters
    ----------
    config : the models, optimizer and batch size; ``train.epochs`` = first-phase epochs
    inputs, labels : every example (index = example id)
    train_ids : (P,) the training positions' example ids (a repeated example repeated)
    first : bool (K, P), each model's first-phase positions; its second phase is the rest
    second_epochs : second-phase epochs
    seed : model k's initialization and orders derive from ``model_seed(seed, phase, k)``

    Returns
    -------
    bool (K, second_epochs + 1, U): each model's correctness on each of the U distinct
    training examples (sorted by id), row 0 at the end of the first phase.
    """
    report = progress or (lambda what: None)
    ids = np.unique(train_ids)
    index = torch.as_tensor(ids, device=inputs.device)
    x, y = inputs[index], labels[index]
    grids = np.zeros((len(first), second_epochs + 1, len(ids)), bool)
    later = replace(config, train=replace(config.train, epochs=second_epochs))
    for group in _same_sizes(first):  # models whose phases have equal sizes train at once
        seeds = [model_seed(seed, 0, k) for k in group]
        ens = fit_batched(
            config,
            inputs,
            labels,
            train_ids,
            seeds,
            first[group],
            on_epoch=lambda e, _, group=group: report(
                f"models {group}: first phase, epoch {e}/{config.train.epochs}"
            ),
        )
        grids[group, 0] = ensemble_correct(ens, x, y)

        def record(epoch: int, ens, group=group) -> None:
            grids[group, epoch] = ensemble_correct(ens, x, y)
            report(f"models {group}: second phase, epoch {epoch}/{second_epochs}")

        seeds = [model_seed(seed, 1, k) for k in group]
        fit_batched(
            later, inputs, labels, train_ids, seeds, ~first[group], start=ens, on_epoch=record
        )
    return grids


def _same_sizes(first: np.ndarray) -> list[list[int]]:
    """The models grouped by the sizes of their two phases (`fit_batched` trains models of
    equal subset sizes at once): one group when the halves are equal."""
    sizes = [(int(f.sum()), int((~f).sum())) for f in first]
    return [[k for k, s in enumerate(sizes) if s == size] for size in dict.fromkeys(sizes)]


def compute_ssft(
    run: Run,
    spec: SSFTSpec,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """SSFT of every training example of `run`: the table (`COLUMNS`, one row per training
    example) and its params (epochs, second_epochs, seed, half_sizes)."""
    config = check_ssft(run)
    config = replace(config, train=replace(config.train, epochs=spec.epochs))
    examples = run.examples()
    ids = np.flatnonzero((examples["split"] == "train").to_numpy())
    repeats = np.ones(len(examples), np.int64)
    if "canary_repeats" in examples:  # a canary trains as many times per epoch as planted
        repeats = np.maximum(examples["canary_repeats"].to_numpy(np.int64), 1)
    in_a = split_halves(spec.seed, len(ids))
    train_ids = np.repeat(ids, repeats[ids])
    first = np.repeat(in_a, repeats[ids])
    inputs = torch.tensor(np.asarray(run.inputs(), dtype=np.float32))  # on the cpu, as
    labels = torch.tensor(examples["label"].to_numpy(np.int64))  # `memdash estimate`
    grids = second_split_grids(
        config,
        inputs,
        labels,
        train_ids,
        np.stack([first, ~first]),  # model 0: A then B; model 1: B then A
        second_epochs=spec.second_epochs,
        seed=spec.seed,
        progress=progress,
    )
    correct = np.where(in_a, grids[0], grids[1])  # each example from its first-phase model
    table = pd.DataFrame(
        {
            "example_id": ids.astype(np.int64),
            "ssft": second_split_forgetting_time(correct).astype(np.int64),
            "half": np.where(in_a, "A", "B").astype(object),
            "learned_first": correct[0],
            "second_epochs": np.full(len(ids), spec.second_epochs, np.int64),
        }
    )
    params = {
        "epochs": spec.epochs,
        "second_epochs": spec.second_epochs,
        "seed": spec.seed,
        "half_sizes": [int(in_a.sum()), int((~in_a).sum())],
    }
    return table, params


def ssft_key(run: Run, spec: SSFTSpec) -> str:
    """What the stored SSFT depends on, hashed: the step's version, the spec, the run's
    training config (without its recording options) and its creation."""
    config = run.config
    config.pop("record", None)
    config.pop("command", None)
    payload = {
        "step": STEP,
        "version": VERSION,
        "spec": [spec.epochs, spec.second_epochs, spec.seed],
        "config": config,
        "created_at": run.meta.get("created_at"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def write_ssft(
    path: str | Path,
    spec: SSFTSpec,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Compute the SSFT of a run's training examples and store it: RUN/derived/ssft.parquet
    and the manifest's ``ssft`` entry (key, params, ``seconds``: the wall time of the
    training and evaluation), written atomically under the run's write lock.

    Returns
    -------
    the table and the manifest entry
    """
    run = Run.open(path)
    run.check_parts()  # a missing or damaged part is named before any training
    check_ssft(run)
    with write_lock(run.path, "memdash ssft"):
        started = time.perf_counter()
        table, params = compute_ssft(run, spec, progress=progress)
        seconds = time.perf_counter() - started
        entry = {"key": ssft_key(run, spec), "params": params, "seconds": round(seconds, 3)}
        run.replace_derived(STEP, {FILE: table}, entry)
    return table, entry
