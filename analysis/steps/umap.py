"""The umap step: derived/umap/LAYER.parquet, every example's 2-D place per recorded epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.measures.projection import aligned_projections
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.steps.jobs import Jobs, LocalJobs
from memdash.analysis.store import Run


def compute_umap(
    run: Run, config: AnalysisConfig, progress: Progress = _quiet, *, jobs: Jobs | None = None
) -> dict[str, pd.DataFrame]:
    """derived/umap/LAYER.parquet: every example's 2-D place at each recorded epoch.

    Columns ``epoch``, ``example_id``, ``x``, ``y``; the epochs of a layer are
    aligned to its last recorded epoch (`memdash.analysis.measures.projection`).
    A run of more than ``config.umap_sample`` examples (0: never) is fitted on
    ``projection.sample_rows(N, umap_sample, seed=config.seed)``, the same rows at
    every layer and epoch, and its other examples placed by the fitted model's transform.
    Each layer is a part of `jobs` (default: one after the other here; `memdash analyze
    --backend ray`: Ray tasks); its epochs are fitted in turn, each aligned to the next.
    """
    index = run.embedding_index()
    recorded = sorted({layer for layers in index.values() for layer in layers})
    layers = run.in_layer_order(recorded)
    parts = [
        (layer, [e for e, names in index.items() if layer in names], config) for layer in layers
    ]
    tables = (jobs or LocalJobs()).map(umap_part, run, parts, labels=layers, progress=progress)
    return {f"umap/{layer}.parquet": table for layer, table in zip(layers, tables, strict=True)}


def umap_part(
    run: Run, layer: str, epochs: list[int], config: AnalysisConfig, *, progress: Progress = _quiet
) -> pd.DataFrame:
    """One layer's aligned UMAP at the `epochs` it was recorded (a part of `compute_umap`)."""
    embeddings = {e: run.embedding(e, layer, mmap=False) for e in epochs}
    projections = aligned_projections(
        embeddings,
        n_neighbors=config.umap_neighbors,
        min_dist=config.umap_min_dist,
        random_state=config.seed,
        sample=config.umap_sample,
        progress=lambda epoch: progress(f"epoch {epoch}"),
    )
    n = run.n_examples()
    return pd.DataFrame(
        {
            "epoch": np.repeat(np.array(epochs, np.int32), n),
            "example_id": np.tile(np.arange(n, dtype=np.int64), len(epochs)),
            "x": np.concatenate([projections[e][:, 0] for e in epochs]),
            "y": np.concatenate([projections[e][:, 1] for e in epochs]),
        }
    )
