"""The process `memdash dashboard` runs: Streamlit's server, and beside it a preloading thread.

Streamlit runs the app's script only when a browser connects, so a fresh server spends the
browser's first second (loading Streamlit's own page) idle, and then the first script run
imports pandas, pyarrow, Plotly and the pages, and checks every run's files, while the
browser waits for a chart. Here a thread does that work as soon as the server listens:

1. it imports what the app's script and its default page (Runs) import, in the script's
   order;
2. it reads the run summaries of the roots (`data.run_summaries`: every run's run.json and
   the footers of its files), into the process-wide cache the pages read them from;
3. it maps the loaded modules to their files (`inspect`'s cache), which Streamlit's first
   element would otherwise do on the script's time;
4. it reads the training curves the Runs page plots first (the most informative run's, from
   the eval pass) into their cache, and draws them once, which imports the parts of Plotly
   a figure of lines needs (then maps those modules too). A trace that fails to read here
   is left to the Runs page, which says which file.

The script then finds the modules imported and the summaries cached, or, where it comes
first, waits for the module or the cache entry the thread is working on (Python's import
locks, Streamlit's per-entry cache locks) rather than doing the work twice. The thread
changes nothing a page shows: a failed preload is logged and the pages do the work
themselves. Measured by benchmarks/first_chart.py (issue #28).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# what the app's script imports, then its default page, in that order (dashboard/app.py)
PRELOADED = (
    "memdash.dashboard.data",
    "memdash.dashboard.state",
    "memdash.dashboard.app_pages.learn",
    "memdash.dashboard.app_pages.common",
    "memdash.dashboard.app_pages.runs",
)
STARTUP_S = 120.0  # the longest the thread waits for the server before it gives up

_log = logging.getLogger(__name__)


def server_started() -> bool | None:
    """True once Streamlit's runtime has started (the server listens), None once it is
    stopping or stopped, else False."""
    from streamlit import runtime
    from streamlit.runtime.runtime import RuntimeState

    if not runtime.exists():
        return False
    state = runtime.get_instance().state
    if state in (RuntimeState.STOPPING, RuntimeState.STOPPED):
        return None
    return state != RuntimeState.INITIAL


def preload(
    started: Callable[[], bool | None] = server_started,
    *,
    modules: Sequence[str] = PRELOADED,
    poll_s: float = 0.01,
    timeout_s: float = STARTUP_S,
) -> bool:
    """Once `started()` is true, import `modules`, read the run summaries of the roots
    (`data.run_roots()`) into their cache, map the loaded modules to their files, and read
    the Runs page's first curves (`first_chart`). True once the first three are done (the
    curves are read where they can be: a failure is logged, the page reports it); False if
    the server never started (within `timeout_s`, or stopped) or they failed (logged)."""
    deadline = time.monotonic() + timeout_s
    while not (state := started()):
        if state is None or time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    try:
        for name in modules:
            importlib.import_module(name)
        from memdash.dashboard import data

        summaries = data.run_summaries(data.run_roots())
        map_modules()
    except Exception:  # the pages do the same work and report what is wrong there
        _log.warning("memdash: preloading the first page failed", exc_info=True)
        return False
    try:
        first_chart(summaries)
    except (OSError, ValueError):  # a trace that fails to read: the Runs page says which
        _log.debug("memdash: preloading the Runs page's curves failed", exc_info=True)
    except Exception:
        _log.warning("memdash: preloading the Runs page's curves failed", exc_info=True)
    map_modules()  # and what drawing them imported
    return True


def map_modules() -> None:
    """Map the loaded modules to their files in `inspect`'s cache.

    Streamlit's first element in a process calls inspect.stack() (its check for a REPL),
    which maps every loaded module to its file: mapped here, that check takes 1 ms instead
    of 0.12 s of the first script run (measured, the first page loaded). Asked for code of a
    file no module has, inspect maps every module loaded since it last did."""
    inspect.getmodule(compile("", "<memdash preload>", "exec"))


def first_chart(summaries: pd.DataFrame) -> None:
    """Read and draw (into nothing) the curves the Runs page opens on: the most informative
    readable run's (the sidebar's first, `state.readable_runs`), from the eval pass.

    The cached read shows a spinner on a page; here, with no script run to show it in,
    Streamlit would warn of the missing run once (`quiet_preload` keeps that out of the
    server's output)."""
    from memdash.dashboard import charts, data, state

    runs = state.readable_runs(summaries)
    if runs.empty:
        return
    path = Path(runs["path"].iloc[0])
    if "eval" in data.trace_sources(path):
        charts.training_curves(data.curves(path, "eval"), metric="accuracy")


def skip_component_scan() -> None:
    """Keep Streamlit's runtime from scanning the installed distributions for custom
    components (its v2 components) when it starts: the dashboard uses none, and with
    memdash's extras installed (some 470 distributions) the scan delays the server's start by
    0.16-0.18 s (`scan_component_manifests()` timed alone in a fresh process). Nothing is
    changed where Streamlit has no such scan."""
    try:
        from streamlit.components.v2.component_manager import BidiComponentManager
    except ImportError:
        return
    if hasattr(BidiComponentManager, SCAN):
        setattr(BidiComponentManager, SCAN, _no_components)


# the method of Streamlit's component manager that its runtime calls to scan for components
SCAN = "discover_and_register_components"
THREAD = "memdash-preload"  # the preloading thread's name
# the logger of Streamlit's "missing ScriptRunContext" warning
CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class _OtherThreads(logging.Filter):
    """Lets through the records of every thread but the preloading one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD


def quiet_preload() -> None:
    """Drop Streamlit's "missing ScriptRunContext" warnings of the preloading thread: its
    cached reads ask for the script run of a spinner that no page shows (nothing is amiss).
    The same warning of any other thread still shows."""
    logger = logging.getLogger(CONTEXT_LOGGER)
    if not any(isinstance(f, _OtherThreads) for f in logger.filters):
        logger.addFilter(_OtherThreads())


def _no_components(self: object, **options: object) -> None:
    """The component scan, skipped (`skip_component_scan`)."""


def main(argv: Sequence[str] | None = None) -> None:
    """`streamlit ARGS...` (`argv`, default this process's arguments) with the preloading
    thread started beside the server."""
    from streamlit.web import cli

    skip_component_scan()
    quiet_preload()
    threading.Thread(target=preload, name=THREAD, daemon=True).start()
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="streamlit")
