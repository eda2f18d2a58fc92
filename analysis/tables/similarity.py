"""Layer-by-layer similarity of runs of the same examples (`measures.similarity` on their
stored embeddings)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from memdash.analysis.measures.similarity import (
    MEASURES,
    canonical_correlations,
    cka_matrix,
    svd_reduce,
)
from memdash.analysis.store import Run


def run_similarity(
    runs: list[Run], *, epochs: list[int] | None = None, measures: tuple[str, ...] = MEASURES
):
    """Every measure between every layer of every pair of runs, at their shared embedding
    epochs: a long table with columns ``run_a``, ``run_b`` (run names), ``epoch``,
    ``layer_a``, ``layer_b``, ``measure`` and ``value``.

    Parameters
    ----------
    runs : two or more `Run` of the same examples (identical inputs)
    epochs : the embedding epochs to compare (default: every epoch all runs recorded)
    measures : a subset of MEASURES
    """
    unknown = [m for m in measures if m not in MEASURES]
    if unknown or not measures:
        raise ValueError(f"unknown measure(s) {unknown}; valid: {', '.join(MEASURES)}")
    if len(runs) < 2:
        raise ValueError("comparing representations needs two or more runs")
    first = runs[0]
    for run in runs[1:]:
        if run.n_examples() != first.n_examples() or not np.array_equal(
            run.inputs(), first.inputs()
        ):
            raise ValueError(
                f"runs {first.name} and {run.name} hold different examples; representations "
                "can only be compared on the same inputs (train them with one --data-seed)"
            )
    shared = sorted(set.intersection(*(set(r.embedding_index()) for r in runs)))
    chosen = shared if epochs is None else [e for e in epochs if e in shared]
    if not chosen:
        raise ValueError(
            f"no embedding epoch shared by every run (asked {epochs}, shared {shared}); record "
            "them with --embed-layers and --embed-epochs"
        )
    rows = []
    for epoch in chosen:
        names = [run.in_layer_order(run.embedding_index()[epoch]) for run in runs]
        reps = [[run.embedding(epoch, n) for n in ns] for run, ns in zip(runs, names, strict=True)]
        reduced: dict[int, list[np.ndarray]] = {}  # each run's SVD-reduced layers, once
        for i, j in itertools.combinations(range(len(runs)), 2):
            values = {}
            if "cka" in measures:
                values["cka"] = cka_matrix(reps[i], reps[j])
            if "svcca" in measures:
                for k in (i, j):
                    reduced.setdefault(k, [svd_reduce(x) for x in reps[k]])
                values["svcca"] = np.array(
                    [[canonical_correlations(a, b).mean() for b in reduced[j]] for a in reduced[i]]
                )
            rows += [
                (runs[i].name, runs[j].name, epoch, a, b, measure, matrix[ia, ib])
                for measure, matrix in values.items()
                for ia, a in enumerate(names[i])
                for ib, b in enumerate(names[j])
            ]
    columns = ["run_a", "run_b", "epoch", "layer_a", "layer_b", "measure", "value"]
    return pd.DataFrame(rows, columns=columns)
