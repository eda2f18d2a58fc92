"""One run's reads: its accuracy curves and trace, its examples and inputs, its derived
tables and manifest, its layers, embeddings and layer gradients, an estimate's models; for
a text run its tokenizer, per-token losses and nearest sequences in an embedding.

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
from memdash.analysis.tables.inputs import PathRows, ThumbnailRows, drawable_inputs
from memdash.dashboard.data import paging
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
    run = Run.open(path)
    table = example_table(run)
    return text_kinds(table) if run.is_text else table


TEXT_KINDS = ("plain", "duplicate", "canary", "test", "reference")
NO_LABELS = ("label", "true_label", "is_noisy")  # a language model has no labels to flip


def text_kinds(table: pd.DataFrame) -> pd.DataFrame:
    """A text run's example table in its own words: kind ``plain`` (a training sequence
    seen once per epoch), ``duplicate`` (one of the sequences presented several times per
    epoch, ``duplicates`` copies), ``canary`` (``canary_repeats`` times), ``test`` or
    ``reference``, and without the label columns (all 0: there is no label to flip)."""
    duplicate = (table["split"] == "train") & (table["corruption"] == "duplicate")
    kind = np.where(
        duplicate, "duplicate", np.where(table["kind"] == "clean", "plain", table["kind"])
    )
    out = table.drop(columns=[c for c in NO_LABELS if c in table.columns])
    out["kind"] = kind
    return out


def is_text(path: Path) -> bool:
    """Whether the run is a language model's (its examples are sequences of tokens)."""
    return _is_text(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _is_text(path: str, stamp: float) -> bool:
    return Run.open(path).is_text


def token_loss_epochs(path: Path) -> list[int]:
    """A text run's epochs with per-token losses (tokens/epoch_EEE.npy)."""
    return _token_loss_epochs(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _token_loss_epochs(path: str, stamp: float) -> list[int]:
    return Run.open(path).token_loss_epochs()


def vocab_size(path: Path) -> int:
    """A text run's vocabulary (BOS counted): its uniform guess costs ln(V) nats a token."""
    return int(Run.open(path).meta["text"]["vocab_size"])


def sequence_tokens(path: Path, example_id: int, epoch: int | None) -> tuple[list[str], np.ndarray]:
    """One sequence of a text run: each token's display text (the tokenizer's
    ``token_texts``) and its loss at `epoch` (float32 nats, one per token; NaN where the
    run stored none, and everywhere for `epoch` None)."""
    at = None if epoch is None else int(epoch)
    return _sequence_tokens(str(path), int(example_id), at, run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=1024)
def _sequence_tokens(
    path: str, example_id: int, epoch: int | None, stamp: float
) -> tuple[list[str], np.ndarray]:
    row = np.asarray(_inputs(path, stamp)[example_id])
    ids = row[row >= 0]
    if epoch is None:
        losses = np.full(len(ids), np.nan, np.float32)
    else:
        losses = np.asarray(_token_losses(path, epoch, stamp)[example_id][: len(ids)], np.float32)
    return _tokenizer(path, stamp).token_texts([int(i) for i in ids]), losses


@st.cache_resource(show_spinner=False, max_entries=16)
def _tokenizer(path: str, stamp: float):
    from memdash.analysis.record.text.training import run_tokenizer

    return run_tokenizer(Run.open(path))


@st.cache_resource(show_spinner=False, max_entries=32)
def _token_losses(path: str, epoch: int, stamp: float) -> np.ndarray:
    return Run.open(path).token_losses(epoch, mmap=True)


def nearest_sequences(path: Path, example_id: int, layer: str, epoch: int, k: int) -> pd.DataFrame:
    """The `k` training examples nearest to one example in a recorded embedding (Euclidean
    distance between the layer's outputs at `epoch`; the example itself left out): columns
    ``neighbor_id``, ``distance``, ``rank`` (1 = nearest)."""
    index, train_ids = _train_index(str(path), layer, int(epoch), run_stamp(path))
    query = np.asarray(Run.open(path).embedding(epoch, layer)[[example_id]], np.float32)
    dist, ind = index.kneighbors(query, min(k + 1, len(train_ids)))  # one more: itself
    out = pd.DataFrame({"neighbor_id": train_ids[ind[0]], "distance": dist[0]})
    out = out[out["neighbor_id"] != example_id].head(k)
    out["rank"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


@st.cache_resource(show_spinner="indexing the embedding…", max_entries=8)
def _train_index(path: str, layer: str, epoch: int, stamp: float):
    from memdash.analysis.measures.neighbors import FaissKNN

    run = Run.open(path)
    train_ids = np.flatnonzero(run.examples(["split"])["split"].to_numpy() == "train")
    points = np.asarray(run.embedding(epoch, layer)[train_ids], np.float32)
    return FaissKNN(metric="l2").fit(points), train_ids


def inputs(path: Path) -> np.ndarray | ThumbnailRows | PathRows:
    """The run's inputs to draw, row i = example i, whichever form it stores: inputs.npy
    memory-mapped, thumbnails as floats, a path run's source images read when asked (a
    one-line note where one is missing; `memdash.analysis.tables.inputs`)."""
    return _inputs(str(path), run_stamp(path))


@st.cache_resource(show_spinner=False, max_entries=16)
def _inputs(path: str, stamp: float) -> np.ndarray | ThumbnailRows | PathRows:
    return drawable_inputs(Run.open(path))


TRAJECTORY_COLUMNS = ("prob_label", "loss", "correct")
# a text run's trace: ``correct`` is extractable, ``loss`` the mean token loss (nats)
TEXT_TRAJECTORY_COLUMNS = (*TRAJECTORY_COLUMNS, "log_perplexity", "token_accuracy")


def trajectory(
    path: Path, example_id: int, source: str = "eval", columns: tuple[str, ...] = TRAJECTORY_COLUMNS
) -> pd.DataFrame:
    """One example's trace from `source`: ``epoch`` and `columns` (epoch 0 included for the
    eval pass; the minibatch trace starts at epoch 1). A large run's is read by predicate
    pushdown (`paging.trajectory`), a small one's from every example's, read once and kept."""
    if paging.is_large(path):
        return paging.trajectory(path, example_id, source, columns)
    epochs, grids = _trace_grids(str(path), run_stamp(path), source, columns)
    return pd.DataFrame({"epoch": epochs} | {c: g[:, example_id] for c, g in grids.items()})


@st.cache_resource(show_spinner="reading the trace…", max_entries=8)
def _trace_grids(
    path: str, stamp: float, source: str, columns: tuple[str, ...] = TRAJECTORY_COLUMNS
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return Run.open(path).trace_grids(source, columns, first_epoch=0)


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


def embedding_layers(path: Path) -> dict[int, list[str]]:
    """The recorded embeddings: epoch -> its layers, in forward order."""
    return _embedding_layers(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _embedding_layers(path: str, stamp: float) -> dict[int, list[str]]:
    run = Run.open(path)
    return {epoch: run.in_layer_order(layers) for epoch, layers in run.embedding_index().items()}


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
