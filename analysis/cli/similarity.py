"""`memdash similarity`: representation similarity (CKA, SVCCA) between the layers of runs of
the same examples, into one table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from memdash.analysis.cli._common import errors_reported
from memdash.analysis.cli.basics import console
from memdash.analysis.cli.options import EPOCH_LIST, SIMILARITY_MEASURES
from memdash.analysis.cli.specs import option


def similarity(
    runs: list[Path] = typer.Argument(
        ..., help="Runs of the same examples, or folders holding them (a seed group)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for similarity.parquet."),
    epochs: tuple = option("", EPOCH_LIST, "Embedding epochs to compare (default: all shared)."),
    measures: tuple = option("cka,svcca", SIMILARITY_MEASURES, "cka and/or svcca."),
) -> None:
    """Representation similarity (linear CKA, SVCCA) between every layer of every pair of runs
    at their shared embedding epochs, into OUT/similarity.parquet."""
    from memdash.analysis.store import Run, discover_runs, write_parquet
    from memdash.analysis.tables.similarity import run_similarity

    with errors_reported(written=out, kept="nothing else was changed"):
        paths = [
            p
            for root in runs
            for p in ([root] if (root / "run.json").is_file() else discover_runs([root]))
        ]
        opened = [Run.open(p) for p in paths]
        table = run_similarity(
            opened,
            epochs=list(epochs) or None,
            measures=measures,
        )
        out.mkdir(parents=True, exist_ok=True)
        write_parquet(out / "similarity.parquet", table)
    same = table[table["layer_a"] == table["layer_b"]]
    summary = same.groupby(["measure", "epoch", "layer_a"])["value"].mean().unstack("measure")
    shown = Table(title=f"{len(opened)} runs: mean over pairs, same layer")
    for column in ("epoch", "layer", *summary.columns):
        shown.add_column(str(column))
    for (epoch, layer), row in summary.iterrows():
        shown.add_row(str(epoch), layer, *(f"{v:.3f}" for v in row))
    console.print(shown)
    console.print(f"wrote {out / 'similarity.parquet'} ({len(table):,} rows)")
