"""The `memdash` command line: parses options into a RunConfig and calls the library.

One module per command (`analyze` holds analyze and localize, which share their step runner),
with what they share in `_common`; `app` registers them in the order `memdash --help` lists.
"""

from __future__ import annotations

import typer

from memdash.analysis.cli import analyze, dashboard, estimate, findings, info, similarity, train

app = typer.Typer(
    help="memdash: record, measure and explore what a deep network memorizes.",
    no_args_is_help=True,
    add_completion=False,
)
for command in (
    train.train,
    info.info,
    analyze.analyze,
    analyze.localize,
    estimate.estimate,
    similarity.similarity,
    findings.findings,
    dashboard.dashboard,
):
    app.command()(command)
