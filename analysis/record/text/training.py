"""`memdash train` on text: a causal language model trained on sequences while a
`TextRecorder` records it.

The loop is the classifiers' (`memdash.analysis.record.training`): the tokens live as one
tensor on the device, each batch is a tensor of sequence ids in a seeded order, randomness
is derived from the run's seed per epoch, so a resumed run continues exactly as an
uninterrupted one. A batch is cut to its longest sequence; the loss is the mean over the
batch's tokens (every token predicted from BOS and the tokens before it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from memdash.analysis.record.config import RunConfig, validate
from memdash.analysis.record.models import layer_names
from memdash.analysis.record.text.models import CausalLM, build_lm
from memdash.analysis.record.text.prepare import TextPrepared, prepare_text
from memdash.analysis.record.text.recorder import TextRecorder
from memdash.analysis.record.text.scoring import model_inputs
from memdash.analysis.record.text.tokenize import IdTokenizer, Tokenizer, load_tokenizer
from memdash.analysis.record.training import (
    Progress,
    make_optimizer,
    reopen_with_state,
    resumable,
    run_epochs,
)
from memdash.analysis.store import Run, RunFormatError, RunWriter

_EPOCH_SEED_STRIDE = 1_000_003  # as the classifiers': per-epoch seeds of run seeds apart


def data_seed(config: RunConfig) -> int:
    """The seed of the split, the canaries and the duplicates (a seed group shares it)."""
    return config.seed if config.data.seed is None else config.data.seed


def make_lm(config: RunConfig, prepared: TextPrepared) -> CausalLM:
    """The config's language model for the prepared data, initialized from the run's seed."""
    torch.manual_seed(config.seed)
    m = config.model
    return build_lm(
        m.name,
        vocab_size=prepared.tokenizer.vocab_size,
        context=m.context or prepared.tokens.shape[1] + 1,  # BOS and every token
        layers=m.n_layers,
        width=m.width,
        heads=m.n_heads,
        dropout=m.dropout,
        model_path=m.model_path,
        bos=prepared.tokenizer.bos_id,
    )


def run_tokenizer(run: Run) -> Tokenizer:
    """The tokenizer a text run was trained with (run.json's ``text`` and tokenizer.json)."""
    text = run.meta.get("text", {})
    if "tokenizer" not in text:  # recorded from a user's loop without a tokenizer
        vocab = int(text.get("vocab_size") or run.n_classes)
        return IdTokenizer(vocab, int(text.get("bos_id", vocab - 1)))
    return load_tokenizer(text["tokenizer"], run.tokenizer_json(), text.get("bos_id"))


def load_run_lm(run: Run, epoch: int) -> CausalLM:
    """A text run's language model with its weights of `epoch` (a checkpoint), in eval mode.

    Raises
    ------
    RunFormatError
        The checkpoint is missing or damaged, or its weights do not fit the model.
    """
    config = RunConfig.from_dict(run.config)
    m = config.model
    weights = run.checkpoint(epoch)
    positions = weights.get("embed.wpe.weight")  # GPT-2's context, as it was trained
    model = build_lm(
        m.name,
        vocab_size=int(run.meta["text"]["vocab_size"]),
        context=m.context or (len(positions) if positions is not None else run.inputs().shape[1]),
        layers=m.n_layers,
        width=m.width,
        heads=m.n_heads,
        dropout=m.dropout,
        model_path=m.model_path,
        bos=int(run.meta["text"]["bos_id"]),
    )
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:  # a checkpoint of another shape
        first = str(err).splitlines()[0]
        raise RunFormatError(
            run.path, f"checkpoints/epoch_{epoch:03d}.safetensors", f"does not fit: {first}"
        ) from None
    return model.eval()


def run_meta(prepared: TextPrepared) -> dict[str, Any]:
    """What run.json says of a text run besides its config (docs/run-format.md)."""
    tok = prepared.tokenizer
    return {
        "modality": "text",
        "text": {
            "tokenizer": tok.kind,
            "vocab_size": int(tok.vocab_size),
            "bos_id": int(tok.bos_id),
            "entropy_bits": prepared.entropy_bits,
        },
    }


def create_text_run(
    out: str | Path,
    config: RunConfig,
    prepared: TextPrepared,
    model: CausalLM,
    *,
    overwrite: bool = False,
) -> RunWriter:
    """A new text run directory: run.json, examples, tokens (inputs.npy) and the tokenizer."""
    writer = RunWriter.create(
        out,
        config=config.to_dict(),
        examples=prepared.examples,
        inputs=prepared.tokens.astype(np.int32),
        n_classes=prepared.tokenizer.vocab_size,
        layers=layer_names(model),
        overwrite=overwrite,
        extra=run_meta(prepared),
    )
    saved = prepared.tokenizer.to_json()
    if saved is not None:
        writer.write_tokenizer(saved)
    return writer


def train_text(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_start: Callable[[], None] | None = None,
) -> Path:
    """Train the text run a config describes into `out` (see `record.training.train`)."""
    validate(config)
    out = Path(out)
    config, resume, overwrite = resumable(out, config, resume=resume, overwrite=overwrite)
    prepared = prepare_text(config.data, data_seed(config), model_path=config.model.model_path)
    device = torch.device(config.train.device)
    model = make_lm(config, prepared).to(device)
    _check_model(config, prepared, model)  # before anything is written
    opt = make_optimizer(config, model)
    if resume:
        writer = reopen_with_state(out, model, opt)
    else:
        writer = create_text_run(out, config, prepared, model, overwrite=overwrite)
    tokens = torch.from_numpy(prepared.tokens.astype(np.int64)).to(device)
    r = config.record
    examples = prepared.examples
    recorder = TextRecorder(
        writer,
        model,
        tokens,
        bos=prepared.tokenizer.bos_id,
        prefix_len=examples["prefix_len"].to_numpy(),
        suffix_len=examples["suffix_len"].to_numpy(),
        split=examples["split"].to_numpy(),
        embed_pool=r.embed_pool,
        record_train=r.record_train,
        embed_layers=r.embed_layers,
        embed_epochs=r.embed_epochs,
        checkpoint_epochs=sorted({*r.checkpoint_epochs, config.train.epochs}),
        embed_dtype=r.embed_dtype,
        eval_batch_size=r.eval_batch_size,
    )
    train_ids = torch.from_numpy(prepared.train_ids).to(device)
    run_epochs(
        recorder,
        model,
        opt,
        config.train.epochs,
        lambda epoch: train_text_epoch(model, opt, recorder, tokens, train_ids, config, epoch),
        resume=resume,
        progress=progress,
        on_start=on_start,
    )
    recorder.finish("complete")
    return out


def _check_model(config: RunConfig, prepared: TextPrepared, model: CausalLM) -> None:
    """Refuse, naming the option, embedding layers the model does not have and sequences
    longer than its context (a checkpoint's own ``n_positions``)."""
    layers = layer_names(model)
    unknown = sorted(set(config.record.embed_layers) - set(layers))
    if unknown:
        raise ValueError(
            f"--embed-layers {','.join(config.record.embed_layers)}: unknown embedding layers "
            f"{unknown}; the model's layers: {layers}"
        )
    length = prepared.tokens.shape[1]
    needed = length + 1 if config.record.embed_layers else length  # embeddings read BOS too
    if model.context is not None and needed > model.context:
        most = model.context - (needed - length)
        raise ValueError(
            f"--seq-len {length}: sequences of {length} tokens (with BOS, for embeddings) "
            f"exceed the model's context of {model.context} positions; use --seq-len {most} "
            "or less"
        )


def train_text_epoch(
    model: CausalLM,
    opt: torch.optim.Optimizer,
    recorder: TextRecorder,
    tokens: torch.Tensor,
    train_ids: torch.Tensor,
    config: RunConfig,
    epoch: int,
) -> None:
    """One epoch over `train_ids` in a seeded order, recording as it goes."""
    seed = config.seed * _EPOCH_SEED_STRIDE + epoch
    torch.manual_seed(seed)  # dropout masks of this epoch
    order = torch.randperm(len(train_ids), generator=torch.Generator().manual_seed(seed))
    lengths = (tokens >= 0).sum(1)
    model.train()
    for ids in torch.split(train_ids[order.to(train_ids.device)], config.train.batch_size):
        width = int(lengths[ids].max())
        batch = tokens[ids][:, :width]
        inputs, mask = model_inputs(batch, recorder.bos)
        logits = model(inputs)
        losses = F.cross_entropy(
            logits.flatten(0, 1), batch.clamp(min=0).flatten(), reduction="none"
        )
        loss = (losses * mask.flatten()).sum() / mask.sum()
        recorder.log_batch(ids, logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
