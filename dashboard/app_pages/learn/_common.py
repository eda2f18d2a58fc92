"""What the Learn lessons share: the heading every lesson opens with, finding the sample
suite's runs (or saying which are missing), the training examples a lesson reads, and how a
lesson's charts are drawn."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from memdash.analysis.store.sources import SOURCE_SENTENCE
from memdash.dashboard import data, state


def intro(title: str, text: str, question: str, reference: str) -> None:
    """The lesson's title, its plain explanation, the question it answers and the paper."""
    st.title(title)
    st.markdown(text)
    st.info(f"**The question:** {question}")
    st.caption(f"Reference: {reference}")


def need_roles(*roles: str) -> dict[str, Path] | None:
    """The sample suite's runs by role (`data.role_paths`), or None after saying what is
    missing."""
    paths = data.role_paths(data.run_roots())
    return paths if _need(paths, *roles) else None


def need_study(*roles: str) -> dict | None:
    """The study roles' runs (`data.study_paths`), or None after saying what is missing."""
    paths = data.study_paths(data.run_roots())
    return paths if _need(paths, *roles) else None


def _need(paths: dict, *roles: str) -> bool:
    """Whether `paths` holds every one of `roles`; if not, a warning names the missing ones."""
    missing = [r for r in roles if r not in paths]
    if missing:
        st.warning(
            "This lesson uses the sample suite (`make sample-runs`); the runs under "
            f"{', '.join(data.run_roots())} lack: {', '.join(missing)}."
        )
    return not missing


def train_table(path: Path, *, trace: bool = True) -> pd.DataFrame:
    """The clean and flipped training examples; with `trace`, their trace scores from the
    chosen trace, after the sentence that says what the two traces are."""
    table = data.examples(path)
    if trace:
        st.markdown(SOURCE_SENTENCE)
        table = state.with_source(table)
    return table[table["kind"].isin(["clean", "flipped"])]


def estimated_table(path: Path, column: str) -> pd.DataFrame | None:
    """The clean and flipped training examples when the held-out estimate has written
    `column` into them, else None after saying how to run it."""
    table = train_table(path, trace=False)
    if column not in table.columns:
        st.warning("Run `memdash estimate --like` on the 20% noise run first.")
        return None
    return table


def kind_choice(question: str, key: str) -> str:
    """A horizontal radio between the flipped and the clean training examples."""
    return st.radio(question, ["flipped", "clean"], horizontal=True, key=key)


def show(figure: go.Figure, key: str, container: DeltaGenerator | None = None) -> None:
    """Draw `figure` across the width of `container` (the page by default)."""
    (st if container is None else container).plotly_chart(figure, width="stretch", key=key)
