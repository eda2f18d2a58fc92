"""`memdash estimate`: held-out memorization scores and C-scores from many models trained on
random subsets of a run's data (or of a new run made for it)."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import typer

from memdash.analysis.cli._common import (
    DATA,
    MODEL,
    TRAIN,
    command_line,
    errors_reported,
    refuse_bad_config,
)
from memdash.analysis.cli.basics import console, refuse
from memdash.analysis.cli.footprint import unfit
from memdash.analysis.cli.options import (
    ARCHITECTURE,
    BACKEND,
    BUDGET,
    CORRUPTION,
    DATASET,
    DP_CLIP,
    DP_DELTA,
    DP_EPSILON,
    DP_NOISE,
    HIDDEN,
    MODELS_PER_BATCH,
    MODELS_PER_RATIO,
    RATIOS,
    SEED,
    SUBSET,
    WORKERS,
    dp_options,
    field,
)
from memdash.analysis.cli.specs import TEXT, option
from memdash.analysis.record.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    is_text,
)

TEXT_SUBSET = 0.5  # Zhang et al. 2021 train on random halves of the sequences
TEXT_MODELS_PER_BATCH = 2  # a text batch trains its models one after another: small jobs
TEXT_NEEDS_RUN = (
    "--out with --dataset text: a text estimate is made of a trained text run; train it "
    "(memdash train --dataset text --out RUN), then memdash estimate --like RUN"
)


def estimate(
    like: Path = typer.Option(None, help="Estimate for this run: its data, model and training."),
    out: Path = typer.Option(None, help="Or create a new run here from the options below."),
    dataset: str = option(DATA.dataset, DATASET, "New run: digits, mnist1d, synthetic or npz."),
    data_path: str = option(None, TEXT, "New run, npz: file with X, y."),
    n_examples: int = option(
        None, field("data.n_examples"), "New run, synthetic/mnist1d: examples in all."
    ),
    corruption: str = option(DATA.corruption, CORRUPTION, "New run: the label corruption."),
    noise: float = option(
        DATA.noise, field("data.noise"), "New run: share of training examples corrupted."
    ),
    model: str = option(MODEL.name, ARCHITECTURE, "New run: mlp or cnn."),
    hidden: tuple = option("512,256", HIDDEN, "New run: hidden widths."),
    epochs: int = option(
        TRAIN.epochs, field("train.epochs"), "New run: training epochs of every model."
    ),
    batch_size: int = option(
        TRAIN.batch_size, field("train.batch_size"), "New run: minibatch size."
    ),
    lr: float = option(TRAIN.lr, field("train.lr"), "New run: learning rate."),
    data_seed: int = option(0, SEED, "New run: the seed of its data and corruption."),
    models: int = option(256, MODELS_PER_RATIO, "Models per subset ratio."),
    subset: float = option(
        None, SUBSET, "Share of the training set each model trains on (default 0.7; text: 0.5)."
    ),
    ratios: tuple = option("", RATIOS, "Several subset ratios for the C-score, e.g. 0.1,0.5,0.9."),
    models_per_batch: int = option(
        None, MODELS_PER_BATCH, "Models trained at once, the unit of work (default 16; text: 2)."
    ),
    seed: int = option(0, SEED, "The seed of every model's initialization, subset, order."),
    budget: tuple = option(
        "", BUDGET, "Reference-model counts of the attack-power sweep (default 1,2,4,...)."
    ),
    dp_epsilon: float = option(
        None, DP_EPSILON, "DP-SGD for every model: the target epsilon (default: the run's)."
    ),
    dp_delta: float = option(None, DP_DELTA, "DP-SGD: delta (default 1e-5)."),
    dp_clip: float = option(None, DP_CLIP, "DP-SGD: each example's gradient norm C (default 1)."),
    dp_noise: float = option(None, DP_NOISE, "DP-SGD: the noise multiplier, not --dp-epsilon."),
    backend: str = option("local", BACKEND, "local (this machine's cores) or ray."),
    address: str = option(None, TEXT, "ray: the address of an existing cluster."),
    workers: int = option(None, WORKERS, "local processes or local Ray CPUs (default: all)."),
    overwrite: bool = typer.Option(False, help="Discard an earlier estimate in the run."),
) -> None:
    """Held-out memorization scores (Feldman & Zhang) and C-scores from many models trained
    on random subsets; resumable, local or on Ray."""

    from memdash.analysis.ensemble.estimate import EstimateSpec
    from memdash.analysis.ensemble.estimate import estimate as run_estimate
    from memdash.analysis.store import Run, RunFormatError

    if (like is None) == (out is None):
        refuse("give either --like RUN (an existing run) or --out DIR (a new one)")
    run = like or out
    new = out is not None and (overwrite or not (out / "run.json").exists())
    config = RunConfig(
        data=DataConfig(
            dataset=dataset,
            path=data_path,
            n_examples=n_examples,
            corruption=corruption,
            noise=noise,
        ),
        model=ModelConfig(name=model, hidden=hidden),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr),
        seed=data_seed,
        command=command_line(),
    )
    if new and is_text(config.data):
        refuse(TEXT_NEEDS_RUN)
    if new:
        models_per_batch = models_per_batch or 16
        refuse_bad_config(config, models=models_per_batch)
    else:  # the run's own config: only whether its batch of models fits (on the cpu)
        with errors_reported(RunFormatError, ValueError):
            config = RunConfig.from_dict(Run.open(run).config)
        text_default = TEXT_MODELS_PER_BATCH if is_text(config.data) else 16
        models_per_batch = models_per_batch or text_default
        cpu = replace(config, train=replace(config.train, device="cpu"))
        problem = unfit(cpu, models=1 if is_text(config.data) else models_per_batch)
        if problem is not None:
            refuse(problem)
        if is_text(config.data) and len(ratios) > 1:
            refuse(f"--ratios {','.join(map(str, ratios))}: a text estimate takes one --subset")
    text = is_text(config.data)
    _check_budget(budget, models)
    dp = _dp(config, dp_options(dp_epsilon, dp_delta, dp_clip, dp_noise), text)
    kept = "the model batches already done are kept; run it again to resume"
    with errors_reported(written=run, kept=kept):
        spec = EstimateSpec(
            ratios=ratios or (subset or (TEXT_SUBSET if text else 0.7),),
            models=models,
            models_per_batch=models_per_batch,
            seed=seed,
            dp=dp,
            budget=tuple(budget),
        )
        if new:
            _new_estimate_run(out, config)
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
        stored: list[int] = []  # the batches already on disk: the first report's count
        with console.status("estimating") as status:

            def report(done: int, total: int) -> None:
                stored[:] = stored or [done]
                status.update(
                    f"model batches {done}/{total} ({time.perf_counter() - started:.0f} s)"
                )

            tables = run_estimate(
                run, spec, backend=backend, address=address, workers=workers, progress=report
            )
    made = _made(len(spec.batches()), stored[0] if stored else 0, time.perf_counter() - started)
    if text:
        _report_text(tables, f"{models} language models: {made}", run)
        return
    held = tables["heldout.parquet"]
    console.print(
        f"{models} models x {len(spec.ratios)} ratio(s): {made}; mean mem_score "
        f"{held['mem_score'].mean():.3f}; wrote {run}/derived/heldout.parquet and influence.parquet"
    )


def _made(batches: int, stored: int, seconds: float) -> str:
    """What this call did, in words: how many model batches it trained, or that it derived
    the scores again from batches all stored before."""
    if stored >= batches:
        return f"every batch was stored, scores derived again in {seconds:.0f} s"
    return f"{batches - stored} of {batches} model batches trained in {seconds:.0f} s"


def _check_budget(budget: tuple, models: int) -> None:
    """Refuse, before any work, a sweep point the estimate's models cannot give: each count
    of reference models leaves the sweep's fixed target models out."""
    from memdash.analysis.measures.attack_budget import default_targets

    most = models - default_targets(models)
    if budget and max(budget) > most:
        refuse(
            f"--budget {max(budget)}: an estimate of {models} models has at most {most} "
            f"reference models beside its {default_targets(models)} target models; ask for "
            "more --models or a smaller --budget"
        )


def _dp(config: RunConfig, given, text: bool):
    """The estimate's DP-SGD options: those given, else those the run trained with (its
    target epsilon or noise, resolved again for the subsets); refused for a text run or a
    model the stacked ensemble cannot train privately, before any work."""
    from memdash.analysis.ensemble.dp_batched import check_dp_estimate

    dp = given if given is not None else config.train.dp
    if dp is None:
        return None
    if text:
        refuse("--dp-epsilon/--dp-noise: DP-SGD is for classifiers, not text estimates")
    if given is None and dp.epsilon is not None:  # the run's target: a new noise for subsets
        dp = replace(dp, noise_multiplier=None)
    try:
        check_dp_estimate(config)
    except ValueError as err:
        refuse(str(err))
    return dp


def _report_text(tables: dict, made: str, run: Path) -> None:
    """What a text estimate made, in two lines."""
    cf = tables["counterfactual.parquet"]
    console.print(
        f"{made}; median counterfactual memorization "
        f"{cf['cf_mem_accuracy'].median():.3f} (token accuracy), "
        f"{cf['cf_mem_loglik'].median():.2f} nats (log-likelihood); wrote "
        f"{run}/derived/counterfactual.parquet, membership.parquet and membership_roc.parquet"
    )


def _new_estimate_run(out: Path, config: RunConfig) -> None:
    """A run directory holding only the data of an estimate (no training trace)."""
    from memdash.analysis.record.config import validate
    from memdash.analysis.record.training import create_run, make_model, prepare_data

    config = replace(config, record=replace(config.record, store_inputs="full"))  # it trains
    validate(config)
    prepared = prepare_data(config)
    model = make_model(config, prepared.inputs.shape[1:], prepared.n_classes)
    create_run(out, config, prepared, model, overwrite=True).finish("complete", estimate_only=True)
