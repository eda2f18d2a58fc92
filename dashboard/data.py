"""The dashboard's data layer: the only place with st.cache_data / st.cache_resource.

Pages ask for runs by their index in the list of discovered runs; a name that
comes from the browser is looked up in that list and never joined into a path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.store import Run, RunFormatError, discover_runs
from memdash.analysis.tables.curves import run_accuracy_curves
from memdash.analysis.tables.examples import example_table

ROOTS_ENV = "MEMDASH_ROOTS"
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "sample_runs"


def run_roots() -> tuple[str, ...]:
    """The run roots: $MEMDASH_ROOTS (set by `memdash dashboard`), else sample_runs/."""
    env = os.environ.get(ROOTS_ENV)
    if env:
        return tuple(str(Path(p).resolve()) for p in env.split(os.pathsep) if p)
    return (str(DEFAULT_ROOT),)


def _stamp(path: Path) -> float:
    """Changes whenever the run commits an epoch (run.json is rewritten last)."""
    try:
        return (path / "run.json").stat().st_mtime
    except OSError:
        return 0.0


@st.cache_data(ttl=10, show_spinner=False)
def discovered(roots: tuple[str, ...]) -> list[str]:
    return [str(p) for p in discover_runs(roots)]


def run_summaries(roots: tuple[str, ...]) -> pd.DataFrame:
    """One row per discovered run; a broken run gets status ``error`` and its message."""
    rows = [_summary(path, _stamp(Path(path))) for path in discovered(roots)]
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    table["run"] = unique_names(table["run"].tolist(), table["path"].tolist())
    return table


def unique_names(names: list[str], paths: list[str]) -> list[str]:
    """Run names as the dashboard lists them: a name that several runs share gets its folder,
    or, when their folders are named alike too (``seed_0`` of two seed groups), the folder
    above (``seed_0 (digits_true)``), and, if still shared, a number: each name (in a URL
    too) means one run."""
    folders: dict[str, list[Path]] = {}
    for name, path in zip(names, paths, strict=True):
        folders.setdefault(name, []).append(Path(path))
    out = []
    for name, path in zip(names, paths, strict=True):
        shared = folders[name]
        if len(shared) == 1:
            out.append(name)
            continue
        alike = len({p.name for p in shared}) < len(shared)
        out.append(f"{name} ({Path(path).parent.name if alike else Path(path).name})")
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            out[i] = f"{name} #{seen[name]}"
    return out


SUMMARY_COLUMNS = [
    "run",
    "status",
    "dataset",
    "model",
    "corruption",
    "noise",
    "epochs",
    "train acc",
    "clean acc",
    "flipped acc",
    "test acc",
    "analyses",
    "error",
    "path",
]


@st.cache_data(show_spinner=False, max_entries=256)
def _summary(path: str, stamp: float) -> dict:
    base = {c: None for c in SUMMARY_COLUMNS} | {"run": Path(path).name, "path": path}
    try:
        run = Run.open(path)
    except RunFormatError as err:
        return base | {"status": "error", "error": str(err)}
    try:
        run.check_parts()
    except RunFormatError as err:
        return base | {"run": run.name, "status": "error", "error": str(err)}
    cfg = run.config
    data, model = cfg.get("data", {}), cfg.get("model", {})
    last = run.meta.get("last_epoch", {})
    planned = run.meta.get("epochs_planned")
    return base | {
        "run": run.name,
        "status": run.status,
        "dataset": data.get("dataset", "own loop"),
        "model": model.get("name", ""),
        "corruption": data.get("corruption") if data.get("noise") else "none",
        "noise": data.get("noise", 0.0),
        "epochs": f"{run.epochs_completed}/{planned}" if planned else str(run.epochs_completed),
        "train acc": last.get("train_acc"),
        "clean acc": last.get("clean_acc"),
        "flipped acc": last.get("noisy_acc"),
        "test acc": last.get("test_acc"),
        # how much there is to explore: derived steps, plus one for recorded embeddings
        "analyses": len(run.derived_manifest()) + bool(run.embedding_index()),
    }


def run_path(roots: tuple[str, ...], index: int) -> Path:
    """The path of the index-th discovered run (the only way a page names a run)."""
    paths = discovered(roots)
    if not 0 <= index < len(paths):
        raise IndexError(f"no run number {index}; {len(paths)} runs found")
    return Path(paths[index])


def curves(path: Path, source: str) -> pd.DataFrame:
    return _curves(str(path), source, _stamp(path))


@st.cache_data(show_spinner="reading the trace…", max_entries=64)
def _curves(path: str, source: str, stamp: float) -> pd.DataFrame:
    run = Run.open(path)
    out = run_accuracy_curves(run, source)  # part by part: bounded memory in the server
    out.insert(0, "run", run.name)
    return out


def trace_sources(path: Path) -> list[str]:
    return _sources(str(path), _stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _sources(path: str, stamp: float) -> list[str]:
    return Run.open(path).trace_sources()


def _derived_stamp(path: Path) -> float:
    """Changes whenever an analysis step records a result (the manifest is written last)."""
    try:
        return (path / "derived" / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0


def examples(path: Path) -> pd.DataFrame:
    """Every example with its kind and all its derived scores (`memdash.analysis.tables.examples`).

    Shared between reruns without a copy (100,000 rows copy slowly): read-only.
    """
    return _examples(str(path), _stamp(path), _derived_stamp(path))


@st.cache_resource(show_spinner="reading the examples…", max_entries=16)
def _examples(path: str, stamp: float, derived: float) -> pd.DataFrame:
    return example_table(Run.open(path))


def inputs(path: Path) -> np.ndarray:
    """The run's inputs, memory-mapped (row i = example i)."""
    return _inputs(str(path), _stamp(path))


@st.cache_resource(show_spinner=False, max_entries=16)
def _inputs(path: str, stamp: float) -> np.ndarray:
    return Run.open(path).inputs(mmap=True)


TRAJECTORY_COLUMNS = ("prob_label", "loss", "correct")


def trajectory(path: Path, example_id: int, source: str = "eval") -> pd.DataFrame:
    """One example's trace from `source`: ``epoch`` and TRAJECTORY_COLUMNS (epoch 0 included
    for the eval pass; the minibatch trace starts at epoch 1)."""
    epochs, grids = _trace_grids(str(path), _stamp(path), source)
    return pd.DataFrame({"epoch": epochs} | {c: g[:, example_id] for c, g in grids.items()})


@st.cache_resource(show_spinner="reading the trace…", max_entries=8)
def _trace_grids(path: str, stamp: float, source: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return Run.open(path).trace_grids(source, TRAJECTORY_COLUMNS, first_epoch=0)


def derived(path: Path, name: str) -> pd.DataFrame | None:
    """A derived table, or None when its analysis has not run. Shared without a copy
    (neighbors.parquet of 100,000 examples has 3 million rows): read-only."""
    return _derived(str(path), name, _derived_stamp(path))


@st.cache_resource(show_spinner=False, max_entries=64)
def _derived(path: str, name: str, stamp: float) -> pd.DataFrame | None:
    run = Run.open(path)
    if not run.derived_path(name).is_file():
        return None
    return run.read_derived(name)


def manifest(path: Path) -> dict:
    """derived/manifest.json: per analysis step its key, parameters and files."""
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
    return _has_embeddings(str(path), _stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _has_embeddings(path: str, stamp: float) -> bool:
    return bool(Run.open(path).embedding_index())


def run_meta(path: Path) -> dict:
    """run.json."""
    return dict(Run.open(path).meta)


def layer_grads(path: Path) -> pd.DataFrame:
    return _layer_grads(str(path), _stamp(path))


@st.cache_data(show_spinner=False, max_entries=16)
def _layer_grads(path: str, stamp: float) -> pd.DataFrame:
    return Run.open(path).layer_grads()


def _roots_stamp(paths: list[str]) -> float:
    return max((_stamp(Path(p)) + _derived_stamp(Path(p)) for p in paths), default=0.0)


# runs listed on the Runs page but shown by no other page: damaged, or nothing recorded yet
UNREADABLE = ("error", "created")


def readable_paths(roots: tuple[str, ...]) -> list[str]:
    """The discovered runs that read (the summaries' quick check): a damaged one is listed
    on the Runs page with status error, never analyzed."""
    summaries = run_summaries(roots)
    return summaries.loc[~summaries["status"].isin(UNREADABLE), "path"].tolist()


def findings(roots: tuple[str, ...], source: str = "eval") -> list:
    """The papers' findings (`memdash.analysis.findings.Finding`) on the runs under the roots, the
    trace-based ones from `source`."""
    paths = readable_paths(roots)
    return _findings(tuple(paths), _roots_stamp(paths), source)


@st.cache_data(show_spinner="checking the findings…", max_entries=8)
def _findings(paths: tuple[str, ...], stamp: float, source: str) -> list:
    from memdash.analysis.findings import check_all

    return check_all([Run.open(p) for p in paths], source=source)


def confidences(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An estimate's models (first subset ratio): each one's confidence phi of each example
    (float32, K x N) and whether it trained on it (bool, K x N)."""
    return _confidences(str(path), _derived_stamp(path))


@st.cache_resource(show_spinner="reading the estimate's models…", max_entries=4)
def _confidences(path: str, stamp: float) -> tuple[np.ndarray, np.ndarray]:
    from memdash.analysis.ensemble.estimate import load_batches, load_confidences, stored_spec

    run = Run.open(path)
    spec = stored_spec(run)
    return load_confidences(run, spec, 0), load_batches(run, spec, 0)[0]


def role_paths(roots: tuple[str, ...]) -> dict[str, Path]:
    """The run of each role of `memdash.analysis.findings.roles` (noise, clean, tied, ...)."""
    paths = readable_paths(roots)
    return _role_paths(tuple(paths), _roots_stamp(paths))


@st.cache_data(show_spinner=False, max_entries=4)
def _role_paths(paths: tuple[str, ...], stamp: float) -> dict[str, Path]:
    from memdash.analysis.findings import roles

    return {role: run.path for role, run in roles([Run.open(p) for p in paths]).items()}


def compute(path: Path, steps: list[str], progress) -> None:
    """Run analysis or localization steps on a run (the pipeline of `memdash analyze`)."""
    from memdash.analysis.steps.pipeline import LOCALIZE_STEPS, STEPS, analyze

    registry = LOCALIZE_STEPS if set(steps) <= set(LOCALIZE_STEPS) else STEPS
    analyze(path, only=steps, steps=registry, progress=progress)  # caches key on the manifest


# ------------------------------------------------------- studies of several runs


def seed_groups(roots: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The seed groups under the roots (runs that differ only in their seed,
    `memdash.analysis.store.groups`) by name, each as its runs' paths in seed order."""
    paths = readable_paths(roots)
    return _seed_groups(tuple(paths), _roots_stamp(paths))


@st.cache_data(show_spinner=False, max_entries=4)
def _seed_groups(paths: tuple[str, ...], stamp: float) -> dict[str, tuple[str, ...]]:
    from memdash.analysis.store.groups import group_names
    from memdash.analysis.store.groups import seed_groups as find_groups

    named = group_names(find_groups([Run.open(p) for p in paths]))
    return {name: tuple(str(run.path) for run in runs) for name, runs in named.items()}


def group_of(roots: tuple[str, ...], path: Path) -> tuple[str, tuple[str, ...]] | None:
    """The name and paths of the seed group a run belongs to (None: it is in none)."""
    for name, paths in seed_groups(roots).items():
        if str(path) in paths:
            return name, paths
    return None


def study_paths(roots: tuple[str, ...]) -> dict[str, str | tuple[str, ...]]:
    """The runs of each study role of `memdash.analysis.findings.study_roles`: the
    ``true_group`` and ``random_group`` (paths), ``pretrained`` and ``scratch`` (a path)."""
    paths = readable_paths(roots)
    return _study_paths(tuple(paths), _roots_stamp(paths))


@st.cache_data(show_spinner=False, max_entries=4)
def _study_paths(paths: tuple[str, ...], stamp: float) -> dict[str, str | tuple[str, ...]]:
    from memdash.analysis.findings import study_roles

    found = study_roles([Run.open(p) for p in paths])
    return {
        role: tuple(str(r.path) for r in value) if isinstance(value, list) else str(value.path)
        for role, value in found.items()
    }


def embedding_epochs(paths: tuple[str, ...]) -> list[int]:
    """The embedding epochs every one of the runs recorded, in order."""
    indexes = [_embedding_index(p, _stamp(Path(p))) for p in paths]
    return sorted(set.intersection(*(set(index) for index in indexes))) if indexes else []


@st.cache_data(show_spinner=False, max_entries=256)
def _embedding_index(path: str, stamp: float) -> dict[int, list[str]]:
    return Run.open(path).embedding_index()


def similarity(
    paths: tuple[str, ...], epoch: int, measure: str, *, symmetric: bool = False
) -> pd.DataFrame:
    """How alike the runs' layers are at one embedding epoch (`measures.similarity`),
    averaged over every pair of the runs: columns ``layer_a`` (of the first run of a pair),
    ``layer_b`` (of the second), ``value`` and ``pairs``. With `symmetric` (the seeds of a
    group, where no run comes first) each pair counts both ways round. Raises ValueError
    when the runs hold different examples."""
    stamps = tuple(_stamp(Path(p)) for p in paths)
    return _similarity(paths, epoch, measure, symmetric, stamps)


@st.cache_data(show_spinner="comparing the runs' representations…", max_entries=32)
def _similarity(
    paths: tuple[str, ...], epoch: int, measure: str, symmetric: bool, stamps: tuple
) -> pd.DataFrame:
    from memdash.analysis.tables.similarity import run_similarity

    table = run_similarity([Run.open(p) for p in paths], epochs=[epoch], measures=(measure,))
    if symmetric:
        swapped = table.rename(columns={"layer_a": "layer_b", "layer_b": "layer_a"})
        table = pd.concat([table, swapped])
    return table.groupby(["layer_a", "layer_b"], as_index=False, sort=False).agg(
        value=("value", "mean"), pairs=("value", "size")
    )


def easiness(paths: tuple[str, ...], epoch: int) -> pd.DataFrame:
    """Arpit et al.'s easiness of each training example over a seed group's runs at one
    epoch: columns ``example_id`` and ``easiness``."""
    return _easiness(paths, epoch, tuple(_stamp(Path(p)) for p in paths))


@st.cache_data(show_spinner="reading the group's traces…", max_entries=32)
def _easiness(paths: tuple[str, ...], epoch: int, stamps: tuple) -> pd.DataFrame:
    from memdash.analysis.tables.studies import group_easiness

    return group_easiness([Run.open(p) for p in paths], epoch)


def by_kind_per_epoch(path: Path, column: str) -> pd.DataFrame:
    """An optional eval-trace column (loss sensitivity, critical) averaged per epoch and
    kind of example: columns ``epoch``, ``group`` (the kind), ``value``, ``examples``."""
    return _by_kind_per_epoch(str(path), column, _stamp(path))


@st.cache_data(show_spinner="reading the trace…", max_entries=64)
def _by_kind_per_epoch(path: str, column: str, stamp: float) -> pd.DataFrame:
    from memdash.analysis.tables.studies import per_epoch_by

    table = examples(Path(path))
    return per_epoch_by(Run.open(path), column, table.set_index("example_id")["kind"])


def trace_columns(path: Path) -> list[str]:
    """The eval trace's columns (optional ones included)."""
    return _trace_columns(str(path), _stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _trace_columns(path: str, stamp: float) -> list[str]:
    return Run.open(path).trace_columns()


def group_labels(path: Path) -> str:
    """What a run trained on (`memdash.analysis.store.groups.training_labels`): ``true labels``,
    ``random labels``, or e.g. ``20% symmetric labels``."""
    from memdash.analysis.store.groups import training_labels

    return training_labels(Run.open(path).config)


def epochs_completed(paths: tuple[str, ...]) -> list[int]:
    """Each run's completed epochs (run.json)."""
    return [Run.open(p).epochs_completed for p in paths]


PHOTO_DATASETS = ("folder", "hf")  # images drawn as they are (not ink on paper, as digits are)


def photo_inputs(path: Path) -> bool:
    """Whether a run's inputs are photographs from the user's images (drawn as they are)
    rather than ink-on-paper digits or signals (drawn dark on white)."""
    return _photo_inputs(str(path), _stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _photo_inputs(path: str, stamp: float) -> bool:
    return Run.open(path).config.get("data", {}).get("dataset") in PHOTO_DATASETS
