"""The `memdash` command line, every command registered: `app` (see `cli/__init__.py`).

One module per command (`analyze` holds analyze and localize, which share their step runner),
with what they share in `_common`, the type and range of every option in `options` and the
memory a run needs in `footprint`; `app` registers them in the order `memdash --help` lists,
each a `Checked` command, whose options are refused before it runs.
"""

from __future__ import annotations

import typer

from memdash.analysis.cli import analyze, dashboard, estimate, findings, info, similarity, train
from memdash.analysis.cli import proxies as proxies_command
from memdash.analysis.cli import sql as sql_command
from memdash.analysis.cli import ssft as ssft_command
from memdash.analysis.cli.specs import Checked

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
    ssft_command.ssft,
    proxies_command.proxies,
    similarity.similarity,
    findings.findings,
    sql_command.sql,
    dashboard.dashboard,
):
    app.command(cls=Checked)(command)  # a bad option: one line, exit code 2, nothing done
