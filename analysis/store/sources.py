"""Which trace a score comes from: the end-of-epoch eval pass or the training minibatches.

A run records up to two traces (docs/run-format.md): ``eval``, a pass over
every example in eval mode at the end of each epoch (memdash's default
columns), and ``train``, each training minibatch's statistics in train mode,
before its update (the ``_train`` columns). Toneva et al. 2019, Swayamdipta
et al. 2020 and Pleiss et al. 2020 score the training minibatches; memdash's
``_train`` columns match their code exactly. The two differ (dropout is on in
train mode and the weights move during the epoch), so every number names its
source.
"""

from __future__ import annotations

import pandas as pd

SOURCES: dict[str, str] = {
    "eval": "end-of-epoch eval pass",
    "train": "training minibatches (train mode, before each update)",
}
SOURCE_SENTENCE = (
    "Trace scores come from one of two traces: the end-of-epoch eval pass (every example "
    "in eval mode after the epoch, memdash's default) or the training minibatches (each "
    "example in train mode just before its update, which is what Toneva et al., "
    "Swayamdipta et al. and Pleiss et al. score)."
)
# the per-example scores computed from a trace (analysis.dynamics.trace_scores)
TRACE_SCORES = (
    *("forgetting_events", "first_learned_epoch", "learned_epoch", "never_learned"),
    *("unforgettable", "confidence", "variability", "correctness", "aum", "mean_loss"),
    "n_epochs",
)
SUFFIX = {"eval": "", "train": "_train"}


def check_source(source: str) -> str:
    """`source` if it names a trace, else a ValueError listing the valid names."""
    if source not in SOURCES:
        raise ValueError(f"unknown trace source {source!r}; choose one of {', '.join(SOURCES)}")
    return source


def has_source(table: pd.DataFrame, source: str) -> bool:
    """Whether `table` holds trace scores from `source`."""
    return f"forgetting_events{SUFFIX[check_source(source)]}" in table.columns


def select_source(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """`table` with its trace-score columns taken from `source`, under the plain names.

    Parameters
    ----------
    table : per-example scores with plain (eval) and ``_train`` columns
    source : ``eval`` or ``train``; the table must hold it (`has_source`)

    Returns
    -------
    The same table for ``eval``; for ``train`` a new one whose plain trace-score
    columns hold the ``_train`` values (the ``_train`` columns dropped). The
    input is never modified.
    """
    if not has_source(table, source):
        raise ValueError(f"the table holds no trace scores from the {SOURCES[source]}")
    if source == "eval":
        return table
    present = [s for s in TRACE_SCORES if f"{s}_train" in table.columns]
    swapped = table.drop(columns=present).rename(columns={f"{s}_train": s for s in present})
    return swapped[[c for c in table.columns if c in swapped.columns]]
