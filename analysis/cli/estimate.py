"""`memdash estimate`: held-out memorization scores and C-scores from many models trained on
random subsets of a run's data (or of a new run made for it)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer

from memdash.analysis.cli._common import (
    DATA,
    MODEL,
    TRAIN,
    command_line,
    console,
    errors_reported,
    fail,
    parse_ints,
)
from memdash.analysis.record.config import DataConfig, ModelConfig, RunConfig, TrainConfig


def estimate(
    like: Path = typer.Option(None, help="Estimate for this run: its data, model and training."),
    out: Path = typer.Option(None, help="Or create a new run here from the options below."),
    dataset: str = typer.Option(DATA.dataset, help="New run: digits, mnist1d, synthetic or npz."),
    data_path: str = typer.Option(None, help="New run, npz: file with X, y."),
    n_examples: int = typer.Option(None, help="New run, synthetic/mnist1d: examples in all."),
    corruption: str = typer.Option(DATA.corruption, help="New run: the label corruption."),
    noise: float = typer.Option(DATA.noise, help="New run: share of training examples corrupted."),
    model: str = typer.Option(MODEL.name, help="New run: mlp or cnn."),
    hidden: str = typer.Option("512,256", help="New run: hidden widths."),
    epochs: int = typer.Option(TRAIN.epochs, help="New run: training epochs of every model."),
    batch_size: int = typer.Option(TRAIN.batch_size, help="New run: minibatch size."),
    lr: float = typer.Option(TRAIN.lr, help="New run: learning rate."),
    data_seed: int = typer.Option(0, help="New run: the seed of its data and corruption."),
    models: int = typer.Option(256, help="Models per subset ratio."),
    subset: float = typer.Option(0.7, help="Share of the training set each model trains on."),
    ratios: str = typer.Option("", help="Several subset ratios for the C-score, e.g. 0.1,0.5,0.9."),
    models_per_batch: int = typer.Option(16, help="Models trained at once (the unit of work)."),
    seed: int = typer.Option(0, help="The seed of every model's initialization, subset, order."),
    backend: str = typer.Option("local", help="local (this machine's cores) or ray."),
    address: str = typer.Option(None, help="ray: the address of an existing cluster."),
    workers: int = typer.Option(None, help="local processes or local Ray CPUs (default: all)."),
    overwrite: bool = typer.Option(False, help="Discard an earlier estimate in the run."),
) -> None:
    """Held-out memorization scores (Feldman & Zhang) and C-scores from many models trained
    on random subsets; resumable, local or on Ray."""

    from memdash.analysis.ensemble.estimate import EstimateSpec
    from memdash.analysis.ensemble.estimate import estimate as run_estimate
    from memdash.analysis.store import Run

    if (like is None) == (out is None):
        fail("give either --like RUN (an existing run) or --out DIR (a new one)")
    run = like or out
    kept = "the model batches already done are kept; run it again to resume"
    with errors_reported(written=run, kept=kept):
        ratio_list = tuple(float(r) for r in ratios.split(",") if r.strip()) or (subset,)
        spec = EstimateSpec(
            ratios=ratio_list, models=models, models_per_batch=models_per_batch, seed=seed
        )
        if out is not None and (overwrite or not (out / "run.json").exists()):
            _new_estimate_run(
                out,
                RunConfig(
                    data=DataConfig(
                        dataset=dataset,
                        path=data_path,
                        n_examples=n_examples,
                        corruption=corruption,
                        noise=noise,
                    ),
                    model=ModelConfig(name=model, hidden=parse_ints(hidden, "--hidden")),
                    train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr),
                    seed=data_seed,
                    command=command_line(),
                ),
            )
        source = Run.open(run).meta.get("init_from") if like else None
        if source:
            console.print(
                f"note: {run} started from {source['run']}'s weights (--init-from); the "
                "estimate's models train from scratch on their subsets, so its scores describe "
                "this data, model and training without that start"
            )
        if overwrite:
            shutil.rmtree(run / "heldout", ignore_errors=True)
        started = time.perf_counter()
        with console.status("estimating") as status:

            def report(done: int, total: int) -> None:
                status.update(
                    f"model batches {done}/{total} ({time.perf_counter() - started:.0f} s)"
                )

            tables = run_estimate(
                run, spec, backend=backend, address=address, workers=workers, progress=report
            )
    held = tables["heldout.parquet"]
    console.print(
        f"{models} models x {len(spec.ratios)} ratio(s) in {time.perf_counter() - started:.0f} s; "
        f"mean mem_score {held['mem_score'].mean():.3f}; wrote {run}/derived/heldout.parquet "
        "and influence.parquet"
    )


def _new_estimate_run(out: Path, config: RunConfig) -> None:
    """A run directory holding only the data of an estimate (no training trace)."""
    from memdash.analysis.record.config import validate
    from memdash.analysis.record.training import create_run, make_model, prepare_data

    validate(config)
    prepared = prepare_data(config)
    model = make_model(config, prepared.inputs.shape[1:], prepared.n_classes)
    create_run(out, config, prepared, model, overwrite=True).finish("complete", estimate_only=True)
