"""Per-example statistics of logits, as the recorder stores them in trace.parquet.

`example_stats` turns logits into the per-example loss, ``prob_label``, margin, prediction and
correctness; `stats_table` lays them out as one trace part of the run store;
`last_presentation_stats` reduces an epoch's training minibatches (the ``train`` source) to one
row per example presented; `summary_groups` and `accuracies_by_group` give the accuracies by
group that each committed epoch stores in run.json.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import torch

# trace columns written when recorded: the eval pass's measures of the inputs, text runs' own
OPTIONAL_COLUMNS = ("loss_sensitivity", "curvature", "critical", "log_perplexity", "token_accuracy")


def example_stats(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example statistics of logits against the labels trained with.

    Parameters
    ----------
    logits : shape (B, C)
    labels : int64, shape (B,)

    Returns
    -------
    dict of tensors of shape (B,): ``loss`` (cross-entropy, exact down to about 1e-38
    rather than to one ulp of the logits), ``prob_label``
    (softmax probability of the label), ``margin`` (label logit minus the
    largest other logit; > 0 exactly when the label wins), ``pred`` (argmax,
    first index on ties) and ``correct`` (pred == label).
    """
    logits = logits.float()
    y = labels.view(-1, 1)
    label_logit = logits.gather(1, y).squeeze(1)
    others = logits.scatter(1, y, float("-inf"))
    # log(1 + sum_j exp(z_j - z_y)) without cancellation: logsumexp(z) - z_y rounds every
    # loss below one ulp of the logits (about 1e-6) to 0, which ties memorized canaries
    loss = torch.nn.functional.softplus(torch.logsumexp(others, 1) - label_logit)
    other = others.amax(1)
    pred = logits.argmax(1)
    return {
        "loss": loss,
        "prob_label": torch.exp(-loss),
        "margin": label_logit - other,
        "pred": pred,
        "correct": pred == labels,
    }


def stats_table(
    source: str, epoch: int, ids: np.ndarray, stats: dict[str, torch.Tensor]
) -> pa.Table:
    """A trace part in the run-store layout from `example_stats` output.

    Built as an Arrow table straight from the arrays (a pandas round trip
    costs more than writing the file).
    """
    host = {k: v.cpu().numpy() for k, v in stats.items()}
    n = len(ids)
    return pa.table(
        {
            "source": pa.array([source]).take(np.zeros(n, dtype=np.int32)),
            "epoch": np.full(n, epoch, dtype=np.int32),
            "example_id": np.asarray(ids, dtype=np.int64),
            "loss": host["loss"].astype(np.float32, copy=False),
            "prob_label": host["prob_label"].astype(np.float32, copy=False),
            "margin": host["margin"].astype(np.float32, copy=False),
            "pred": host["pred"].astype(np.int32),
            "correct": host["correct"].astype(bool, copy=False),
            # optional columns, recorded only when asked for (Arpit et al.; Garg, Roy et al.)
            # or by text runs
            **{k: host[k].astype(np.float32, copy=False) for k in OPTIONAL_COLUMNS if k in host},
        }
    )


def last_presentation_stats(
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]], labels: torch.Tensor
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """The `example_stats` of an epoch's minibatches, one row per example presented.

    Parameters
    ----------
    batches : the epoch's ``(ids, logits)`` pairs in the order trained, shapes (B,) and (B, C)
    labels : int64, shape (N,), the labels trained with of every example

    Returns
    -------
    (ids, stats): the ids presented, ascending, and their statistics; an example presented
    several times (a repeated canary) keeps its last presentation.
    """
    ids = torch.cat([b[0] for b in batches]).to(labels.device)
    logits = torch.cat([b[1] for b in batches])
    order = torch.arange(len(ids), device=ids.device)
    last = torch.full((len(labels),), -1, dtype=torch.long, device=ids.device)
    last.scatter_reduce_(0, ids, order, reduce="amax")
    presented = torch.nonzero(last >= 0).squeeze(1)
    pick = last[presented]
    stats = example_stats(logits[pick.to(logits.device)], labels[presented].to(logits.device))
    return presented.cpu().numpy(), stats


def summary_groups(split: np.ndarray, is_noisy: np.ndarray) -> dict[str, np.ndarray]:
    """The groups whose accuracies an epoch summary reports, as boolean masks of shape (N,).

    ``train``, its ``clean`` and ``noisy`` (flipped) parts, and ``test``; a group without
    examples is left out.
    """
    train = split == "train"
    groups = {
        "train": train,
        "clean": train & ~is_noisy,
        "noisy": train & is_noisy,
        "test": split == "test",
    }
    return {name: mask for name, mask in groups.items() if mask.any()}


def accuracies_by_group(
    stats: dict[str, torch.Tensor], groups: dict[str, np.ndarray]
) -> dict[str, float]:
    """Accuracy (given labels) per group of `summary_groups`: ``{name}_acc``."""
    correct = stats["correct"].cpu().numpy()
    return {f"{name}_acc": float(correct[mask].mean()) for name, mask in groups.items()}
