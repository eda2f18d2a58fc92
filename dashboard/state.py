"""The dashboard's shared state: what follows the user from page to page, kept in the URL.

Widgets that hold it live in the entrypoint (`memdash.dashboard.app`) and are bound to
the URL's query parameters (``bind="query-params"``), so the value survives a
page switch and a reload, and a link carries it. Pages read it through the
functions here, never through their own widgets.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.store.sources import SOURCE_SENTENCE, SOURCES, has_source, select_source
from memdash.dashboard import data
from memdash.dashboard.charts import point_example_id
from memdash.dashboard.data import paging
from memdash.dashboard.labels import md_text

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


# --- the current run and example -------------------------------------------------------------

RUN_KEY, EXAMPLE_KEY, RUN_B_KEY = "run", "example", "run_b"
UNKNOWN_KEY = "sidebar_unknown_run"
SIDEBAR_KEYS = (RUN_KEY, EXAMPLE_KEY, SOURCE_KEY)  # bound to the sidebar's widgets


def unbound_params() -> dict[str, str]:
    """The URL's parameters but the sidebar's, which `st.switch_page` may not set once the
    sidebar's widgets (bound to them) are drawn: they follow their widgets."""
    return {k: v for k, v in st.query_params.to_dict().items() if k not in SIDEBAR_KEYS}


def sidebar_bound() -> bool:
    """Whether this session has drawn the sidebar's widgets (bound to their parameters)."""
    return any(key in st.session_state for key in SIDEBAR_KEYS)


def forward_params(summaries: pd.DataFrame) -> dict[str, str]:
    """The URL's parameters for "/" forwarding to the Runs page, with the run it will show
    (the most informative one where the URL names none), so a link or a reload of the page
    forwarded to shows the same run. A name the URL gives is kept as given (the sidebar
    says when no run has it)."""
    params = st.query_params.to_dict()
    runs = readable_runs(summaries)
    if RUN_KEY not in params and not runs.empty:
        params[RUN_KEY] = str(runs["run"].iloc[0])
    return params


def readable_runs(summaries: pd.DataFrame) -> pd.DataFrame:
    """The runs a page can show: readable, one row per distinct name (as the Runs page lists
    them), the most informative first (the most analyses, then by name)."""
    ok = summaries[~summaries["status"].isin(data.UNREADABLE)]
    ok = ok.sort_values(["analyses", "run"], ascending=[False, True], kind="stable")
    return ok.drop_duplicates("run")


def run_control(summaries: pd.DataFrame) -> None:
    """The sidebar's run: a name among the discovered runs, kept in the URL (``?run=NAME``).

    A name from the URL is only ever looked up among the discovered runs (never joined into a
    path); an unknown one is said to be unknown, and the most informative run is shown.
    """
    runs = readable_runs(summaries)
    if runs.empty:
        return
    names = runs["run"].tolist()
    asked = st.query_params.get(RUN_KEY)
    if RUN_KEY not in st.session_state and asked not in names:
        # no (valid) run in the URL: start on the most informative run, written into the URL
        st.session_state[RUN_KEY] = names[0]
    if asked is not None and asked not in names:
        st.session_state[UNKNOWN_KEY] = asked  # said until the user picks a run
    st.sidebar.selectbox(
        "Run",
        names,
        index=None,
        key=RUN_KEY,
        bind="query-params",
        on_change=lambda: st.session_state.pop(UNKNOWN_KEY, None),
    )
    unknown = st.session_state.get(UNKNOWN_KEY)
    if unknown:
        st.sidebar.warning(
            f"No run named “{_shortened(unknown)}” under the roots; "
            f"showing {md_text(current_name())}."
        )


def _shortened(value: str, limit: int = 60) -> str:
    """A browser-given value to quote in a message: escaped, and cut at `limit` characters."""
    return md_text(value if len(value) <= limit else value[:limit] + "…")


def current_name() -> str | None:
    """The current run's name (None before the sidebar is drawn or with no readable run)."""
    return st.session_state.get(RUN_KEY)


def current_run(summaries: pd.DataFrame) -> Path | None:
    """The current run's path, looked up by name among the discovered runs (the most
    informative one for a name no run has; None when no run is readable)."""
    runs = readable_runs(summaries)
    if runs.empty:
        return None
    name = current_name()
    row = runs[runs["run"] == name]
    return Path((row if len(row) else runs.head(1))["path"].iloc[0])


def run_name(summaries: pd.DataFrame, path: Path) -> str:
    """The name under which the dashboard lists the run at `path`."""
    match = summaries[summaries["path"] == str(path)]
    return str(match["run"].iloc[0]) if len(match) else path.name


def example_control(summaries: pd.DataFrame | None = None) -> None:
    """The sidebar's current example id, kept in the URL (``?example=ID``); empty = none.

    A URL value that is not a plain id of at most nine digits (a 400-digit number overflows
    the widget, a negative or a word is no id) is dropped with a warning before the widget
    reads it. An id the current run (of `summaries`) does not have is said, as an unknown
    run is, and no example is open."""
    asked = st.query_params.get(EXAMPLE_KEY)
    if asked is not None and not (asked.isascii() and asked.isdigit() and len(asked) <= 9):
        _forget_url_value(EXAMPLE_KEY)
        st.sidebar.warning(f"“{_shortened(asked)}” in the URL is not an example id; none is open.")
    st.sidebar.number_input(
        "Example",
        min_value=0,
        value=None,
        step=1,
        key=EXAMPLE_KEY,
        bind="query-params",
        placeholder="none",
        help="The example every page opens in its detail: set by any list's open button, "
        "table row or clicked point, or typed here.",
    )
    value = st.session_state.get(EXAMPLE_KEY)
    path = current_run(summaries) if summaries is not None and value is not None else None
    if path is None:
        return
    try:  # from examples.parquet's footer: the sidebar reads no example table
        n = paging.n_examples(path)
    except (OSError, ValueError):  # a damaged run: its pages say which file
        return
    if not 0 <= int(value) < n:
        st.sidebar.warning(
            f"No example {int(value)} in run {md_text(current_name())} (its ids run from 0 to "
            f"{n - 1:,}); none is open."
        )


def _forget_url_value(key: str) -> None:
    """Drop `key` from the URL and from the values bound widgets are seeded with on this load.

    The second is Streamlit's own (private) copy of the URL at page load: Streamlit 1.67
    parses ``?example=`` followed by 400 digits as an infinite float and fails with an
    OverflowError inside the widget, before any check of ours could run, so the value must
    be gone before the widget is drawn.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    del st.query_params[key]
    ctx = get_script_run_ctx()
    if ctx is not None:
        with ctx.session_state.query_params() as params:
            params._initial_query_params.pop(key, None)


def current_example(n_examples: int) -> int | None:
    """The current example id, None when none is open or it is out of this run's range."""
    value = st.session_state.get(EXAMPLE_KEY)
    if value is None or not 0 <= int(value) < n_examples:
        return None
    return int(value)


def open_example(example_id: int) -> None:
    """Make `example_id` the current example (an on_click / on_select callback)."""
    st.session_state[EXAMPLE_KEY] = int(example_id)


def open_selected(key: str, ids: list[int]) -> None:
    """on_select callback of a table or chart under `key` whose rows (points) are `ids`:
    a single selected row or clicked point becomes the current example."""
    event = st.session_state.get(key)
    selection = getattr(event, "selection", None) or (event or {}).get("selection", {})
    rows = selection.get("rows") if hasattr(selection, "get") else None
    if rows:
        open_example(ids[rows[0]])
        return
    points = selection.get("points", []) if hasattr(selection, "get") else []
    if len(points) == 1 and point_example_id(points[0]) is not None:
        open_example(point_example_id(points[0]))
