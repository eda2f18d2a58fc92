"""The extraction step of a text run: extractable memorization by group and epoch (Carlini et
al. 2023, "Quantifying Memorization Across Neural Language Models").

A training sequence [p || s] with |p| = P tokens is extractable when greedy decoding from p
reproduces its next S tokens exactly; the eval trace's ``correct`` says so per sequence and
epoch (the recorder reads it from one teacher-forced pass: greedy decoding reproduces s iff
the argmax at every position of s, fed the true tokens, is the true token). A canary's
prefix is its format's text and its suffix the secret. This step counts, per epoch, the share
extractable of each group: the sequences duplicated c times per epoch (``duplicate``, with
``--duplicate-sequences``), the canaries inserted r times (``canary``), the other training
sequences (``train``, once each), the test sequences and the reference secrets (never seen).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.store import Run

EXTRACTION_COLUMNS = ("epoch", "kind", "copies", "n", "extracted", "extracted_share", "loss")


def example_groups(examples: pd.DataFrame) -> pd.DataFrame:
    """Each sequence's group: ``kind`` (duplicate, canary, train, test, reference) and
    ``copies`` (presentations per epoch: c for a duplicate, r for a canary, 1 for a training
    sequence, 0 for test sequences and references)."""
    split = examples["split"].to_numpy()
    corruption = examples["corruption"].to_numpy()
    kind = np.where(
        corruption == "duplicate",
        "duplicate",
        np.where(examples["is_canary"].to_numpy() & (split == "train"), "canary", split),
    )
    return pd.DataFrame({"kind": kind, "copies": examples["duplicates"].to_numpy(np.int64)})


def compute_extraction(
    run: Run, config: AnalysisConfig | None = None, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/extraction.parquet: per eval ``epoch`` (0 included), ``kind`` and ``copies``,
    the group's size ``n``, how many of it are extractable (``extracted``), their share
    (``extracted_share``) and its mean token ``loss`` (nats)."""
    groups = example_groups(run.examples(["split", "is_canary", "corruption", "duplicates"]))
    epochs, grids = run.trace_grids("eval", ("correct", "loss"), first_epoch=0)
    keys = groups.groupby(["kind", "copies"]).indices
    rows = []
    for e, epoch in enumerate(epochs):
        progress(f"epoch {epoch}")
        correct, loss = grids["correct"][e], grids["loss"][e]
        for (kind, copies), members in sorted(keys.items()):
            seen = members[~np.isnan(loss[members])]
            if not len(seen):
                continue
            hits = int(np.nansum(correct[seen]))
            rows.append(
                (int(epoch), kind, int(copies), len(seen), hits, hits / len(seen))
                + (float(np.mean(loss[seen])),)
            )
    table = pd.DataFrame(rows, columns=list(EXTRACTION_COLUMNS)).astype(
        {"epoch": np.int32, "copies": np.int64, "n": np.int64, "extracted": np.int64}
    )
    return {"extraction.parquet": table}
