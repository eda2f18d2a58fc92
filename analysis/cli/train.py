"""`memdash train`: a run (or a seed group of runs) trained and recorded from the options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memdash.analysis.cli._common import (
    DATA,
    MODEL,
    RECORD,
    TRAIN,
    cannot_write,
    command_line,
    config_from,
    console,
    errors_reported,
    fail,
    parse_image_size,
    parse_ints,
    parse_names,
)
from memdash.analysis.record.config import (
    DataConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    TrainConfig,
)


def train(
    out: Path = typer.Option(..., "--out", help="Run directory to create (or resume)."),
    dataset: str = typer.Option(
        DATA.dataset, help="digits, mnist1d, synthetic, npz, folder or hf."
    ),
    data_path: str = typer.Option(
        None,
        help="npz: file with X, y (and X_test, y_test); folder: DIR/<class>/images, or "
        "DIR/train/<class>/ and DIR/test/<class>/; hf: a dataset saved with save_to_disk.",
    ),
    image_size: str = typer.Option(
        "", help="folder, hf: resize every image to HxW (e.g. 32x32); default keep the size."
    ),
    image_column: str = typer.Option(DATA.image_column, help="hf: the column of images."),
    label_column: str = typer.Option(DATA.label_column, help="hf: the column of integer labels."),
    test_fraction: float = typer.Option(DATA.test_fraction, help="Test share if no test split."),
    n_examples: int = typer.Option(None, help="synthetic/mnist1d: examples in all."),
    shape: str = typer.Option("64", help="synthetic: input shape, e.g. 64 or 1x16x16."),
    n_classes: int = typer.Option(DATA.n_classes, help="synthetic: number of classes."),
    corruption: str = typer.Option(
        DATA.corruption, help="symmetric (label noise), random_labels or random_inputs."
    ),
    noise: float = typer.Option(DATA.noise, help="Share of training examples corrupted."),
    canaries: int = typer.Option(DATA.canaries, help="Canaries per repetition count."),
    canary_repeats: str = typer.Option("1,10,50", help="Times each canary appears per epoch."),
    reference_canaries: int = typer.Option(DATA.reference_canaries, help="Never-trained canaries."),
    model: str = typer.Option(MODEL.name, help="mlp, cnn or resnet (ResNet-9)."),
    hidden: str = typer.Option("512,256", help="MLP hidden widths (CNN: its dense width)."),
    channels: str = typer.Option("32,64", help="CNN convolution channels."),
    width: int = typer.Option(
        MODEL.width, help="ResNet-9: channels of its first layer (x2, x4, x8)."
    ),
    dropout: float = typer.Option(MODEL.dropout, help="Dropout rate after each hidden block."),
    example_tied_dropout: bool = typer.Option(
        False, help="Example-tied dropout after each hidden block (Maini et al.), not dropout."
    ),
    p_fixed: float = typer.Option(
        MODEL.p_fixed, help="Tied dropout: share of channels always kept."
    ),
    p_mem: float = typer.Option(
        MODEL.p_mem, help="Tied dropout: chance an example keeps each other channel."
    ),
    epochs: int = typer.Option(TRAIN.epochs, help="Training epochs."),
    batch_size: int = typer.Option(TRAIN.batch_size, help="Minibatch size."),
    optimizer: str = typer.Option(TRAIN.optimizer, help="sgd or adam."),
    lr: float = typer.Option(TRAIN.lr, help="Learning rate."),
    momentum: float = typer.Option(TRAIN.momentum, help="SGD momentum."),
    weight_decay: float = typer.Option(TRAIN.weight_decay, help="L2 penalty."),
    device: str = typer.Option(TRAIN.device, help="torch device, e.g. cpu or cuda."),
    init_from: Path = typer.Option(
        None, help="Start from another run's weights (e.g. one trained on random labels)."
    ),
    init_epoch: int = typer.Option(None, help="--init-from: its checkpoint epoch (default last)."),
    reinit: str = typer.Option("", help="--init-from: layers drawn afresh instead, e.g. out."),
    record_train: bool = typer.Option(
        RECORD.record_train, help="Also record the training minibatches' own statistics."
    ),
    grad_accounting: bool = typer.Option(
        None, help="Clean/flipped gradient norms per layer (default: on with label noise)."
    ),
    embed_layers: str = typer.Option("", help="Layers whose embeddings are stored, e.g. fc2,out."),
    embed_epochs: str = typer.Option("", help="Epochs at which embeddings are stored."),
    checkpoint_epochs: str = typer.Option(
        "0", help="Epochs whose weights are stored (0 = init; the last epoch always is)."
    ),
    embed_dtype: str = typer.Option(RECORD.embed_dtype, help="float16 or float32."),
    record_loss_sensitivity: bool = typer.Option(
        False, help="Record ||dL/dx||_1 per example and epoch (Arpit et al.), a trace column."
    ),
    critical_examples: int = typer.Option(
        0, help="Search this many seeded examples for critical samples each epoch (Arpit et al.)."
    ),
    critical_radius: float = typer.Option(
        RECORD.critical_radius, help="Critical samples: L-inf radius."
    ),
    critical_steps: int = typer.Option(
        RECORD.critical_steps, help="Critical samples: search steps."
    ),
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
    options = dict(locals())  # each option named after a config field fills it
    config = RunConfig(
        data=config_from(
            DataConfig,
            options,
            path=data_path,
            shape=parse_ints(shape, "--shape"),
            image_size=parse_image_size(image_size),
            canary_repeats=parse_ints(canary_repeats, "--canary-repeats"),
            seed=data_seed,  # the data's own seed (None: the run's, --seed)
        ),
        model=config_from(
            ModelConfig,
            options,
            name=model,
            hidden=parse_ints(hidden, "--hidden"),
            channels=parse_ints(channels, "--channels"),
        ),
        train=config_from(
            TrainConfig,
            options,
            init_from=None if init_from is None else str(init_from),
            reinit=parse_names(reinit),
        ),
        record=config_from(
            RecordConfig,
            options,
            embed_layers=parse_names(embed_layers),
            embed_epochs=parse_ints(embed_epochs, "--embed-epochs"),
            checkpoint_epochs=parse_ints(checkpoint_epochs, "--checkpoint-epochs"),
            loss_sensitivity=record_loss_sensitivity,
        ),
        seed=seed,
        command=command_line(),
    )
    if seeds:
        group = _seed_list(seeds)
        shared = replace(config.data, seed=group[0] if data_seed is None else data_seed)
        for member in group:
            one = replace(config, seed=member, data=shared)
            _train_one(one, out / f"seed_{member}", resume=resume, overwrite=overwrite)
        console.print(f"{len(group)} runs of one seed group under [bold]{out}[/]")
        return
    if resume and replace(config, command="") == RunConfig():
        from memdash.analysis.store import Run, RunFormatError

        with errors_reported(RunFormatError):  # no options given: resume with the stored ones
            config = RunConfig.from_dict(Run.open(out).config)
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

    try:  # an error prints below the stopped bar
        run_training(
            config, out, resume=resume, overwrite=overwrite, progress=progress, on_start=start
        )
    except (ValueError, TrainingError, FileExistsError) as err:
        bar.stop()
        fail(str(err))
    except OSError as err:
        bar.stop()
        cannot_write(err, out, "the run keeps its complete epochs: make room, then add --resume")
    finally:
        bar.stop()
    console.print(
        f"run written to [bold]{out}[/]; explore it with `memdash dashboard {out.parent}`"
    )
