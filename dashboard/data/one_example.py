"""One example's reads for its detail, by predicate pushdown, so that opening an example of a
million reads a row of each file and never the files: its row of the example table as the
pages hold it (`example_rows`: `memdash.analysis.tables.example_row.example_rows`, a text
run's kinds, the chosen trace's scores, the seed group's easiness) and its rows of a derived
per-example file (`derived_rows`: its k-NN predictions at each layer, its nearest training
examples). Each answer is small and cached on the run's stamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import streamlit as st

from memdash.analysis.store import Run
from memdash.analysis.store.sources import select_source
from memdash.analysis.tables import example_row as pushdown
from memdash.dashboard.data import paging
from memdash.dashboard.data.run import examples, text_kinds
from memdash.dashboard.data.stamps import derived_file_stamp, derived_stamp, run_stamp
from memdash.dashboard.data.studies import easiness

EASINESS_EPOCH = 1  # the seed group's easiness the Examples page shows (after epoch 1)


def example_rows(
    path: Path,
    ids: Sequence[int],
    *,
    source: str = "eval",
    group: tuple[str, ...] | None = None,
    scores: bool = True,
) -> pd.DataFrame:
    """The example table's rows of `ids`, in that order, indexed by id: the rows of
    `data.examples(path)` (a text run's in its own kinds), with `source`'s trace scores under
    the plain names (`select_source`) and, for a run of the seed `group` (its runs' paths),
    the group's ``easiness`` after epoch 1, as the Examples page joins it; with `scores`
    False, the columns of examples.parquet and the kind alone (no derived file read).
    Read-only."""
    key = (tuple(int(i) for i in ids), source, None if group is None else tuple(group), scores)
    return _example_rows(str(path), key, run_stamp(path), derived_stamp(path))


@st.cache_data(show_spinner=False, max_entries=1024)
def _example_rows(path: str, key: tuple, stamp: float, derived: float) -> pd.DataFrame:
    ids, source, group, scores = key
    run = Run.open(path)
    rows = pushdown.example_rows(run, ids, scores=scores)
    if run.is_text:
        rows = text_kinds(rows)
    if not scores:
        return rows
    if source != "eval":
        rows = select_source(rows, source)
    if group is not None:
        rows = rows.merge(easiness(group, EASINESS_EPOCH), on="example_id", how="left")
        rows.index = pd.Index(ids, dtype="int64")
    return rows


def example_row(path: Path, example_id: int) -> pd.Series:
    """One example's row of `data.examples(path)`: read alone on a large run
    (`paging.is_large`), whose table the pages do not hold, without its scores; from the
    table otherwise."""
    if paging.is_large(path):
        return example_rows(path, [example_id], scores=False).iloc[0]
    return examples(path).iloc[int(example_id)]


def derived_rows(path: Path, name: str, ids: Sequence[int]) -> pd.DataFrame | None:
    """derived/NAME's rows of the examples `ids` (`example_row.derived_rows`), or None when
    its analysis has not run or its file does not match the manifest (as `data.derived`).
    Read-only."""
    stamps = (derived_stamp(path), derived_file_stamp(path, name))
    return _derived_rows(str(path), name, tuple(int(i) for i in ids), stamps)


@st.cache_data(show_spinner=False, max_entries=1024)
def _derived_rows(path: str, name: str, ids: tuple[int, ...], stamps: tuple) -> pd.DataFrame | None:
    run = Run.open(path)
    if not any(name in entry["files"] for entry in run.derived_manifest().values()):
        return None  # not computed, or a file of its step does not match its hash
    return pushdown.derived_rows(run, name, list(ids))


def derived_size(path: Path, name: str) -> int:
    """derived/NAME's rows, from its footer (0 when it is missing or unreadable)."""
    return _derived_size(str(path), name, derived_file_stamp(path, name))


@st.cache_data(show_spinner=False, max_entries=256)
def _derived_size(path: str, name: str, stamp: tuple) -> int:
    try:
        return pq.ParquetFile(Run.open(path).derived_path(name)).metadata.num_rows
    except (pa.ArrowException, OSError):
        return 0
