"""`memdash dashboard`: the Streamlit app served over the runs under some folders."""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from pathlib import Path

import typer

from memdash.analysis.cli.basics import console, fail, sample_roots
from memdash.analysis.cli.specs import PORT, TEXT, Checked, option


def dashboard(
    roots: list[Path] = typer.Argument(
        None, help="Folders to search for runs (default sample_runs/)."
    ),
    port: int = option(8501, PORT, "Port to serve on."),
    host: str = option("127.0.0.1", TEXT, "Address to serve on."),
) -> None:
    """Serve the Streamlit dashboard over the runs under the roots."""
    if not roots:
        roots = sample_roots()
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        fail(f"no such run root(s): {', '.join(missing)}")
    # the app's file, found by its module name (the dashboard layer is above this one)
    app_file = Path(importlib.util.find_spec("memdash.dashboard.app").origin)
    command = streamlit_command(app_file, port=port, host=host, launcher=LAUNCHER)
    os.environ["MEMDASH_ROOTS"] = os.pathsep.join(str(r.resolve()) for r in roots)
    console.print(
        f"serving the dashboard on http://{host}:{port} over {', '.join(map(str, roots))}"
    )
    sys.stdout.flush()
    serve(command[3:])


# Streamlit's command line under memdash's launcher, which preloads the first page
# (memdash.dashboard.serve), named like the app: the dashboard layer is above this one
LAUNCHER = "memdash.dashboard"


def serve(arguments: list[str]) -> None:
    """Run `python -m memdash.dashboard ARGUMENTS` in this process, as its main module.

    In this process rather than a new one (an exec): the new interpreter would import numpy,
    typer and rich again, and the command line has already spent 0.2-0.5 s importing its
    commands (benchmarks/first_chart.py). Signals reach the server all the same."""
    sys.argv = [LAUNCHER, *arguments]
    runpy.run_module(LAUNCHER, run_name="__main__", alter_sys=True)


# `memdash dashboard` parsed alone (`cli.main`): the command `commands.app` also registers
app = typer.Typer(add_completion=False)
app.command(cls=Checked)(dashboard)


def streamlit_command(app: Path, *, port: int, host: str, launcher: str = "streamlit") -> list[str]:
    """The command that serves the Streamlit script `app` with `memdash dashboard`'s options
    (headless, no usage statistics, the viewer's toolbar): `python -m LAUNCHER run APP ...`,
    the launcher Streamlit's own command line or memdash's (`memdash.dashboard`, which
    preloads the first page beside the server)."""
    return [
        sys.executable,
        "-m",
        launcher,
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]
