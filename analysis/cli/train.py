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
    errors_reported,
    refuse_bad_config,
)
from memdash.analysis.cli.basics import console, fail
from memdash.analysis.cli.options import (
    ARCHITECTURE,
    CHUNKING,
    CORRUPTION,
    DATASET,
    DEVICE,
    DP_CLIP,
    DP_DELTA,
    DP_EPSILON,
    DP_NOISE,
    EMBED_DTYPE,
    EMBED_POOL,
    EPOCH_LIST,
    HIDDEN,
    LAYERS,
    OPTIMIZER,
    OPTIONAL_SEED,
    SEED,
    TEXT_CORPUS,
    TOKENIZER,
    ImageSize,
    Seeds,
    dp_options,
    field,
)
from memdash.analysis.cli.specs import TEXT, Numbers, OneOf, option
from memdash.analysis.record.config import (
    LM_MODELS,
    RANGES,
    DataConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    TrainConfig,
)
from memdash.analysis.record.input_forms import STORE_INPUTS


def train(
    out: Path = typer.Option(..., "--out", help="Run directory to create (or resume)."),
    dataset: str = option(
        DATA.dataset, DATASET, "digits, mnist1d, synthetic, npz, folder, hf or text."
    ),
    data_path: str = option(
        None,
        TEXT,
        "npz: file with X, y (and X_test, y_test); folder: DIR/<class>/images, or "
        "DIR/train/<class>/ and DIR/test/<class>/; hf: a dataset saved with save_to_disk; "
        "text: a .txt file, a .jsonl file (--text-column) or a folder of .txt files.",
    ),
    image_size: tuple = option(
        "",
        ImageSize(),
        "folder, hf: resize every image to HxW (e.g. 32x32); default keep the size.",
    ),
    image_column: str = option(DATA.image_column, TEXT, "hf: the column of images."),
    label_column: str = option(DATA.label_column, TEXT, "hf: the column of integer labels."),
    test_fraction: float = option(
        DATA.test_fraction, field("data.test_fraction"), "Test share if no test split."
    ),
    n_examples: int = option(None, field("data.n_examples"), "synthetic/mnist1d: examples in all."),
    shape: tuple = option(
        "64",
        Numbers(RANGES["data.shape"], by_x=True),
        "synthetic: input shape, e.g. 64 or 1x16x16.",
    ),
    n_classes: int = option(
        DATA.n_classes, field("data.n_classes"), "synthetic: number of classes."
    ),
    text_corpus: str = option(
        DATA.text_corpus,
        TEXT_CORPUS,
        "text without --data-path: synthetic (templated English) or python-docs (the "
        "standard library's docstrings).",
    ),
    text_column: str = option(
        None, TEXT, "hf: the column of text (makes a text run); .jsonl: default text."
    ),
    seq_len: int = option(DATA.seq_len, field("data.seq_len"), "text: tokens per sequence."),
    chunking: str = option(
        DATA.chunking, CHUNKING, "text: a sequence per line, or fixed-length chunks."
    ),
    tokenizer: str = option(
        None,
        TOKENIZER,
        "text: byte (UTF-8 bytes), bpe (trained on the data) or hf (the --model-path "
        "checkpoint's own; the default with --model hf, byte otherwise).",
    ),
    vocab_size: int = option(
        DATA.vocab_size, field("data.vocab_size"), "--tokenizer bpe: its vocabulary size."
    ),
    canary_format: str = option(
        DATA.canary_format, TEXT, "text canaries: the secret's format, {d} a random digit."
    ),
    duplicate_sequences: int = option(
        DATA.duplicate_sequences,
        field("data.duplicate_sequences"),
        "text: training sequences repeated at each of --duplicate-counts.",
    ),
    duplicate_counts: tuple = option(
        "1,2,4,8,16,32", field("data.duplicate_counts"), "text: copies of each per epoch."
    ),
    prefix_len: int = option(
        DATA.prefix_len, field("data.prefix_len"), "text extraction: prefix tokens P."
    ),
    suffix_len: int = option(
        DATA.suffix_len, field("data.suffix_len"), "text extraction: suffix tokens S."
    ),
    corruption: str = option(
        DATA.corruption, CORRUPTION, "symmetric (label noise), random_labels or random_inputs."
    ),
    noise: float = option(DATA.noise, field("data.noise"), "Share of training examples corrupted."),
    canaries: int = option(DATA.canaries, field("data.canaries"), "Canaries per repetition count."),
    canary_repeats: tuple = option(
        "1,10,50", field("data.canary_repeats"), "Times each canary appears per epoch."
    ),
    reference_canaries: int = option(
        DATA.reference_canaries, field("data.reference_canaries"), "Never-trained canaries."
    ),
    model: str = option(
        MODEL.name,
        ARCHITECTURE,
        "mlp, cnn or resnet (ResNet-9); on text: gpt (GPT-2 from a config), lstm or hf.",
    ),
    hidden: tuple = option("512,256", HIDDEN, "MLP hidden widths (CNN: its dense width)."),
    channels: tuple = option("32,64", field("model.channels"), "CNN convolution channels."),
    width: int = option(
        MODEL.width,
        field("model.width"),
        "ResNet-9: channels of its first layer (x2, x4, x8); gpt, lstm: hidden size.",
    ),
    n_layers: int = option(
        MODEL.n_layers, field("model.n_layers"), "gpt: blocks; lstm: LSTM layers.", "--layers"
    ),
    n_heads: int = option(MODEL.n_heads, field("model.n_heads"), "gpt: heads.", "--heads"),
    context: int = option(MODEL.context, field("model.context"), "gpt: positions (0 = --seq-len)."),
    model_path: str = option(None, TEXT, "--model hf: a causal LM folder (save_pretrained)."),
    dropout: float = option(
        MODEL.dropout, field("model.dropout"), "Dropout rate after each hidden block."
    ),
    example_tied_dropout: bool = typer.Option(
        False, help="Example-tied dropout after each hidden block (Maini et al.), not dropout."
    ),
    p_fixed: float = option(
        MODEL.p_fixed, field("model.p_fixed"), "Tied dropout: share of channels always kept."
    ),
    p_mem: float = option(
        MODEL.p_mem,
        field("model.p_mem"),
        "Tied dropout: chance an example keeps each other channel.",
    ),
    epochs: int = option(TRAIN.epochs, field("train.epochs"), "Training epochs."),
    batch_size: int = option(TRAIN.batch_size, field("train.batch_size"), "Minibatch size."),
    optimizer: str = option(
        None, OPTIMIZER, "sgd or adam (default sgd; adam for language models)."
    ),
    lr: float = option(
        None, field("train.lr"), "Learning rate (default 0.05; 0.001 for language models)."
    ),
    momentum: float = option(TRAIN.momentum, field("train.momentum"), "SGD momentum."),
    weight_decay: float = option(TRAIN.weight_decay, field("train.weight_decay"), "L2 penalty."),
    device: str = option(TRAIN.device, DEVICE, "torch device, e.g. cpu or cuda."),
    dp_epsilon: float = option(
        None, DP_EPSILON, "DP-SGD: the target epsilon after all epochs (sets the noise)."
    ),
    dp_delta: float = option(None, DP_DELTA, "DP-SGD: delta, below 1/examples (default 1e-5)."),
    dp_clip: float = option(None, DP_CLIP, "DP-SGD: each example's gradient norm C (default 1)."),
    dp_noise: float = option(
        None, DP_NOISE, "DP-SGD: the noise multiplier sigma instead of --dp-epsilon."
    ),
    init_from: Path = typer.Option(
        None, help="Start from another run's weights (e.g. one trained on random labels)."
    ),
    init_epoch: int = option(
        None, field("train.init_epoch"), "--init-from: its checkpoint epoch (default last)."
    ),
    reinit: tuple = option("", LAYERS, "--init-from: layers drawn afresh instead, e.g. out."),
    record_train: bool = typer.Option(
        RECORD.record_train, help="Also record the training minibatches' own statistics."
    ),
    grad_accounting: bool = typer.Option(
        None, help="Clean/flipped gradient norms per layer (default: on with label noise)."
    ),
    embed_layers: tuple = option("", LAYERS, "Layers whose embeddings are stored, e.g. fc2,out."),
    embed_epochs: tuple = option("", EPOCH_LIST, "Epochs at which embeddings are stored."),
    checkpoint_epochs: tuple = option(
        "0", EPOCH_LIST, "Epochs whose weights are stored (0 = init; the last epoch always is)."
    ),
    embed_dtype: str = option(RECORD.embed_dtype, EMBED_DTYPE, "float16 or float32."),
    embed_pool: str = option(
        RECORD.embed_pool, EMBED_POOL, "text: a sequence's embedding, last token or mean."
    ),
    record_loss_sensitivity: bool = typer.Option(
        False, help="Record ||dL/dx||_1 per example and epoch (Arpit et al.), a trace column."
    ),
    critical_examples: int = option(
        0,
        field("record.critical_examples"),
        "Search this many seeded examples for critical samples each epoch (Arpit et al.).",
    ),
    critical_radius: float = option(
        RECORD.critical_radius, field("record.critical_radius"), "Critical samples: L-inf radius."
    ),
    critical_steps: int = option(
        RECORD.critical_steps, field("record.critical_steps"), "Critical samples: search steps."
    ),
    record_curvature: bool = typer.Option(
        False,
        help="Record the input-loss curvature per epoch (Garg, Roy et al. 2023) of the training "
        "split's examples, a trace column (NaN for test and reference examples).",
    ),
    curvature_directions: int = option(
        RECORD.curvature_directions,
        field("record.curvature_directions"),
        "Curvature: Rademacher directions per example (default 10, the authors' code).",
    ),
    curvature_step: float = option(
        RECORD.curvature_step,
        field("record.curvature_step"),
        "Curvature: finite-difference step h (default 0.001, the authors' code).",
    ),
    store_inputs: str = option(
        RECORD.store_inputs,
        OneOf(STORE_INPUTS),
        "How the run keeps its inputs: full (float32 inputs.npy, what localize, estimate and "
        "ssft need), thumbnail (uint8, at most 64x64), path (folder, hf: each example's "
        "source file); auto: full up to 2 GiB of inputs, thumbnail above.",
    ),
    seed: int = option(0, SEED, "The seed every random choice derives from."),
    data_seed: int = option(
        None,
        OPTIONAL_SEED,
        "The seed of the data split, corruption and canaries (default: --seed).",
    ),
    seeds: tuple = option(
        "",
        Seeds(),
        "A seed group: one run per seed (0-4 or 0,3,7) under --out/seed_N, all on the "
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
            seed=data_seed,  # the data's own seed (None: the run's, --seed)
            tokenizer=tokenizer or ("hf" if model == "hf" else DATA.tokenizer),
        ),
        model=config_from(ModelConfig, options, name=model),
        train=config_from(
            TrainConfig,
            options,
            init_from=None if init_from is None else str(init_from),
            optimizer=optimizer or ("adam" if model in LM_MODELS else TRAIN.optimizer),
            lr=lr if lr is not None else (0.001 if model in LM_MODELS else TRAIN.lr),
            dp=dp_options(dp_epsilon, dp_delta, dp_clip, dp_noise),
        ),
        record=config_from(
            RecordConfig,
            options,
            loss_sensitivity=record_loss_sensitivity,
            curvature=record_curvature,
        ),
        seed=seed,
        command=command_line(),
    )
    if not seeds and resume and replace(config, command="") == RunConfig():
        from memdash.analysis.store import Run, RunFormatError

        with errors_reported(RunFormatError):  # no options given: resume with the stored ones
            config = RunConfig.from_dict(Run.open(out).config)
    refuse_bad_config(config)  # what the options' ranges alone cannot tell, before any work
    _say_how_exposure_is_computed(config)
    if seeds:
        shared = replace(config.data, seed=seeds[0] if data_seed is None else data_seed)
        for member in seeds:
            one = replace(config, seed=member, data=shared)
            _train_one(one, out / f"seed_{member}", resume=resume, overwrite=overwrite)
        console.print(f"{len(seeds)} runs of one seed group under [bold]{out}[/]")
        return
    _train_one(config, out, resume=resume, overwrite=overwrite)


def _say_how_exposure_is_computed(config: RunConfig) -> None:
    """A text run's canary format: refused without a digit slot; a note when its space is
    too large to rank exactly, so that its exposure will be extrapolated."""
    from memdash.analysis.record.config import is_text

    if not is_text(config.data) or not config.data.canaries:
        return
    from memdash.analysis.cli.basics import refuse
    from memdash.analysis.record.text.formats import parse_format
    from memdash.analysis.steps.text_exposure import EXACT_LIMIT

    try:
        fmt = parse_format(config.data.canary_format)
    except ValueError as err:
        refuse(str(err))
    if fmt.space_size > EXACT_LIMIT:
        console.print(
            f"note: --canary-format has {fmt.space_size:.0e} candidate secrets, more than the "
            f"{EXACT_LIMIT:.0e} that the exact ranking enumerates: `memdash analyze` will "
            "extrapolate its exposure (a skew-normal fitted to sampled candidates)",
            soft_wrap=True,
        )


def _train_one(config: RunConfig, out: Path, *, resume: bool, overwrite: bool) -> None:
    """Train one run with a progress bar, drawn once its arguments and data are checked."""
    from memdash.analysis.record.config import is_text
    from memdash.analysis.record.training import TrainingError

    if is_text(config.data):
        from memdash.analysis.record.text.training import train_text as run_training
    else:
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
