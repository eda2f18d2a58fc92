"""The dashboard's data layer: the only place with st.cache_data / st.cache_resource.

Pages call ``data.NAME``; the names live by what they read:

- `memdash.dashboard.data.roots`: the run roots, the runs discovered there, their summaries
  and the names they are listed by.
- `memdash.dashboard.data.run`: one run's reads (curves, examples, inputs, trajectories,
  derived tables, layers, embeddings, layer gradients, an estimate's models).
- `memdash.dashboard.data.studies`: reads across runs (findings, roles, seed groups,
  studies, similarity, easiness).
- `memdash.dashboard.data.paging`: a large run's example table a page at a time, and
  `memdash.dashboard.data.one_example`: one example's rows for its detail, each read alone.
- `memdash.dashboard.data.steps`: running analysis steps on a run.
- `memdash.dashboard.data.stamps`: what the caches key on.

Pages ask for runs by their index in the list of discovered runs; a name that comes from
the browser is looked up in that list and never joined into a path.
"""

from memdash.dashboard.data.roots import (
    DEFAULT_ROOT,
    ROOTS_ENV,
    SUMMARY_COLUMNS,
    UNREADABLE,
    discovered,
    readable_paths,
    run_path,
    run_roots,
    run_summaries,
    unique_names,
)
from memdash.dashboard.data.run import (
    PHOTO_DATASETS,
    TRAJECTORY_COLUMNS,
    by_kind_per_epoch,
    by_layer,
    confidences,
    curves,
    derived,
    examples,
    group_labels,
    has_embeddings,
    inputs,
    layer_grads,
    layer_order,
    manifest,
    photo_inputs,
    run_meta,
    trace_columns,
    trace_sources,
    trajectory,
)
from memdash.dashboard.data.steps import compute
from memdash.dashboard.data.studies import (
    easiness,
    embedding_epochs,
    epochs_completed,
    findings,
    group_of,
    role_paths,
    seed_groups,
    similarity,
    study_paths,
)

__all__ = [
    "DEFAULT_ROOT",
    "PHOTO_DATASETS",
    "ROOTS_ENV",
    "SUMMARY_COLUMNS",
    "TRAJECTORY_COLUMNS",
    "UNREADABLE",
    "by_kind_per_epoch",
    "by_layer",
    "compute",
    "confidences",
    "curves",
    "derived",
    "discovered",
    "easiness",
    "embedding_epochs",
    "epochs_completed",
    "examples",
    "findings",
    "group_labels",
    "group_of",
    "has_embeddings",
    "inputs",
    "layer_grads",
    "layer_order",
    "manifest",
    "photo_inputs",
    "readable_paths",
    "role_paths",
    "run_meta",
    "run_path",
    "run_roots",
    "run_summaries",
    "seed_groups",
    "similarity",
    "study_paths",
    "trace_columns",
    "trace_sources",
    "trajectory",
    "unique_names",
]
