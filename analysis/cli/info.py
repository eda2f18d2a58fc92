"""`memdash info`: one run's summary and the validation of its files (run.json against its
schema, every part, the derived tables against the SHA-256 and size the manifest recorded,
and every file of the folder the store did not write), or a folder's runs by seed group."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from memdash.analysis.cli._common import errors_reported, open_runs
from memdash.analysis.cli.basics import console, fail

if TYPE_CHECKING:
    import pandas as pd

    from memdash.analysis.store import Run


def info(
    run: Path = typer.Argument(..., help="A run directory, or a folder of runs (seed groups)."),
) -> None:
    """Print a run's summary and validate every file in it; for a folder of runs, its seed
    groups and runs."""
    from memdash.analysis.store import Run, RunFormatError

    if run.is_dir() and not (run / "run.json").exists():
        _folder_info(run)
        return
    with errors_reported(RunFormatError):
        r = Run.open(run)
        if r.status == "created":
            console.print(
                f"run {r.name}: created (0 of {r.meta.get('epochs_planned')} epochs), nothing "
                f"recorded yet; `memdash train --resume --out {r.path}` starts it again"
            )
            return
        notes = r.validate()
        examples = r.examples()
    console.print(_summary(r, examples, notes))
    damaged, verified, unverified = r.derived_problems()
    unexpected, leftovers = r.survey()
    if verified:
        console.print(f"derived: {len(verified)} derived files match their SHA-256 and size")
    if unverified:
        console.print(
            f"derived: {len(unverified)} derived files not verifiable: derived/manifest.json "
            "records no hashes of them (written by an older memdash; `memdash analyze "
            "--force` records them)"
        )
    for file, why in leftovers:
        console.print(f"[yellow]left behind[/]: {escape(file)}: {escape(why)}")
    for kind, found in (("damaged", damaged), ("unexpected", unexpected)):
        for file, why in found:
            console.print(f"[red]{kind}[/]: {escape(file)}: {escape(why)}")
    faults = len(damaged) + len(unexpected)
    if faults:
        fail(f"run {r.path}: {faults} file(s) do not match the run store (above)")
    console.print("[green]valid[/]: every file matches run-store schema version 1")


def _summary(r: Run, examples: pd.DataFrame, notes: list[str]) -> Table:
    """The table of a run's summary: path, status, data, model, examples, notes, accuracy,
    where it started from, its seed group and command."""
    cfg = r.config
    table = Table(title=f"run {r.name}", show_header=False)
    table.add_row("path", str(r.path))
    table.add_row(
        "status", f"{r.status} ({r.epochs_completed} of {r.meta.get('epochs_planned')} epochs)"
    )
    if "data" in cfg:
        d, m = cfg["data"], cfg.get("model", {})
        table.add_row("data", f"{d.get('dataset')}, {d.get('corruption')} noise {d.get('noise')}")
        table.add_row("model", f"{m.get('name')} {m.get('hidden')} dropout {m.get('dropout')}")
    counts = examples.groupby("split").size().to_dict()
    table.add_row("examples", ", ".join(f"{k} {v}" for k, v in counts.items()))
    table.add_row(
        "flipped / canaries", f"{int(examples.is_noisy.sum())} / {int(examples.is_canary.sum())}"
    )
    table.add_row("trace sources", ", ".join(r.trace_sources()) or "none")
    for note in notes:
        table.add_row("", note)
    last = r.meta.get("last_epoch", {})
    if last:
        table.add_row(
            "accuracy", " ".join(f"{k[:-4]} {v:.3f}" for k, v in last.items() if k.endswith("_acc"))
        )
    source = r.meta.get("init_from")
    if source:
        fresh = ", ".join(source.get("reinit") or []) or "none"
        table.add_row(
            "started from", f"{source['run']} epoch {source['epoch']} (drawn afresh: {fresh})"
        )
    group = _group_of(r)
    if group:
        table.add_row("seed group", group)
    if cfg.get("command"):
        table.add_row("command", cfg["command"])
    return table


def _group_of(run: Run) -> str | None:
    """'seeds 0, 1, 2 in FOLDER' when the runs beside `run` (in its parent folder) form a seed
    group with it."""
    from memdash.analysis.store import Run, RunFormatError, discover_runs
    from memdash.analysis.store.groups import seed_groups

    try:
        beside = [Run.open(p) for p in discover_runs([run.path.parent])]
    except (RunFormatError, OSError):
        return None
    for group in seed_groups(beside).values():
        if any(r.path.resolve() == run.path.resolve() for r in group):
            seeds = ", ".join(str(r.config.get("seed", 0)) for r in group)
            return f"seeds {seeds} in {run.path.parent}"
    return None


def _folder_info(folder: Path) -> None:
    """The runs under a folder: each seed group with its seeds, then the other runs."""
    from memdash.analysis.store.groups import group_names, seed_groups, training_labels

    folder = folder.resolve()
    runs, broken = open_runs([folder])
    if not runs and not broken:
        fail(f"{folder}: no run.json here or in any folder under it; not a memdash run")
    groups = group_names(seed_groups(runs))
    table = Table(title=f"{len(runs) + len(broken)} runs under {folder}")
    for column in ("seed group", "seeds", "labels", "runs"):
        table.add_column(column)
    grouped = set()
    for name, group in groups.items():
        grouped |= {r.path for r in group}
        table.add_row(
            name,
            ", ".join(str(r.config.get("seed", 0)) for r in group),
            training_labels(group[0].config),
            ", ".join(str(r.path.relative_to(folder)) for r in group),
        )
    alone = [r for r in runs if r.path not in grouped]
    if alone:
        table.add_row("(none)", "", "", ", ".join(str(r.path.relative_to(folder)) for r in alone))
    console.print(table)
    for err in broken:
        console.print(f"[red]cannot read[/]: {err}")
    console.print("`memdash info RUN` validates one run's files.")
