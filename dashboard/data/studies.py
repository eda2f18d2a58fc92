"""Reads across the runs under the roots: the papers' findings, the runs of each role and
study, the seed groups, and what the runs of a group or study share (their embedding
epochs, how alike their layers are, each example's easiness, their completed epochs).

Each caches on the stamps of every run it reads (`memdash.dashboard.data.stamps`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.store import Run
from memdash.dashboard.data.roots import readable_paths
from memdash.dashboard.data.stamps import roots_stamp, run_stamp


def findings(roots: tuple[str, ...], source: str = "eval") -> list:
    """The papers' findings (`memdash.analysis.findings.Finding`) on the runs under the roots, the
    trace-based ones from `source`."""
    paths = readable_paths(roots)
    return _findings(tuple(paths), roots_stamp(paths), source)


@st.cache_data(show_spinner="checking the findings…", max_entries=8)
def _findings(paths: tuple[str, ...], stamp: float, source: str) -> list:
    from memdash.analysis.findings import check_all

    return check_all([Run.open(p) for p in paths], source=source)


def role_paths(roots: tuple[str, ...]) -> dict[str, Path]:
    """The run of each role of `memdash.analysis.findings.roles` (noise, clean, tied, ...)."""
    paths = readable_paths(roots)
    return _role_paths(tuple(paths), roots_stamp(paths))


@st.cache_data(show_spinner=False, max_entries=4)
def _role_paths(paths: tuple[str, ...], stamp: float) -> dict[str, Path]:
    from memdash.analysis.findings import roles

    return {role: run.path for role, run in roles([Run.open(p) for p in paths]).items()}


def seed_groups(roots: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The seed groups under the roots (runs that differ only in their seed,
    `memdash.analysis.store.groups`) by name, each as its runs' paths in seed order."""
    paths = readable_paths(roots)
    return _seed_groups(tuple(paths), roots_stamp(paths))


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
    return _study_paths(tuple(paths), roots_stamp(paths))


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
    indexes = [_embedding_index(p, run_stamp(Path(p))) for p in paths]
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
    stamps = tuple(run_stamp(Path(p)) for p in paths)
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
    return _easiness(paths, epoch, tuple(run_stamp(Path(p)) for p in paths))


@st.cache_data(show_spinner="reading the group's traces…", max_entries=32)
def _easiness(paths: tuple[str, ...], epoch: int, stamps: tuple) -> pd.DataFrame:
    from memdash.analysis.tables.studies import group_easiness

    return group_easiness([Run.open(p) for p in paths], epoch)


def epochs_completed(paths: tuple[str, ...]) -> list[int]:
    """Each run's completed epochs (run.json)."""
    return [Run.open(p).epochs_completed for p in paths]
