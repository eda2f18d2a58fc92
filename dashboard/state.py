"""The dashboard's shared state: what follows the user from page to page, kept in the URL.

Widgets that hold it live in the entrypoint (`memdash.dashboard.app`) and are bound to
the URL's query parameters (``bind="query-params"``), so the value survives a
page switch and a reload, and a link carries it. Pages read it through the
functions here, never through their own widgets.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.analysis.sources import SOURCE_SENTENCE, SOURCES, has_source, select_source

SOURCE_KEY = "source"


def source_control() -> None:
    """The sidebar's trace control, shared by every page and kept in the URL (``?source=``)."""
    st.sidebar.radio(
        "Trace of the trace scores",
        list(SOURCES),  # the URL holds the option itself: ?source=train
        captions=list(SOURCES.values()),
        key=SOURCE_KEY,
        bind="query-params",
        help=SOURCE_SENTENCE,
    )


def trace_source() -> str:
    """The trace the user chose (``eval`` when the control has not been drawn)."""
    chosen = st.session_state.get(SOURCE_KEY, "eval")
    return chosen if chosen in SOURCES else "eval"


def source_used(available: list[str] | set[str]) -> str:
    """The chosen trace if `available` holds it, else the eval pass."""
    chosen = trace_source()
    return chosen if chosen in available else "eval"


def source_note(used: str) -> str:
    """One sentence naming the trace a page's numbers come from (and a fallback)."""
    chosen = trace_source()
    note = f"Trace scores from the {SOURCES[used]}"
    if used != chosen:
        note += f" (this run recorded no {SOURCES[chosen]})"
    return note + ". Switch the trace in the sidebar."


def with_source(*tables: pd.DataFrame) -> pd.DataFrame | tuple[pd.DataFrame, ...]:
    """Example tables with their trace-score columns from the chosen trace (one trace for
    all of them: the eval pass unless every table holds the chosen one), and a caption saying
    which. Tables without trace scores pass through unchanged."""
    scored = [t for t in tables if has_source(t, "eval")]
    if not scored:
        return tables[0] if len(tables) == 1 else tables
    used = source_used(
        {"eval"} | ({"train"} if all(has_source(t, "train") for t in scored) else set())
    )
    st.caption(source_note(used))
    out = tuple(select_source(t, used) if has_source(t, "eval") else t for t in tables)
    return out[0] if len(out) == 1 else out
