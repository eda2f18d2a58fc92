"""What every command shares that costs nothing to import: the console, the ways a command
fails (an error; a refusal before any work), and the default run roots. `memdash dashboard`
imports no more than this, the option specs and typer (`cli.main`), so that the dashboard's
server starts without importing the other commands (numpy, the run config)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True)
# the checkout's sample suite (analysis/cli/ lies two folders below the repository root)
REPO_SAMPLE_RUNS = Path(__file__).resolve().parents[2] / "sample_runs"


def sample_roots() -> list[Path]:
    """The default run roots: ./sample_runs when there is one, else the checkout's suite."""
    return [Path("sample_runs") if Path("sample_runs").is_dir() else REPO_SAMPLE_RUNS]


def fail(message: str) -> NoReturn:
    """Print `message` as the command's error, on one line, and exit with code 1."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=1)


def refuse(message: str) -> NoReturn:
    """Refuse the command's options before it does anything: `message` (the option and what
    it accepts) on one line of stderr, exit code 2 (a usage error, as click's)."""
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=2)
