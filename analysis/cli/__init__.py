"""The `memdash` command line: parses options into a RunConfig and calls the library."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memdash.analysis.record.config import (
    AnalysisConfig,
    DataConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    TrainConfig,
)

app = typer.Typer(
    help="memdash: record, measure and explore what a deep network memorizes.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
_D, _M, _T, _R = DataConfig(), ModelConfig(), TrainConfig(), RecordConfig()
# the checkout's sample suite (analysis/cli/ lies two folders below the repository root)
REPO_SAMPLE_RUNS = Path(__file__).resolve().parents[2] / "sample_runs"


def _ints(text: str, what: str) -> tuple[int, ...]:
    """Parse "1,10,50" (or "1x16x16" for shapes) into a tuple of ints."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(
            f"{what} must be integers separated by commas, got {text!r}"
        ) from None


def _image_size(text: str) -> tuple[int, int] | None:
    """ "32x32" or "32" (square) -> (height, width); "" -> None."""
    if not text.strip():
        return None
    size = _ints(text, "--image-size")
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise typer.BadParameter(f"--image-size must be HxW or one size, got {text!r}")
    return size


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


def _cannot_write(err: OSError, folder: Path, kept: str) -> None:
    """A write into `folder` that failed (a full disk, a read-only folder): what failed, the
    space left when the system gave no reason (a short write), and what is kept."""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err)
    if err.errno is None and folder.exists():
        reason += f" ({shutil.disk_usage(folder).free} bytes free on the disk of {folder})"
    _fail(f"cannot write{where}: {reason}; {kept}")


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="Run directory to create (or resume)."),
    dataset: str = typer.Option(_D.dataset, help="digits, mnist1d, synthetic, npz, folder or hf."),
    data_path: str = typer.Option(
        None,
        help="npz: file with X, y (and X_test, y_test); folder: DIR/<class>/images, or "
        "DIR/train/<class>/ and DIR/test/<class>/; hf: a dataset saved with save_to_disk.",
    ),
    image_size: str = typer.Option(
        "", help="folder, hf: resize every image to HxW (e.g. 32x32); default keep the size."
    ),
    image_column: str = typer.Option(_D.image_column, help="hf: the column of images."),
    label_column: str = typer.Option(_D.label_column, help="hf: the column of integer labels."),
    test_fraction: float = typer.Option(_D.test_fraction, help="Test share if no test split."),
    n_examples: int = typer.Option(None, help="synthetic/mnist1d: examples in all."),
    shape: str = typer.Option("64", help="synthetic: input shape, e.g. 64 or 1x16x16."),
    n_classes: int = typer.Option(_D.n_classes, help="synthetic: number of classes."),
    corruption: str = typer.Option(
        _D.corruption, help="symmetric (label noise), random_labels or random_inputs."
    ),
    noise: float = typer.Option(_D.noise, help="Share of training examples corrupted."),
    canaries: int = typer.Option(_D.canaries, help="Canaries per repetition count."),
    canary_repeats: str = typer.Option("1,10,50", help="Times each canary appears per epoch."),
    reference_canaries: int = typer.Option(_D.reference_canaries, help="Never-trained canaries."),
    model: str = typer.Option(_M.name, help="mlp, cnn or resnet (ResNet-9)."),
    hidden: str = typer.Option("512,256", help="MLP hidden widths (CNN: its dense width)."),
    channels: str = typer.Option("32,64", help="CNN convolution channels."),
    width: int = typer.Option(_M.width, help="ResNet-9: channels of its first layer (x2, x4, x8)."),
    dropout: float = typer.Option(_M.dropout, help="Dropout rate after each hidden block."),
    example_tied_dropout: bool = typer.Option(
        False, help="Example-tied dropout after each hidden block (Maini et al.), not dropout."
    ),
    p_fixed: float = typer.Option(_M.p_fixed, help="Tied dropout: share of channels always kept."),
    p_mem: float = typer.Option(
        _M.p_mem, help="Tied dropout: chance an example keeps each other channel."
    ),
    epochs: int = typer.Option(_T.epochs, help="Training epochs."),
    batch_size: int = typer.Option(_T.batch_size, help="Minibatch size."),
    optimizer: str = typer.Option(_T.optimizer, help="sgd or adam."),
    lr: float = typer.Option(_T.lr, help="Learning rate."),
    momentum: float = typer.Option(_T.momentum, help="SGD momentum."),
    weight_decay: float = typer.Option(_T.weight_decay, help="L2 penalty."),
    device: str = typer.Option(_T.device, help="torch device, e.g. cpu or cuda."),
    init_from: Path = typer.Option(
        None, help="Start from another run's weights (e.g. one trained on random labels)."
    ),
    init_epoch: int = typer.Option(None, help="--init-from: its checkpoint epoch (default last)."),
    reinit: str = typer.Option("", help="--init-from: layers drawn afresh instead, e.g. out."),
    record_train: bool = typer.Option(
        _R.record_train, help="Also record the training minibatches' own statistics."
    ),
    grad_accounting: bool = typer.Option(
        None, help="Clean/flipped gradient norms per layer (default: on with label noise)."
    ),
    embed_layers: str = typer.Option("", help="Layers whose embeddings are stored, e.g. fc2,out."),
    embed_epochs: str = typer.Option("", help="Epochs at which embeddings are stored."),
    checkpoint_epochs: str = typer.Option(
        "0", help="Epochs whose weights are stored (0 = init; the last epoch always is)."
    ),
    embed_dtype: str = typer.Option(_R.embed_dtype, help="float16 or float32."),
    record_loss_sensitivity: bool = typer.Option(
        False, help="Record ||dL/dx||_1 per example and epoch (Arpit et al.), a trace column."
    ),
    critical_examples: int = typer.Option(
        0, help="Search this many seeded examples for critical samples each epoch (Arpit et al.)."
    ),
    critical_radius: float = typer.Option(
        _R.critical_radius, help="Critical samples: L-inf radius."
    ),
    critical_steps: int = typer.Option(_R.critical_steps, help="Critical samples: search steps."),
    seed: int = typer.Option(0, help="The seed every random choice derives from."),
    data_seed: int = typer.Option(
        None, help="The seed of the data split, corruption and canaries (default: --seed)."
    ),
    seeds: str = typer.Option(
        "",
        help="A seed group: one run per seed (0-4 or 0,3,7) under --out/seed_N, all on the "
        "data of --data-seed (default: the first seed).",
    ),
    resume: bool = typer.Option(False, help="Continue a killed or failed run in --out."),
    overwrite: bool = typer.Option(False, help="Replace an existing run in --out."),
) -> None:
    """Train a model and record its per-example trace into a run directory (or one run per
    seed of a seed group)."""
    config = RunConfig(
        data=DataConfig(
            dataset=dataset,
            path=data_path,
            test_fraction=test_fraction,
            n_examples=n_examples,
            shape=_ints(shape, "--shape"),
            image_size=_image_size(image_size),
            image_column=image_column,
            label_column=label_column,
            n_classes=n_classes,
            corruption=corruption,
            noise=noise,
            canaries=canaries,
            canary_repeats=_ints(canary_repeats, "--canary-repeats"),
            reference_canaries=reference_canaries,
        ),
        model=ModelConfig(
            name=model,
            hidden=_ints(hidden, "--hidden"),
            channels=_ints(channels, "--channels"),
            width=width,
            dropout=dropout,
            example_tied_dropout=example_tied_dropout,
            p_fixed=p_fixed,
            p_mem=p_mem,
        ),
        train=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            device=device,
            init_from=None if init_from is None else str(init_from),
            init_epoch=init_epoch,
            reinit=_names(reinit),
        ),
        record=RecordConfig(
            record_train=record_train,
            grad_accounting=grad_accounting,
            embed_layers=_names(embed_layers),
            embed_epochs=_ints(embed_epochs, "--embed-epochs"),
            checkpoint_epochs=_ints(checkpoint_epochs, "--checkpoint-epochs"),
            embed_dtype=embed_dtype,
            loss_sensitivity=record_loss_sensitivity,
            critical_examples=critical_examples,
            critical_radius=critical_radius,
            critical_steps=critical_steps,
        ),
        seed=seed,
        command="memdash " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    if seeds:
        group = _seed_list(seeds)
        shared = replace(config.data, seed=group[0] if data_seed is None else data_seed)
        for member in group:
            one = replace(config, seed=member, data=shared)
            _train_one(one, out / f"seed_{member}", resume=resume, overwrite=overwrite)
        console.print(f"{len(group)} runs of one seed group under [bold]{out}[/]")
        return
    if data_seed is not None:
        config = replace(config, data=replace(config.data, seed=data_seed))
    if resume and replace(config, command="") == RunConfig():
        from memdash.analysis.store import Run, RunFormatError

        try:  # no options given: resume with the stored ones
            config = RunConfig.from_dict(Run.open(out).config)
        except RunFormatError as err:
            _fail(str(err))
    _train_one(config, out, resume=resume, overwrite=overwrite)


def _seed_list(text: str) -> list[int]:
    """ "0-4" or "0,3,7" (or both, "0-2,9") as a sorted list of distinct seeds."""
    found: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise typer.BadParameter(
                f"--seeds must be seeds like 0-4 or 0,3,7, got {text!r}"
            ) from None
        if first < 0 or last < first or last - first > 999:
            raise typer.BadParameter(f"--seeds: {part!r} is not a range of 1 to 1000 seeds >= 0")
        found.update(range(first, last + 1))
    if len(found) < 1:
        raise typer.BadParameter(f"--seeds names no seed: {text!r}")
    return sorted(found)


def _train_one(config: RunConfig, out: Path, *, resume: bool, overwrite: bool) -> None:
    """Train one run with a progress bar, drawn once its arguments and data are checked."""
    from memdash.analysis.record.training import TrainingError
    from memdash.analysis.record.training import train as run_training

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    bar = Progress(*columns, console=console)
    task = bar.add_task(f"training {out.name}", total=config.train.epochs, status="", start=False)

    def progress(epoch: int, total: int, summary: dict[str, float]) -> None:
        shown = " ".join(f"{k[:-4]} {v:.3f}" for k, v in summary.items() if k.endswith("_acc"))
        bar.update(task, completed=epoch, status=shown)

    def start() -> None:  # drawn once the arguments, data and run directory are checked
        bar.start()
        bar.start_task(task)

    try:
        run_training(
            config, out, resume=resume, overwrite=overwrite, progress=progress, on_start=start
        )
    except (ValueError, TrainingError, FileExistsError) as err:
        bar.stop()
        _fail(str(err))
    except OSError as err:
        bar.stop()
        _cannot_write(err, out, "the run keeps its complete epochs: make room, then add --resume")
    finally:
        bar.stop()
    console.print(
        f"run written to [bold]{out}[/]; explore it with `memdash dashboard {out.parent}`"
    )


@app.command()
def info(
    run: Path = typer.Argument(..., help="A run directory, or a folder of runs (seed groups)."),
) -> None:
    """Print a run's summary and validate every file in it; for a folder of runs, its seed
    groups and runs."""
    from memdash.analysis.store import Run, RunFormatError

    if run.is_dir() and not (run / "run.json").exists():
        _folder_info(run)
        return
    try:
        r = Run.open(run)
        if r.status == "created":
            console.print(
                f"run {r.name}: created (0 of {r.meta.get('epochs_planned')} epochs), nothing "
                f"recorded yet; `memdash train --resume --out {r.path}` starts it again"
            )
            return
        notes = r.validate()
        examples = r.examples()
    except RunFormatError as err:
        _fail(str(err))
    cfg = r.config
    table = Table(title=f"run {r.name}", show_header=False)
    table.add_row("path", str(r.path))
    table.add_row(
        "status", f"{r.status} ({r.epochs_completed} of {r.meta.get('epochs_planned')} epochs)"
    )
    if "data" in cfg:
        d, m = cfg["data"], cfg["model"]
        table.add_row("data", f"{d['dataset']}, {d['corruption']} noise {d['noise']}")
        table.add_row("model", f"{m['name']} {m.get('hidden')} dropout {m.get('dropout')}")
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
    console.print(table)
    console.print("[green]valid[/]: every file matches run-store schema version 1")


def _group_of(run) -> str | None:
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
    from memdash.analysis.store import Run, RunFormatError, discover_runs
    from memdash.analysis.store.groups import group_names, seed_groups, training_labels

    runs, broken = [], []
    folder = folder.resolve()
    for path in discover_runs([folder]):
        try:
            runs.append(Run.open(path))
        except RunFormatError as err:
            broken.append(str(err))
    if not runs and not broken:
        _fail(f"{folder}: no run.json here or in any folder under it; not a memdash run")
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
    for message in broken:
        console.print(f"[red]cannot read[/]: {message}")
    console.print("`memdash info RUN` validates one run's files.")


@app.command()
def analyze(
    run: Path = typer.Argument(..., help="A run directory."),
    only: str = typer.Option(
        "", help="Comma-separated steps: scores,knn,umap,exposure (default all)."
    ),
    force: bool = typer.Option(False, help="Recompute even what is up to date."),
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

    _run_steps(
        run,
        only,
        force,
        lambda: AnalysisConfig(
            knn_k=knn_k,
            knn_metric=knn_metric,
            knn_pca=knn_pca or None,
            knn_leave_one_out=knn_leave_one_out,
            umap_neighbors=umap_neighbors,
            umap_min_dist=umap_min_dist,
            seed=seed,
        ),
        STEPS,
    )


@app.command()
def localize(
    run: Path = typer.Argument(..., help="A complete run directory."),
    only: str = typer.Option(
        "", help="Comma-separated steps: rewinding,retraining,flipping (default all)."
    ),
    force: bool = typer.Option(False, help="Recompute even what is up to date."),
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
    from memdash.analysis.record.config import LocalizeConfig
    from memdash.analysis.steps.pipeline import LOCALIZE_STEPS

    _run_steps(
        run,
        only,
        force,
        lambda: LocalizeConfig(
            retrain_epochs=retrain_epochs,
            flip_examples=flip_examples,
            flip_max_units=flip_max_units,
            flip_others=flip_others,
            flip_own_weight=flip_own_weight,
            flip_output_layer=flip_output_layer,
            seed=seed,
            device=device,
        ),
        LOCALIZE_STEPS,
    )


@app.command()
def estimate(
    like: Path = typer.Option(None, help="Estimate for this run: its data, model and training."),
    out: Path = typer.Option(None, help="Or create a new run here from the options below."),
    dataset: str = typer.Option(_D.dataset, help="New run: digits, mnist1d, synthetic or npz."),
    data_path: str = typer.Option(None, help="New run, npz: file with X, y."),
    n_examples: int = typer.Option(None, help="New run, synthetic/mnist1d: examples in all."),
    corruption: str = typer.Option(_D.corruption, help="New run: the label corruption."),
    noise: float = typer.Option(_D.noise, help="New run: share of training examples corrupted."),
    model: str = typer.Option(_M.name, help="New run: mlp or cnn."),
    hidden: str = typer.Option("512,256", help="New run: hidden widths."),
    epochs: int = typer.Option(_T.epochs, help="New run: training epochs of every model."),
    batch_size: int = typer.Option(_T.batch_size, help="New run: minibatch size."),
    lr: float = typer.Option(_T.lr, help="New run: learning rate."),
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
    from memdash.analysis.store import Run, RunFormatError

    if (like is None) == (out is None):
        _fail("give either --like RUN (an existing run) or --out DIR (a new one)")
    try:
        ratio_list = tuple(float(r) for r in ratios.split(",") if r.strip()) or (subset,)
        spec = EstimateSpec(
            ratios=ratio_list, models=models, models_per_batch=models_per_batch, seed=seed
        )
        if out is not None:
            target = out if (out / "run.json").exists() and not overwrite else None
            if target is None:
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
                        model=ModelConfig(name=model, hidden=_ints(hidden, "--hidden")),
                        train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr),
                        seed=data_seed,
                        command="memdash " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                    ),
                )
        run = like or out
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
    except (RunFormatError, ValueError) as err:
        _fail(str(err))
    except OSError as err:
        _cannot_write(err, run, "the model batches already done are kept; run it again to resume")
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


@app.command()
def similarity(
    runs: list[Path] = typer.Argument(
        ..., help="Runs of the same examples, or folders holding them (a seed group)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for similarity.parquet."),
    epochs: str = typer.Option("", help="Embedding epochs to compare (default: all shared)."),
    measures: str = typer.Option("cka,svcca", help="cka and/or svcca."),
) -> None:
    """Representation similarity (linear CKA, SVCCA) between every layer of every pair of runs
    at their shared embedding epochs, into OUT/similarity.parquet."""
    from memdash.analysis.store import Run, RunFormatError, discover_runs, write_parquet
    from memdash.analysis.tables.similarity import run_similarity

    try:
        paths = [
            p
            for root in runs
            for p in ([root] if (root / "run.json").is_file() else discover_runs([root]))
        ]
        opened = [Run.open(p) for p in paths]
        table = run_similarity(
            opened,
            epochs=list(_ints(epochs, "--epochs")) or None,
            measures=_names(measures),
        )
        out.mkdir(parents=True, exist_ok=True)
        write_parquet(out / "similarity.parquet", table)
    except (RunFormatError, ValueError) as err:
        _fail(str(err))
    except OSError as err:
        _cannot_write(err, out, "nothing else was changed")
    same = table[table["layer_a"] == table["layer_b"]]
    summary = same.groupby(["measure", "epoch", "layer_a"])["value"].mean().unstack("measure")
    shown = Table(title=f"{len(opened)} runs: mean over pairs, same layer")
    for column in ("epoch", "layer", *summary.columns):
        shown.add_column(str(column))
    for (epoch, layer), row in summary.iterrows():
        shown.add_row(str(epoch), layer, *(f"{v:.3f}" for v in row))
    console.print(shown)
    console.print(f"wrote {out / 'similarity.parquet'} ({len(table):,} rows)")


@app.command()
def findings(
    runs: list[Path] = typer.Argument(
        None, help="Runs, or folders of runs (default sample_runs/)."
    ),
    source: str = typer.Option(
        "eval",
        help="Trace of the trace-based findings: eval (end-of-epoch eval pass) or train "
        "(training minibatches, as Toneva et al. and Swayamdipta et al. score them).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the findings as a JSON list of objects instead of a table."
    ),
) -> None:
    """Check the papers' findings on the runs: the statistic and a verdict for each."""
    import json

    from memdash.analysis.findings import check_all
    from memdash.analysis.store import Run, RunFormatError, discover_runs
    from memdash.analysis.store.sources import SOURCES, check_source

    try:
        check_source(source)
    except ValueError as err:
        _fail(str(err))
    roots = runs or [Path("sample_runs") if Path("sample_runs").is_dir() else REPO_SAMPLE_RUNS]
    opened = []
    notes = Console(stderr=True) if as_json else console  # keep stdout pure JSON
    for path in discover_runs(roots):
        try:
            opened.append(Run.open(path))
        except RunFormatError as err:
            notes.print(f"[yellow]skipped[/] {err}")
    if not opened:
        _fail(f"no runs under {', '.join(map(str, roots))}")
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


def _run_steps(run: Path, only: str, force: bool, make_config, steps) -> None:
    """Run pipeline steps with a status line and a line per finished step."""
    from memdash.analysis.steps.pipeline import analyze as run_analysis
    from memdash.analysis.store import RunFormatError

    started = time.perf_counter()
    try:
        config = make_config()
        with console.status("starting") as status:

            def report(step: str, state: str) -> None:
                if state in ("computed", "up to date"):
                    console.print(f"{step}: {state} ({time.perf_counter() - started:.1f} s)")
                else:
                    status.update(f"{step}: {state}")

            run_analysis(
                run,
                only=list(_names(only)) or None,
                force=force,
                config=config,
                progress=report,
                steps=steps,
            )
    except (RunFormatError, ValueError) as err:
        _fail(str(err))
    except OSError as err:
        _cannot_write(
            err, run, "earlier results are kept; run the same command again once there is room"
        )


@app.command()
def dashboard(
    roots: list[Path] = typer.Argument(
        None, help="Folders to search for runs (default sample_runs/)."
    ),
    port: int = typer.Option(8501, help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", help="Address to serve on."),
) -> None:
    """Serve the Streamlit dashboard over the runs under the roots."""
    if not roots:
        roots = [Path("sample_runs") if Path("sample_runs").is_dir() else REPO_SAMPLE_RUNS]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        _fail(f"no such run root(s): {', '.join(missing)}")
    # the app's file, found by its module name (the dashboard layer is above this one)
    app_file = Path(importlib.util.find_spec("memdash.dashboard.app").origin)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]
    env = dict(os.environ, MEMDASH_ROOTS=os.pathsep.join(str(r.resolve()) for r in roots))
    console.print(
        f"serving the dashboard on http://{host}:{port} over {', '.join(map(str, roots))}"
    )
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # Streamlit replaces this process: signals reach it


if __name__ == "__main__":
    app()
