"""`memdash analyze` and `memdash localize`: pipeline steps run on a run, each command with its
own steps and the config its options fill, cached under RUN/derived/."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from memdash.analysis.cli._common import config_from, console, errors_reported, parse_names
from memdash.analysis.record.config import AnalysisConfig, LocalizeConfig

if TYPE_CHECKING:
    from memdash.analysis.steps.pipeline import Step

FORCE = typer.Option(False, help="Recompute even what is up to date.")


def _only(steps: str) -> Any:
    """The --only option of a command whose steps are `steps` (comma-separated)."""
    return typer.Option("", help=f"Comma-separated steps: {steps} (default all).")


def analyze(
    run: Path = typer.Argument(..., help="A run directory."),
    only: str = _only("scores,knn,umap,exposure"),
    force: bool = FORCE,
    knn_k: int = typer.Option(30, help="k-NN: neighbours that vote (Cohen et al.: 30)."),
    knn_metric: str = typer.Option("l1", help="k-NN distance: l1 (Cohen et al.), l2 or cosine."),
    knn_pca: int = typer.Option(0, help="k-NN: PCA to this many dimensions first (0: off)."),
    knn_leave_one_out: bool = typer.Option(
        True, help="k-NN: a training point does not vote for itself."
    ),
    umap_neighbors: int = typer.Option(15, help="UMAP: n_neighbors."),
    umap_min_dist: float = typer.Option(0.1, help="UMAP: min_dist."),
    seed: int = typer.Option(0, help="UMAP: random_state."),
) -> None:
    """Compute the run's missing or stale derived results into RUN/derived/."""
    from memdash.analysis.steps.pipeline import STEPS

    _run_steps(STEPS, AnalysisConfig, locals(), knn_pca=knn_pca or None)


def localize(
    run: Path = typer.Argument(..., help="A complete run directory."),
    only: str = _only("rewinding,retraining,flipping"),
    force: bool = FORCE,
    retrain_epochs: int = typer.Option(10, help="Retraining: epochs on clean examples."),
    flip_examples: int = typer.Option(200, help="Flipping: flipped and as many clean examples."),
    flip_max_units: int = typer.Option(100, help="Flipping: the cap on zeroed units."),
    flip_others: int = typer.Option(128, help="Flipping: the fixed batch of other examples."),
    flip_own_weight: float = typer.Option(1.0, help="Flipping: B, the own loss's weight."),
    flip_output_layer: bool = typer.Option(
        False, help="Flipping: the output layer's units (class logits) may be zeroed too."
    ),
    seed: int = typer.Option(0, help="Which examples, the batch of others, retraining order."),
    device: str = typer.Option("cpu", help="torch device."),
) -> None:
    """Where is memorization? Layer rewinding, layer retraining and neuron flipping
    (Maini et al. 2023), cached in RUN/derived/."""
    from memdash.analysis.steps.pipeline import LOCALIZE_STEPS

    _run_steps(LOCALIZE_STEPS, LocalizeConfig, locals())


def _run_steps(
    steps: Mapping[str, Step], config: type, options: Mapping[str, Any], **parsed: Any
) -> None:
    """Run the pipeline `steps` on a run with a status line and a line per finished step.

    Parameters
    ----------
    steps
        The steps of the command, by name (those of --only run, default all).
    config
        The config class of the steps, filled from `options` and `parsed` (see `config_from`).
    options
        The command's options by name: ``run``, ``only``, ``force`` and the config's fields.
    **parsed
        Config fields whose value is not the option's own.
    """
    from memdash.analysis.steps.pipeline import analyze as run_analysis

    run = options["run"]
    started = time.perf_counter()
    kept = "earlier results are kept; run the same command again once there is room"
    with errors_reported(written=run, kept=kept):
        filled = config_from(config, options, **parsed)
        with console.status("starting") as status:

            def report(step: str, state: str) -> None:
                if state in ("computed", "up to date"):
                    console.print(f"{step}: {state} ({time.perf_counter() - started:.1f} s)")
                else:
                    status.update(f"{step}: {state}")

            run_analysis(
                run,
                only=list(parse_names(options["only"])) or None,
                force=options["force"],
                config=filled,
                progress=report,
                steps=steps,
            )
