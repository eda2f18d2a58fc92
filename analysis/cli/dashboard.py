"""`memdash dashboard`: the Streamlit app served over the runs under some folders."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import typer

from memdash.analysis.cli._common import console, fail, sample_roots
from memdash.analysis.cli.options import PORT, TEXT, option


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
    # Streamlit's command line under memdash's launcher, which preloads the first page
    command = streamlit_command(app_file, port=port, host=host, launcher="memdash.dashboard")
    env = dict(os.environ, MEMDASH_ROOTS=os.pathsep.join(str(r.resolve()) for r in roots))
    console.print(
        f"serving the dashboard on http://{host}:{port} over {', '.join(map(str, roots))}"
    )
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # Streamlit replaces this process: signals reach it


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
