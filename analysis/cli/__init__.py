"""The `memdash` command line: parses options into a RunConfig and calls the library.

`main` is the `memdash` command. Its commands are registered in `commands.app` (one module
per command); `app` here is that one, imported when first asked for. `memdash dashboard` is
parsed by a command line of that command alone (`dashboard.app`), which imports typer, the
option specs and the console (`basics`, `specs`) but not the other commands and the run
config they need (numpy among them): the dashboard's server starts 0.2-0.4 s sooner
(benchmarks/first_chart.py).
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    """`memdash [COMMAND] [OPTIONS]`."""
    if sys.argv[1:2] == ["dashboard"]:
        from memdash.analysis.cli.dashboard import app as dashboard_app

        dashboard_app(args=sys.argv[2:], prog_name="memdash dashboard")
    else:
        from memdash.analysis.cli.commands import app as every_command

        every_command(prog_name="memdash")


def __getattr__(name: str) -> Any:
    """`app`, every command's typer app, imported when first asked for (PEP 562)."""
    if name == "app":
        from memdash.analysis.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
