"""`memdash estimate` on a text run: many language models of the run's own architecture and
training recipe, each on a random subset of its training sequences, and what each one does
on every sequence; then the counterfactual memorization of every sequence (Zhang et al.
2021, `memdash.analysis.measures.counterfactual`) and membership inference on the sequences'
log-likelihoods (LiRA and RMIA, `memdash.analysis.measures.membership`).

The estimate's machinery is the classifiers' (`memdash.analysis.ensemble.estimate`: the spec,
the batches as units of work, the local and Ray backends, resuming); `estimate` calls this
module for a text run. A batch job writes, beside ``heldout/spec.json``:

    RUN/heldout/rR_bBBBB.subsets.npy   uint8 (k, ceil(T/8)): np.packbits of each model's subset
                                       of the T training sequences (split ``train``: the corpus
                                       sequences, the duplicated ones, the trained canaries):
                                       whether the sequence's FIRST copy is in its training data
    RUN/heldout/rR_bBBBB.copies.npy    uint16 (k, T): how many copies of each training sequence
                                       each model trains on per epoch (0 .. its copies)
    RUN/heldout/rR_bBBBB.accuracy.npy  float32 (k, N): each model's mean token accuracy on each
                                       sequence (the share of its tokens that are the argmax)
    RUN/heldout/rR_bBBBB.loglik.npy    float32 (k, N): each model's total log-likelihood of each
                                       sequence, sum of log p(token | BOS, tokens before), nats

(the log-likelihoods last, so a batch is complete when they exist beside the other three).

Copies are drawn as Zhang et al. 2021 draw documents: a sequence duplicated c times
(``duplicates``) or a canary inserted r times is c (r) separate copies, and each copy is in a
model's training data independently of the others (`copy_counts`). Membership, "x in S" for
counterfactual memorization and the attacks, is whether the FIRST copy is in (the subset, drawn
as for a classifier: round(ratio * T) sequences); each other copy is in with probability
``ratio`` whatever the first does. A model that holds m of a sequence's copies trains on it m
times per epoch. A sequence with one copy is in or out exactly as before; a much-duplicated one
is seen about as often by the models that hold it out as by those that hold it in, which is
why its counterfactual memorization is low in the paper. Each model trains as the run did
(`record.text.training.train_text_epoch`: its optimizer, batch size, epochs, the batch cut to
its longest sequence, the mean token loss), with its own seed (`batched.model_seed`) for its
initialization, subset, copies, order and dropout, on one thread.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from memdash.analysis.ensemble.batched import model_seed, subset_mask
from memdash.analysis.measures.audit import privacy_audit
from memdash.analysis.measures.counterfactual import counterfactual_table, failed_models
from memdash.analysis.measures.dp_audit import DELTA
from memdash.analysis.record.config import RunConfig
from memdash.analysis.record.text.models import CausalLM, build_lm
from memdash.analysis.record.text.scoring import model_inputs, token_statistics
from memdash.analysis.record.text.training import train_text_epoch
from memdash.analysis.record.training import make_optimizer
from memdash.analysis.store import Run, RunFormatError, write_npy

# LiRA's per-example variance from this many shadow models a side (the classifiers': 16).
# Sequence log-likelihoods differ in scale between sequences by orders of magnitude (a
# random secret against templated English), so the pooled variance the LiRA paper uses with
# few shadow models misfits them: on the sample text estimate (16 models, about 8 a side)
# online LiRA's AUC is 0.55 with it and 0.79 with per-example variances.
TEXT_MIN_MODELS = 4
STATISTICS = ("accuracy", "loglik")  # the per-model per-sequence files, the last one last
COPIES_DTYPE = np.uint16  # a batch's copies.npy
_COPY_STREAM = 1  # the copies' generator: default_rng([model seed, _COPY_STREAM])
_TEXT_BATCH = re.compile(r"^r(\d+)_b(\d{4,})\.loglik\.npy$")


def check_text(run: Run) -> None:
    """Refuse, in one line, a text estimate of a run that holds no text."""
    if not run.is_text:
        raise ValueError(
            f"{run.path} is not a text run (its examples are not sequences): counterfactual "
            "memorization of text needs a run trained with --dataset text"
        )


class _Unrecorded:
    """The recorder `train_text_epoch` reports batches to, recording nothing (an estimate's
    models are measured once, after training)."""

    def __init__(self, bos: int) -> None:
        self.bos = bos

    def log_batch(self, ids: torch.Tensor, logits: torch.Tensor) -> None:
        return None


def text_completed(run: Run) -> set[tuple[int, int]]:
    """(ratio index, batch index) of every text batch already on disk with all its files."""
    folder = run.path / "heldout"
    if not folder.is_dir():
        return set()
    done = set()
    for file in folder.iterdir():
        match = _TEXT_BATCH.match(file.name)
        stem = file.name.removesuffix(".loglik.npy")
        others = (f"{stem}.subsets.npy", f"{stem}.copies.npy", f"{stem}.accuracy.npy")
        if match and all((folder / name).is_file() for name in others):
            done.add((int(match[1]), int(match[2])))
    return done


def copy_counts(seed: int, copies: np.ndarray, first: np.ndarray, *, ratio: float) -> np.ndarray:
    """How many copies of each training sequence a model trains on per epoch.

    Each copy is in the model's training data independently: the first one when `first` says so
    (the model's subset, `batched.subset_mask`), each of the other c - 1 with probability
    `ratio`, from a generator seeded by the model's seed alone (not by its batch).

    Parameters
    ----------
    seed : the model's seed (`batched.model_seed`)
    copies : int (T,), each training sequence's copies (``duplicates``), 1 or more
    first : bool (T,), whether its first copy is in
    ratio : the share of copies drawn in, in (0, 1]

    Returns
    -------
    uint16 (T,): `first` plus Binomial(c - 1, ratio) per sequence
    """
    copies = np.asarray(copies, dtype=np.int64)
    if copies.shape != first.shape:
        raise ValueError(f"copies {copies.shape} and first copies {first.shape} differ in shape")
    if len(copies) and (copies.min() < 1 or copies.max() > np.iinfo(COPIES_DTYPE).max):
        raise ValueError(
            f"copies of a sequence must lie in [1, {np.iinfo(COPIES_DTYPE).max}], "
            f"got {copies.min()} .. {copies.max()}"
        )
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio}")
    rest = np.random.default_rng([seed, _COPY_STREAM]).binomial(copies - 1, ratio)
    return (first.astype(np.int64) + rest).astype(COPIES_DTYPE)


def _language_model(run: Run, config: RunConfig, seed: int) -> CausalLM:
    """The run's architecture, initialized from `seed` (a checkpoint: its own weights)."""
    torch.manual_seed(seed)
    m, text = config.model, run.meta["text"]
    return build_lm(
        m.name,
        vocab_size=int(text["vocab_size"]),
        context=m.context or run.inputs().shape[1] + 1,  # BOS and every token, as the run
        layers=m.n_layers,
        width=m.width,
        heads=m.n_heads,
        dropout=m.dropout,
        model_path=m.model_path,
        bos=int(text["bos_id"]),
    )


def sequence_measures(
    model: CausalLM, tokens: torch.Tensor, bos: int, *, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """A model's mean token accuracy and total log-likelihood (nats) of every sequence.

    Parameters
    ----------
    tokens : int64 (N, L), -1 padded
    batch : sequences per forward pass

    Returns
    -------
    (accuracy, loglik), float32 (N,) each
    """
    lengths = (tokens >= 0).sum(1)
    accuracy, loglik = [], []
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(tokens), batch):
            rows = tokens[lo : lo + batch]
            rows = rows[:, : int(lengths[lo : lo + batch].max())]
            ids, mask = model_inputs(rows, bos)
            stats = token_statistics(model(ids), rows)
            n = mask.sum(1)
            accuracy.append(stats["correct"].sum(1) / n)
            loglik.append(-torch.where(mask, stats["loss"], 0.0).sum(1))
    return torch.cat(accuracy).float().numpy(), torch.cat(loglik).float().numpy()


def train_text_batch(path: str, ratio_index: int, batch: int, first: int, end: int) -> None:
    """Train models `first` .. `end` - 1 of a ratio of a text run's estimate, one after
    another, and write the batch's files (the text job every backend runs)."""
    run = Run.open(path)
    check_text(run)
    spec = json.loads((run.path / "heldout" / "spec.json").read_text())
    config = RunConfig.from_dict(run.config)
    examples = run.examples(["split", "duplicates"])
    train_ids = np.flatnonzero((examples["split"] == "train").to_numpy())
    copies = examples["duplicates"].to_numpy()[train_ids]
    tokens = torch.from_numpy(np.asarray(run.inputs()).astype(np.int64))
    bos = int(run.meta["text"]["bos_id"])
    ratio = spec["ratios"][ratio_index]
    seeds = [model_seed(spec["seed"], ratio_index, k) for k in range(first, end)]
    subsets = np.stack([subset_mask(s, len(train_ids), ratio) for s in seeds])
    counts = np.stack(
        [copy_counts(s, copies, f, ratio=ratio) for s, f in zip(seeds, subsets, strict=True)]
    )
    measures: dict[str, list[np.ndarray]] = {name: [] for name in STATISTICS}
    for seed, count in zip(seeds, counts, strict=True):
        own = replace(config, seed=seed)  # its order and dropout derive from its seed
        model = _language_model(run, own, seed)
        opt = make_optimizer(own, model)
        presented = torch.from_numpy(np.repeat(train_ids, count))  # each copy it holds
        recorder = _Unrecorded(bos)
        for epoch in range(1, own.train.epochs + 1):
            train_text_epoch(model, opt, recorder, tokens, presented, own, epoch)  # type: ignore[arg-type]
        accuracy, loglik = sequence_measures(
            model, tokens, bos, batch=config.record.eval_batch_size
        )
        measures["accuracy"].append(accuracy)
        measures["loglik"].append(loglik)
    stem = f"r{ratio_index}_b{batch:04d}"
    folder = run.path / "heldout"
    write_npy(folder / f"{stem}.subsets.npy", np.packbits(subsets, axis=1))
    write_npy(folder / f"{stem}.copies.npy", counts)
    for name in STATISTICS:
        write_npy(folder / f"{stem}.{name}.npy", np.stack(measures[name]).astype(np.float32))


def load_text_batches(
    run: Run, batches: list[tuple[int, int, int, int]], ratio_index: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The models of a ratio: trained bool (K, N), accuracy and loglik float32 (K, N).

    Parameters
    ----------
    batches : (ratio index, batch index, first model, end model) of the estimate's batches
        (`EstimateSpec.batches`)
    """
    check_text(run)
    examples = run.examples(["split"])
    n = len(examples)
    train_ids = np.flatnonzero((examples["split"] == "train").to_numpy())
    trained, values = [], {name: [] for name in STATISTICS}
    for ri, b, lo, hi in batches:
        if ri != ratio_index:
            continue
        stem = f"r{ri}_b{b:04d}"
        sub = np.unpackbits(run.heldout_array(f"{stem}.subsets.npy"), axis=1)
        if len(sub) != hi - lo:
            raise RunFormatError(run.path, f"heldout/{stem}.subsets.npy", f"expected {hi - lo}")
        t = np.zeros((hi - lo, n), bool)
        t[:, train_ids] = sub[:, : len(train_ids)].astype(bool)
        held = run.heldout_array(f"{stem}.copies.npy")
        if held.shape != (hi - lo, len(train_ids)) or held.dtype != COPIES_DTYPE:
            raise RunFormatError(
                run.path,
                f"heldout/{stem}.copies.npy",
                f"expected uint16 ({hi - lo}, {len(train_ids)}), got {held.dtype} {held.shape}",
            )
        trained.append(t)
        for name in STATISTICS:
            part = run.heldout_array(f"{stem}.{name}.npy")
            if part.shape != (hi - lo, n) or part.dtype != np.float32:
                raise RunFormatError(
                    run.path,
                    f"heldout/{stem}.{name}.npy",
                    f"expected float32 ({hi - lo}, {n}), got {part.dtype} {part.shape}",
                )
            values[name].append(part)
    if not trained:
        raise RunFormatError(run.path, "heldout", f"no batch of ratio {ratio_index}")
    return (
        np.concatenate(trained),
        np.concatenate(values["accuracy"]),
        np.concatenate(values["loglik"]),
    )


def derive_text(
    run: Run,
    batches: list[tuple[int, int, int, int]],
    *,
    seed: int = 0,
    budget: tuple[int, ...] = (),
) -> tuple[dict[str, pd.DataFrame], dict]:
    """counterfactual.parquet (per sequence), and the attacks on the sequences' total
    log-likelihoods, from the first ratio's models: LiRA with the log-likelihood as its
    statistic and RMIA with it as the log-probability of the sequence (Zarifzadeh et al.
    2024 compare p(x | model) = exp(log-likelihood)), membership.parquet (per sequence, with
    the Gaussian check of LiRA's assumption), membership_roc.parquet (per attack) and
    membership_budget.parquet (power against the number of reference models, draws seeded
    by `seed`); plus the attacks' summary (AUC, TPR at low FPR, empirical epsilon at the
    delta of a model trained without DP, the Gaussian check's shares) and ``failed_models``:
    the models that did not learn (`measures.counterfactual.failed_models`), left out of
    every table (all kept when fewer than two would remain)."""
    trained, accuracy, loglik = load_text_batches(run, batches, 0)
    failed = failed_models(accuracy, trained)
    if len(failed) and len(failed) < len(trained) - 1:  # keep what learned, say what did not
        kept = np.setdiff1d(np.arange(len(trained)), failed)
        trained, accuracy, loglik = trained[kept], accuracy[kept], loglik[kept]
    else:
        failed = np.array([], dtype=np.int64)
    table = counterfactual_table(accuracy, loglik, trained)
    table.insert(0, "example_id", np.arange(trained.shape[1], dtype=np.int64))
    audit, summary = privacy_audit(
        loglik,
        trained,
        delta=DELTA,
        seed=seed,
        log_p=loglik,
        budget=budget or None,
        min_models=TEXT_MIN_MODELS,
    )
    summary["failed_models"] = [int(k) for k in failed]  # left out of every table above
    return {"counterfactual.parquet": table} | audit, summary
