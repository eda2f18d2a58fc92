"""`memdash proxies`: which single-run score finds what the held-out ensemble finds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from memdash.analysis.cli._common import errors_reported
from memdash.analysis.cli.basics import console
from memdash.analysis.cli.options import SEED, ints, reals
from memdash.analysis.cli.specs import Number, option

SHARE = Number(reals(0, 1, open_low=True))
BOOTSTRAP = Number(ints(10, 100_000))


def _cell(value: float, fmt: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else fmt.format(value)
    )


def proxies(
    run: Path = typer.Argument(..., help="A run analysed by `memdash analyze`."),
    share: float = option(0.05, SHARE, "Top share of examples for the precision."),
    bootstrap: int = option(1000, BOOTSTRAP, "Bootstrap resamples of Spearman's interval."),
    seed: int = option(0, SEED, "Seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON rows."),
) -> None:
    """Rank the run's single-run scores (trace scores, k-NN disagreement, units to flip, loss
    sensitivity, curvature, SSFT) by their Spearman correlation with the held-out memorization
    score of `memdash estimate` (with a bootstrap 95% interval), and give each one's AUROC for
    the flipped labels and the canaries, its precision among the ensemble's top share and its
    cost; kept in RUN/derived/proxies.parquet. Without an estimate, ranked by the flips."""
    from memdash.analysis.steps.proxies import FILE, scoreboard_of
    from memdash.analysis.store import Run

    with errors_reported(written=run / "derived", kept="the run's other files are unchanged"):
        opened = Run.open(run)
        board, computed = scoreboard_of(opened, share=share, n_boot=bootstrap, seed=seed)
    if as_json:
        rows = json.loads(board.to_json(orient="records"))
        console.print_json(json.dumps({"run": opened.name, "proxies": rows}))
        return
    has_mem = board["spearman"].notna().any()
    title = f"{opened.name}: single-run proxies against the held-out memorization score"
    if not has_mem:
        title = f"{opened.name}: no estimate (`memdash estimate --like RUN`); ranked by flips"
    shown = Table(title=title)
    shown.add_column("proxy", no_wrap=True)
    for header in ("flagged end", "n", "Spearman", "95% interval", "AUROC flips", "AUROC canaries"):
        shown.add_column(header, justify="right")
    for header in (f"precision top {share:.0%}", "seconds", "x one run"):
        shown.add_column(header, justify="right")
    for row in board.itertuples():
        interval = _cell(row.spearman_lo, "{:.3f}") + " to " + _cell(row.spearman_hi, "{:.3f}")
        shown.add_row(
            row.proxy,
            row.direction,
            f"{row.n:,}",
            _cell(row.spearman, "{:.3f}"),
            "-" if math.isnan(row.spearman) else interval,
            _cell(row.auroc_flipped, "{:.3f}"),
            _cell(row.auroc_canary, "{:.3f}"),
            _cell(row.precision_top, "{:.2f}"),
            _cell(row.seconds, "{:.1f}"),
            _cell(row.cost_runs, "{:.2f}"),
        )
    Console(width=max(console.width, 150)).print(shown)  # wide rather than truncated
    state = "computed and wrote" if computed else "up to date:"
    console.print(f"{state} {opened.path / 'derived' / FILE}")
