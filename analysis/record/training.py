"""`memdash train`: train a model on a prepared dataset while a TraceRecorder records it.

The loop follows airbench: the data live as tensors on the device, each batch
is a tensor of example ids, per-example losses (``reduction="none"``) feed the
recorder. Randomness is derived from the run's seed per epoch (data order and
dropout), so a run resumed after epoch k continues exactly as an uninterrupted
run with the same seed would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from memdash.analysis.record.config import RunConfig, validate
from memdash.analysis.record.corruption import Prepared, prepare
from memdash.analysis.record.data import load_dataset
from memdash.analysis.record.dp import DPTraining, resolved
from memdash.analysis.record.models import from_config, layer_names
from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.record.tied_dropout import MODES, example_ids, tied_mode
from memdash.analysis.store import Run, RunFormatError, RunWriter

_EPOCH_SEED_STRIDE = 1_000_003  # keeps per-epoch seeds of different run seeds apart

Progress = Callable[[int, int, dict[str, float]], None]


class TrainingError(RuntimeError):
    """Training could not go on (diverged, or a resume that does not match its run)."""


def prepare_data(config: RunConfig) -> Prepared:
    """Load and corrupt the dataset a config names."""
    d = config.data
    seed = config.seed if d.seed is None else d.seed  # a seed group shares its data
    data = load_dataset(
        d.dataset,
        seed=seed,
        test_fraction=d.test_fraction,
        path=d.path,
        n_examples=d.n_examples,
        shape=d.shape,
        n_classes=d.n_classes,
        image_size=None if d.image_size is None else tuple(d.image_size),
        image_column=d.image_column,
        label_column=d.label_column,
    )
    return prepare(
        data,
        corruption=d.corruption,
        noise=d.noise,
        canaries=d.canaries,
        canary_repeats=d.canary_repeats,
        reference_canaries=d.reference_canaries,
        seed=seed,
    )


def initial_weights(model: torch.nn.Module, config: RunConfig) -> dict[str, Any] | None:
    """Load another run's checkpoint into `model` (``train.init_from``), all but the
    ``train.reinit`` layers, which keep the fresh draw of this run's seed. Returns what
    run.json records about it, or None when the run starts from scratch.

    Raises
    ------
    TrainingError
        When the source run, its checkpoint or a layer is missing, or a shape differs.
    """
    t = config.train
    if t.init_from is None:
        return None
    try:
        source = Run.open(t.init_from)
        stored = source.checkpoint_epochs()
        if not stored:
            raise TrainingError(f"--init-from {source.path}: the run stored no checkpoint")
        epoch = stored[-1] if t.init_epoch is None else t.init_epoch
        weights = source.checkpoint(epoch)
    except RunFormatError as err:
        raise TrainingError(f"--init-from {t.init_from}: {err}") from None
    layers = layer_names(model)
    unknown = [name for name in t.reinit if name not in layers]
    if unknown:
        raise TrainingError(f"--reinit: no layer {unknown}; the model's layers are {layers}")
    own = model.state_dict()
    kept = {k: v for k, v in weights.items() if k.split(".")[0] not in t.reinit}
    wanted = {k for k in own if k.split(".")[0] not in t.reinit}
    if set(kept) != wanted or any(own[k].shape != v.shape for k, v in kept.items()):
        differ = sorted(k for k in wanted if k not in kept or own[k].shape != kept[k].shape)
        raise TrainingError(
            f"--init-from {source.path} epoch {epoch}: its weights do not fit this model "
            f"(first mismatches: {differ[:3] or sorted(set(kept) - wanted)[:3]}); train the "
            "same architecture, or --reinit the layers that differ"
        )
    model.load_state_dict(own | kept)
    return {"run": str(source.path), "name": source.name, "epoch": epoch, "reinit": list(t.reinit)}


def make_model(config: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> torch.nn.Module:
    """The config's model, initialized from the run's seed."""
    torch.manual_seed(config.seed)
    m = config.model
    tied = (m.p_fixed, m.p_mem, config.seed) if m.example_tied_dropout else None
    return from_config(m, input_shape, n_classes, tied=tied)


def make_optimizer(
    config: RunConfig, model: torch.nn.Module | Iterable[torch.Tensor], **options: Any
) -> torch.optim.Optimizer:
    """The config's optimizer over a model's parameters (or the given tensors).

    Both optimizers act element by element, so one optimizer over stacked
    parameters of K models equals K optimizers (`memdash.analysis.ensemble.batched`).
    `options` go to the optimizer (e.g. ``fused=True``).
    """
    t = config.train
    params = model.parameters() if isinstance(model, torch.nn.Module) else model
    if t.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, **options
        )
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, **options)
    raise ValueError(f"unknown optimizer {t.optimizer!r}; valid: sgd, adam")


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as (tensors, JSON-able metadata), for safetensors."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def resume_state(epoch: int, model, opt) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = optimizer_state(opt)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    return tensors, {"epoch": epoch, **meta}


def to_device(model: torch.nn.Module, inputs, device: torch.device):
    """Move the model and the inputs (a numpy array) to the device, in the fastest layout.

    Image batches (N, C, H, W) use channels_last: on CPUs it halves the time of
    the convolutions' pooling and of the eval pass. Numerics stay deterministic.
    """
    x = torch.from_numpy(inputs).to(device)
    model = model.to(device)
    if x.ndim == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x


def grad_accounting_on(config: RunConfig) -> bool:
    """Gradient accounting defaults to on for runs with label noise."""
    flag = config.record.grad_accounting
    return (
        flag
        if flag is not None
        else config.data.noise > 0 and config.data.corruption != ("random_inputs")
    )


def train(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_start: Callable[[], None] | None = None,
) -> Path:
    """Train the run a config describes into `out`, recording as configured.

    With `resume`, continue the run in `out` after its last complete epoch;
    its stored config must equal `config` (apart from the command line).
    `on_start` is called once the config, the data and the run directory have
    been checked and set up, just before the first epoch (a progress bar is
    drawn from there, never before an error in the arguments).
    """
    validate(config)
    out = Path(out)
    prepared = prepare_data(config)
    device = torch.device(config.train.device)
    fresh = make_model(config, prepared.inputs.shape[1:], prepared.n_classes)
    config = resolved(config, fresh, len(prepared.train_ids))  # DP: model checked, noise set
    config, resume, overwrite = resumable(out, config, resume=resume, overwrite=overwrite)
    init = initial_weights(fresh, config) if not resume else None
    model, inputs = to_device(fresh, prepared.inputs, device)
    opt = make_optimizer(config, model)
    rec_cfg = config.record
    if resume:
        writer = reopen_with_state(out, model, opt)
    else:
        writer = create_run(out, config, prepared, model, overwrite=overwrite)
        if init is not None:  # where the weights came from, beside the config
            writer.meta["init_from"] = init
    labels = torch.tensor(prepared.examples["label"].to_numpy(), device=device)
    is_noisy = torch.tensor(prepared.examples["is_noisy"].to_numpy(), device=device)
    dp = config.train.dp and DPTraining(config, model, opt, len(prepared.train_ids))  # DP-SGD
    recorder = TraceRecorder(
        writer,
        model,
        inputs,
        labels,
        is_noisy=is_noisy,
        record_train=rec_cfg.record_train,
        grad_accounting=grad_accounting_on(config),
        embed_layers=rec_cfg.embed_layers,
        embed_epochs=rec_cfg.embed_epochs,
        checkpoint_epochs=sorted({*rec_cfg.checkpoint_epochs, config.train.epochs}),
        embed_dtype=rec_cfg.embed_dtype,
        loss_sensitivity=rec_cfg.loss_sensitivity,
        critical=_critical_search(config),
        curvature=(
            (rec_cfg.curvature_directions, rec_cfg.curvature_step, config.seed)
            if rec_cfg.curvature
            else None
        ),
        eval_batch_size=rec_cfg.eval_batch_size,
        split=prepared.examples["split"].to_numpy(),
        run_json=dp.run_json if dp else None,  # the epsilon spent
    )
    step = dp.train_epoch if dp else train_epoch
    train_ids = torch.from_numpy(prepared.train_ids).to(device)
    run_epochs(
        recorder,
        model,
        opt,
        config.train.epochs,
        lambda epoch: step(model, opt, recorder, inputs, labels, train_ids, config, epoch),
        resume=resume,
        progress=progress,
        on_start=on_start,
    )
    extra = {}
    if config.model.example_tied_dropout:
        extra["example_tied_dropout"] = {}
        for mode in MODES:
            with tied_mode(model, mode):
                extra["example_tied_dropout"][mode] = recorder.group_accuracies()
    recorder.finish("complete", **extra)
    return out


def resumable(
    out: Path, config: RunConfig, *, resume: bool, overwrite: bool
) -> tuple[RunConfig, bool, bool]:
    """(config, resume, overwrite) as training goes on: with `resume`, the stored config
    (which must equal `config`); a run stopped before epoch 0 was stored starts again from
    the top (no resume, overwrite)."""
    if resume:
        config = check_resumable(out, config)
        if Run.open(out).status == "created":  # stopped before epoch 0 was stored
            resume, overwrite = False, True  # start it again from the top
    return config, resume, overwrite


def reopen_with_state(out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> RunWriter:
    """Reopen a run to resume it, loading its last epoch's model and optimizer state."""
    writer = RunWriter.reopen(out)
    tensors, meta = Run.open(out).resume_state()
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    load_optimizer_state(opt, tensors, meta)
    return writer


def run_epochs(
    recorder: TraceRecorder,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    epochs: int,
    train_one: Callable[[int], None],
    *,
    resume: bool,
    progress: Progress | None,
    on_start: Callable[[], None] | None,
) -> None:
    """Record epoch 0 (unless resuming), then train and record each epoch after the run's
    last complete one up to `epochs` (`train_one(epoch)` trains it). A diverged or
    interrupted run is marked failed with its complete epochs kept; a full disk is said in
    run.json where there is room, a run still ``created`` stays so (resume restarts it)."""
    writer = recorder.writer
    if on_start is not None:
        on_start()
    try:
        if not resume:
            recorder.end_epoch(0, resume_state=resume_state(0, model, opt))
        for epoch in range(writer.epochs_completed + 1, epochs + 1):
            with recorder.clock.part("train"):  # run.json's timing: the minibatch loop
                train_one(epoch)
            check_finite(model, epoch)
            summary = recorder.end_epoch(epoch, resume_state=resume_state(epoch, model, opt))
            if progress is not None:
                progress(epoch, epochs, summary)
    except (TrainingError, KeyboardInterrupt) as err:
        recorder.flush()  # epochs already handed over are kept
        writer.finish("failed", error=str(err) or type(err).__name__)
        raise
    except OSError as err:  # a full disk: say so in run.json if there is room for that
        if writer.meta["status"] != "created":  # a created run stays one: resume restarts it
            with contextlib.suppress(OSError):
                writer.finish("failed", error=f"cannot write: {err}")
        raise


def create_run(
    out: str | Path,
    config: RunConfig,
    prepared: Prepared,
    model: torch.nn.Module,
    *,
    overwrite: bool = False,
) -> RunWriter:
    """A new run directory holding the config, examples and inputs (nothing trained yet)."""
    return RunWriter.create(
        out,
        config=config.to_dict(),
        examples=prepared.examples,
        inputs=prepared.inputs,
        n_classes=prepared.n_classes,
        layers=layer_names(model),
        overwrite=overwrite,
        input_form=config.record.store_inputs,  # auto: full up to 2 GiB, thumbnails above
        sources=prepared.sources,  # --store-inputs path: each example's file
    )


def train_epoch(model, opt, recorder: TraceRecorder, inputs, labels, train_ids, config, epoch):
    """One epoch over `train_ids` in a seeded order, recording as it goes."""
    seed = config.seed * _EPOCH_SEED_STRIDE + epoch
    torch.manual_seed(seed)  # dropout masks of this epoch
    order = torch.randperm(len(train_ids), generator=torch.Generator().manual_seed(seed))
    model.train()
    for ids in torch.split(train_ids[order.to(train_ids.device)], config.train.batch_size):
        with example_ids(model, ids):
            logits = model(inputs[ids])
        losses = F.cross_entropy(logits, labels[ids], reduction="none")
        recorder.log_batch(ids, logits)
        opt.zero_grad(set_to_none=True)
        recorder.backward(ids, losses)
        opt.step()


def check_finite(model: torch.nn.Module, epoch: int) -> None:
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise TrainingError(
            f"training diverged in epoch {epoch}: the weights are NaN or infinite "
            "(a NaN or infinite loss); epochs before it are kept. Try a lower --lr."
        )


def _critical_search(config: RunConfig) -> tuple[int, float, int, int] | None:
    """The recorder's critical-sample search: (subset size, radius, steps, seed), or None."""
    r = config.record
    if not r.critical_examples:
        return None
    return r.critical_examples, r.critical_radius, r.critical_steps, config.seed


def check_resumable(out: Path, config: RunConfig) -> RunConfig:
    run = Run.open(out)
    stored = RunConfig.from_dict(run.config)
    if replace(stored, command="") != replace(config, command=""):
        raise TrainingError(
            f"run {out} was made with a different configuration; resume it with the same "
            f"options (stored: {stored}) or omit options to reuse the stored ones"
        )
    if run.status == "complete" and run.epochs_completed >= stored.train.epochs:
        raise TrainingError(f"run {out} is already complete ({run.epochs_completed} epochs)")
    return stored
