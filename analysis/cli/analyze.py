"""`memdash analyze` and `memdash localize`: pipeline steps run on a run, each command with its
own steps and the config its options fill, cached under RUN/derived/."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from memdash.analysis.cli._common import config_from, errors_reported
from memdash.analysis.cli.basics import console
from memdash.analysis.cli.options import (
    BACKEND,
    DEVICE,
    KNN_METRIC,
    KNN_PCA,
    WORKERS,
    field,
    steps_of,
)
from memdash.analysis.cli.specs import TEXT, OneOf, option
from memdash.analysis.measures.ivf import AUTO_EXACT_BELOW, DEFAULT_PROBES, KNN_METHODS
from memdash.analysis.record.config import AnalysisConfig, LocalizeConfig

if TYPE_CHECKING:
    from memdash.analysis.steps.pipeline import Step

FORCE = typer.Option(False, help="Recompute even what is up to date.")


def _only(table: str, steps: str) -> Any:
    """The --only option of a command whose steps are the pipeline's `table`, `steps`."""
    return option("", steps_of(table), f"Comma-separated steps: {steps} (default all).")


def analyze(
    run: Path = typer.Argument(..., help="A run directory."),
    only: tuple = _only("STEPS", "scores,knn,umap,exposure,extraction"),
    force: bool = FORCE,
    knn_k: int = option(
        30, field("analysis.knn_k"), "k-NN: neighbours that vote (Cohen et al.: 30)."
    ),
    knn_metric: str = option("l1", KNN_METRIC, "k-NN distance: l1 (Cohen et al.), l2 or cosine."),
    knn_pca: int = option(0, KNN_PCA, "k-NN: PCA to this many dimensions first (0: off)."),
    knn_leave_one_out: bool = typer.Option(
        True, help="k-NN: a training point does not vote for itself."
    ),
    knn_method: str = option(
        "auto",
        OneOf(KNN_METHODS),
        "k-NN search: exact (every training point), ivf (an inverted-file index: approximate,"
        f" recall@30 >= 0.95 at the defaults) or auto (exact below {AUTO_EXACT_BELOW['l1']:,}"
        " training points for l1, IVF above).",
        "--knn",
    ),
    knn_lists: int = option(
        None, field("analysis.knn_lists"), "k-NN ivf: lists (default 2 sqrt(training points))."
    ),
    knn_probes: int = option(
        DEFAULT_PROBES, field("analysis.knn_probes"), "k-NN ivf: lists a query visits."
    ),
    umap_neighbors: int = option(15, field("analysis.umap_neighbors"), "UMAP: n_neighbors."),
    umap_min_dist: float = option(0.1, field("analysis.umap_min_dist"), "UMAP: min_dist."),
    umap_sample: int = option(
        50_000,
        field("analysis.umap_sample"),
        "UMAP: above this many examples, fit a seeded sample of this many and place the"
        " rest with the fitted model's transform (0: fit every example).",
    ),
    seed: int = option(0, field("analysis.seed"), "UMAP: random_state."),
    backend: str = option(
        "local",
        BACKEND,
        "local (here, one step part after another) or ray (each layer and epoch's k-NN and"
        " each layer's UMAP as Ray tasks; the same results byte for byte).",
    ),
    address: str = option(None, TEXT, "ray: the address of an existing cluster."),
    workers: int = option(None, WORKERS, "ray: a local cluster's CPUs (default: all cores)."),
) -> None:
    """Compute the run's missing or stale derived results into RUN/derived/."""
    from memdash.analysis.steps.pipeline import STEPS

    where = {"backend": backend, "address": address, "workers": workers}
    _run_steps(STEPS, AnalysisConfig, locals(), where, knn_pca=knn_pca or None)


def localize(
    run: Path = typer.Argument(..., help="A complete run directory."),
    only: tuple = _only("LOCALIZE_STEPS", "rewinding,retraining,flipping"),
    force: bool = FORCE,
    retrain_epochs: int = option(
        10, field("localize.retrain_epochs"), "Retraining: epochs on clean examples."
    ),
    flip_examples: int = option(
        200, field("localize.flip_examples"), "Flipping: flipped and as many clean examples."
    ),
    flip_max_units: int = option(
        100, field("localize.flip_max_units"), "Flipping: the cap on zeroed units."
    ),
    flip_others: int = option(
        128, field("localize.flip_others"), "Flipping: the fixed batch of other examples."
    ),
    flip_own_weight: float = option(
        1.0, field("localize.flip_own_weight"), "Flipping: B, the own loss's weight."
    ),
    flip_output_layer: bool = typer.Option(
        False, help="Flipping: the output layer's units (class logits) may be zeroed too."
    ),
    seed: int = option(
        0, field("localize.seed"), "Which examples, the batch of others, retraining order."
    ),
    device: str = option("cpu", DEVICE, "torch device."),
) -> None:
    """Where is memorization? Layer rewinding, layer retraining and neuron flipping
    (Maini et al. 2023), cached in RUN/derived/."""
    from memdash.analysis.steps.pipeline import LOCALIZE_STEPS

    _run_steps(LOCALIZE_STEPS, LocalizeConfig, locals(), {})


def _run_steps(
    steps: Mapping[str, Step],
    config: type,
    options: Mapping[str, Any],
    where: Mapping[str, Any],
    **parsed: Any,
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
    where
        Where the steps' parts run: `memdash.analysis.steps.pipeline.analyze`'s ``backend``,
        ``address`` and ``workers`` (empty: here).
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
                elif state.startswith("not for "):  # a step of another kind of run
                    console.print(f"{step}: {state}")
                else:
                    status.update(f"{step}: {state}")

            run_analysis(
                run,
                only=list(options["only"]) or None,
                force=options["force"],
                config=filled,
                progress=report,
                steps=steps,
                **where,
            )
