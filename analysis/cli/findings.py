"""`memdash findings`: the papers' findings checked on runs, as a table or as JSON."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from memdash.analysis.cli._common import open_runs
from memdash.analysis.cli.basics import console, fail, sample_roots
from memdash.analysis.cli.options import SOURCE
from memdash.analysis.cli.specs import option


def findings(
    runs: list[Path] = typer.Argument(
        None, help="Runs, or folders of runs (default sample_runs/)."
    ),
    source: str = option(
        "eval",
        SOURCE,
        "Trace of the trace-based findings: eval (end-of-epoch eval pass) or train "
        "(training minibatches, as Toneva et al. and Swayamdipta et al. score them).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the findings as a JSON list of objects instead of a table."
    ),
) -> None:
    """Check the papers' findings on the runs: the statistic and a verdict for each."""
    import json

    from memdash.analysis.findings import check_all
    from memdash.analysis.store.sources import SOURCES

    roots = runs or sample_roots()
    notes = Console(stderr=True) if as_json else console  # keep stdout pure JSON
    opened, broken = open_runs(roots)
    for err in broken:
        notes.print(f"[yellow]skipped[/] {err}")
    if not opened:
        fail(f"no runs under {', '.join(map(str, roots))}")
    results = check_all(opened, source=source)
    if as_json:
        print(json.dumps([f.as_dict() for f in results], indent=2))
        return
    table = Table(title=f"findings on {len(opened)} run(s)", show_lines=True)
    for column in ("finding", "verdict", "statistic", "trace", "reference"):
        table.add_column(column)
    colour = {"holds": "green", "does not hold": "red"}
    for f in results:
        verdict = f"[{colour.get(f.verdict, 'yellow')}]{f.verdict}[/]"
        trace = SOURCES.get(f.source, "")
        if f.fell_back:
            trace += f" (no {SOURCES[source]} recorded)"
        table.add_row(f.title, verdict, f.statistic or f.why, trace, f.reference)
    console.print(table)
