"""One run's reads: its accuracy curves and trace, its examples and inputs, its derived
tables and manifest, its layers, embeddings and layer gradients, an estimate's models.

Each takes the run's path (from `memdash.dashboard.data.roots.run_path`) and caches on
the run's stamps (`memdash.dashboard.data.stamps`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.store import Run
from memdash.analysis.tables.curves import run_accuracy_curves
from memdash.analysis.tables.examples import example_table
from memdash.dashboard.data.stamps import derived_file_stamp, derived_stamp, run_stamp


def curves(path: Path, source: str) -> pd.DataFrame:
    return _curves(str(path), source, run_stamp(path))


@st.cache_data(show_spinner="reading the trace…", max_entries=64)
def _curves(path: str, source: str, stamp: float) -> pd.DataFrame:
    run = Run.open(path)
    out = run_accuracy_curves(run, source)  # part by part: bounded memory in the server
    out.insert(0, "run", run.name)
    return out


def trace_sources(path: Path) -> list[str]:
    return _sources(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _sources(path: str, stamp: float) -> list[str]:
    return Run.open(path).trace_sources()


def examples(path: Path) -> pd.DataFrame:
    """Every example with its kind and all its derived scores (`memdash.analysis.tables.examples`).

    Shared between reruns without a copy (100,000 rows copy slowly): read-only.
    """
    return _examples(str(path), run_stamp(path), derived_stamp(path))


@st.cache_resource(show_spinner="reading the examples…", max_entries=16)
def _examples(path: str, stamp: float, derived: float) -> pd.DataFrame:
    return example_table(Run.open(path))


def inputs(path: Path) -> np.ndarray:
    """The run's inputs, memory-mapped (row i = example i)."""
    return _inputs(str(path), run_stamp(path))


@st.cache_resource(show_spinner=False, max_entries=16)
def _inputs(path: str, stamp: float) -> np.ndarray:
    return Run.open(path).inputs(mmap=True)


TRAJECTORY_COLUMNS = ("prob_label", "loss", "correct")


def trajectory(path: Path, example_id: int, source: str = "eval") -> pd.DataFrame:
    """One example's trace from `source`: ``epoch`` and TRAJECTORY_COLUMNS (epoch 0 included
    for the eval pass; the minibatch trace starts at epoch 1)."""
    epochs, grids = _trace_grids(str(path), run_stamp(path), source)
    return pd.DataFrame({"epoch": epochs} | {c: g[:, example_id] for c, g in grids.items()})


@st.cache_resource(show_spinner="reading the trace…", max_entries=8)
def _trace_grids(path: str, stamp: float, source: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return Run.open(path).trace_grids(source, TRAJECTORY_COLUMNS, first_epoch=0)


def derived(path: Path, name: str) -> pd.DataFrame | None:
    """A derived table, or None when its analysis has not run, or its file no longer matches
    the SHA-256 and size the manifest recorded (truncated, overwritten): the page then offers
    to compute it again. Shared without a copy (neighbors.parquet of 100,000 examples has 3
    million rows): read-only. Cached on the manifest's and the file's own stamps, so a file
    changed later is checked again; each version of a file is hashed once (the store's
    `Run.derived_manifest`)."""
    return _derived(str(path), name, derived_stamp(path), derived_file_stamp(path, name))


@st.cache_resource(show_spinner=False, max_entries=64)
def _derived(path: str, name: str, stamp: float, file_stamp: tuple) -> pd.DataFrame | None:
    run = Run.open(path)
    if not any(name in entry["files"] for entry in run.derived_manifest().values()):
        return None  # not computed, or a file of its step does not match its hash
    return run.read_derived(name)


def manifest(path: Path) -> dict:
    """derived/manifest.json: per analysis step its key, parameters and files; only the
    steps whose files all match their recorded SHA-256 and size (the others count as not
    computed)."""
    return Run.open(path).derived_manifest()


def layer_order(path: Path) -> list[str]:
    """The run's layers in forward order."""
    return list(Run.open(path).layers)


def by_layer(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """A frame's rows in the forward order of their ``layer`` (stable within a layer)."""
    order = {name: i for i, name in enumerate(layer_order(path))}
    rank = frame["layer"].map(order).fillna(len(order))
    return frame.iloc[np.argsort(rank.to_numpy(), kind="stable")]


def has_embeddings(path: Path) -> bool:
    """Whether the run recorded any embeddings."""
    return _has_embeddings(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _has_embeddings(path: str, stamp: float) -> bool:
    return bool(Run.open(path).embedding_index())


def run_meta(path: Path) -> dict:
    """run.json."""
    return dict(Run.open(path).meta)


def layer_grads(path: Path) -> pd.DataFrame:
    return _layer_grads(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=16)
def _layer_grads(path: str, stamp: float) -> pd.DataFrame:
    return Run.open(path).layer_grads()


def confidences(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An estimate's models (first subset ratio): each one's confidence phi of each example
    (float32, K x N) and whether it trained on it (bool, K x N)."""
    return _confidences(str(path), derived_stamp(path))


@st.cache_resource(show_spinner="reading the estimate's models…", max_entries=4)
def _confidences(path: str, stamp: float) -> tuple[np.ndarray, np.ndarray]:
    from memdash.analysis.ensemble.estimate import load_batches, load_confidences, stored_spec

    run = Run.open(path)
    spec = stored_spec(run)
    return load_confidences(run, spec, 0), load_batches(run, spec, 0)[0]


def by_kind_per_epoch(path: Path, column: str) -> pd.DataFrame:
    """An optional eval-trace column (loss sensitivity, critical) averaged per epoch and
    kind of example: columns ``epoch``, ``group`` (the kind), ``value``, ``examples``."""
    return _by_kind_per_epoch(str(path), column, run_stamp(path))


@st.cache_data(show_spinner="reading the trace…", max_entries=64)
def _by_kind_per_epoch(path: str, column: str, stamp: float) -> pd.DataFrame:
    from memdash.analysis.tables.studies import per_epoch_by

    table = examples(Path(path))
    return per_epoch_by(Run.open(path), column, table.set_index("example_id")["kind"])


def trace_columns(path: Path) -> list[str]:
    """The eval trace's columns (optional ones included)."""
    return _trace_columns(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _trace_columns(path: str, stamp: float) -> list[str]:
    return Run.open(path).trace_columns()


def group_labels(path: Path) -> str:
    """What a run trained on (`memdash.analysis.store.groups.training_labels`): ``true labels``,
    ``random labels``, or e.g. ``20% symmetric labels``."""
    from memdash.analysis.store.groups import training_labels

    return training_labels(Run.open(path).config)


PHOTO_DATASETS = ("folder", "hf")  # images drawn as they are (not ink on paper, as digits are)


def photo_inputs(path: Path) -> bool:
    """Whether a run's inputs are photographs from the user's images (drawn as they are)
    rather than ink-on-paper digits or signals (drawn dark on white)."""
    return _photo_inputs(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _photo_inputs(path: str, stamp: float) -> bool:
    return Run.open(path).config.get("data", {}).get("dataset") in PHOTO_DATASETS
