"""Causal-LM fine-tuning under the Hugging Face ``Trainer``, recorded as a memdash text run.

``TraceCallback(path, train_set, test_set, task="causal_lm", tokenizer=tok)``
(`memdash.integrations.transformers`) records through the `CausalLMRecording` of this
module: a text run (docs/run-format.md, "Text runs") whose examples are the items'
sequences, traced by a `TextRecorder` like a `memdash train --dataset text` run.

Alignment. The Trainer's model reads an item's ``input_ids`` and its logits at position j
predict input j + 1 (its loss shifts the labels). A memdash text run stores each sequence's
tokens and its models read ``[BOS] + tokens[:-1]``, so position t predicts token t, the first
from BOS alone. Two cases:

- every item begins with the BOS id (a tokenizer that adds it, or ids prepended with
  ``tokenizer.bos_token_id``): the run stores the tokens after it. The eval pass then reads
  exactly what the Trainer trains on, and the minibatch logits at positions 0 .. n-1 are those
  of the n stored tokens: both sources score the same tokens.
- otherwise (GPT-2's tokenizer adds no BOS) the run stores the ids as they are. The eval pass
  puts BOS before them (one token of context the Trainer never showed), while the minibatch
  statistics score tokens 1 .. n-1 (token 0 has no prediction in the Trainer's forward), the
  extraction window (prefix_len, suffix_len) staying on the same tokens.

Each training batch is checked against the items the callback read (its rows must be those
items' ids, right-padded): padding on the left, truncation or packing would misalign the
logits, and stop training with a message instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from memdash.analysis.record.config import RunConfig
from memdash.analysis.record.models import layer_names
from memdash.analysis.record.text.models import HFCausalLM
from memdash.analysis.record.text.recorder import POOLS, TextRecorder
from memdash.analysis.record.text.scoring import sequence_statistics, token_statistics
from memdash.analysis.store import Run, RunWriter
from memdash.integrations.lm_inputs import (
    check_lengths,
    model_section,
    sequence_rows,
    stored_tokenizer,
    token_table,
    vocabulary,
)
from memdash.integrations.recording import CallbackRecording, logits_of

__all__ = ["CausalLMRecording", "TrainerTextRecorder"]

COMMAND = "transformers.Trainer with memdash TraceCallback(task='causal_lm')"


class TrainerTextRecorder(TextRecorder):
    """A `TextRecorder` fed the Trainer's minibatch logits, whose position j predicts input
    j + 1: `lead` 1 when the inputs are BOS + the stored tokens, 0 when they are the stored
    tokens themselves (then token 0 is not scored)."""

    def __init__(self, *args: Any, lead: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lead = lead

    def log_batch(self, ids: torch.Tensor, logits: torch.Tensor) -> None:
        skip = 1 - self.lead  # stored tokens the Trainer's forward predicts none of
        width = min(logits.shape[1] - 1, self.inputs.shape[1] - skip)
        if not self.record_train or width < 1:
            return
        with torch.inference_mode():  # statistics only: nothing here reaches autograd
            tokens = self.inputs[ids][:, skip : skip + width]
            per_token = token_statistics(logits[:, :width].detach().float(), tokens)
            stats = sequence_statistics(
                per_token, self.prefix_len[ids] - skip, self.suffix_len[ids]
            )
        self._batches.append((ids.detach(), stats))


class CausalLMRecording(CallbackRecording):
    """The text run a `TraceCallback(task="causal_lm")` records (options: its docstring)."""

    def __init__(
        self,
        path: str | Path,
        train_dataset: Any,
        test_dataset: Any = None,
        *,
        tokenizer: Any = None,
        bos_token_id: int | None = None,
        prefix_len: int = 32,
        suffix_len: int = 16,
        embed_pool: str = "last",
        model_path: str | None = None,
        config: dict[str, Any] | None = None,
        overwrite: bool = False,
        **record: Any,
    ) -> None:
        self.tokenizer = stored_tokenizer(tokenizer)
        bos = self.tokenizer.bos_id if bos_token_id is None else int(bos_token_id)
        if bos is None:
            raise ValueError(
                "task='causal_lm' needs the BOS id every sequence is read after: pass the "
                "tokenizer, or bos_token_id= (its bos_token_id, GPT-2's eos_token_id)"
            )
        if self.tokenizer.kind in ("byte", "bpe") and bos != self.tokenizer.bos_id:
            raise ValueError(f"bos_token_id {bos} is not the {self.tokenizer.kind} tokenizer's")
        train = sequence_rows(train_dataset)
        test = sequence_rows(test_dataset) if test_dataset is not None else []
        tokens, self.lead = token_table(train + test, bos)
        self.n_tokens = (tokens >= 0).sum(1).numpy()
        check_lengths(self.n_tokens, prefix_len, suffix_len, self.lead)
        if embed_pool not in POOLS:
            raise ValueError(f"unknown embed_pool {embed_pool!r}; valid: {', '.join(POOLS)}")
        super().__init__(
            path,
            tokens,
            torch.zeros(len(tokens), dtype=torch.long),
            len(train),
            config=config,
            overwrite=overwrite,
            **record,
        )
        self.bos, self.prefix_len, self.suffix_len = bos, prefix_len, suffix_len
        self.embed_pool, self.model_path = embed_pool, model_path
        self._train_args: dict[str, Any] = {}

    # ------------------------------------------------------------- the run
    def wrap(self, model: nn.Module, args: Any) -> HFCausalLM:
        """`model` under memdash's layer names (embed, block1.., out); notes the Trainer's
        arguments for run.json."""
        if not callable(getattr(model, "get_output_embeddings", None)) or (
            model.get_output_embeddings() is None
        ):
            raise TypeError(
                f"task='causal_lm' records a causal language model (an AutoModelForCausalLM, "
                f"with output embeddings); this model is a {type(model).__name__}"
            )
        vocab, top = vocabulary(model), int(self.inputs.max())
        if not 0 <= self.bos < vocab or top >= vocab:
            raise ValueError(
                f"the model predicts {vocab} tokens, but the items hold token {top} and the "
                f"BOS is {self.bos}"
            )
        optim = getattr(args.optim, "value", args.optim)
        self._train_args = {
            "batch_size": int(args.per_device_train_batch_size),
            "optimizer": str(optim),
            **({"lr": float(args.learning_rate)} if args.learning_rate > 0 else {}),
            "weight_decay": float(args.weight_decay),
            "device": str(args.device),
            "seed": int(args.seed),
        }
        return HFCausalLM(model, model_section(model, self.model_path)["name"])

    def begin(self, model: nn.Module, device: torch.device, done: int, planned: int) -> None:
        """Create the text run and record epoch 0 (`done` 0), or reopen it after `done`."""
        unknown = sorted(set(self.record.get("embed_layers", ())) - set(layer_names(model)))
        if unknown:
            raise ValueError(f"unknown embedding layers {unknown}; valid: {layer_names(model)}")
        if done == 0:
            writer = self._create(model, planned)
        else:
            self._check_same_examples()
            writer = RunWriter.reopen(self.path, epoch=done)
            if layer_names(model) != writer.meta.get("layers"):
                raise ValueError(
                    f"run {self.path} was recorded from a model with layers "
                    f"{writer.meta.get('layers')}; this model's are {layer_names(model)}"
                )
            writer.meta["epochs_planned"] = int(planned)  # a longer fit
        r = self.record
        self.recorder = TrainerTextRecorder(
            writer,
            model,
            self.inputs.to(device),
            bos=self.bos,
            prefix_len=np.full(len(self.inputs), self.prefix_len),
            suffix_len=np.full(len(self.inputs), self.suffix_len),
            split=self._split(),
            lead=self.lead,
            embed_pool=self.embed_pool,
            **{k: v for k, v in r.items() if k != "grad_accounting"},
        )
        if done == 0:
            self.recorder.start()

    def _split(self) -> np.ndarray:
        n = len(self.inputs)
        return np.where(np.arange(n) < self.n_train, "train", "test").astype(object)

    def _create(self, model: HFCausalLM, planned: int) -> RunWriter:
        if (self.path / "run.json").exists() and not self.overwrite:
            raise FileExistsError(
                f"run {self.path} already exists; resume the trainer from its checkpoint "
                "to go on recording it, pass overwrite=True, or choose another path"
            )
        vocab, tok = vocabulary(model.wrapped), self.tokenizer
        writer = RunWriter.create(
            self.path,
            config=self._config(model, vocab, planned),
            examples=self._examples(),
            inputs=self.inputs.numpy().astype(np.int32),
            n_classes=vocab,
            layers=layer_names(model),
            overwrite=self.overwrite,
            extra={
                "modality": "text",
                "text": {
                    **({"tokenizer": tok.kind} if tok.kind else {}),
                    "vocab_size": vocab,
                    "bos_id": self.bos,
                    "entropy_bits": None,
                },
            },
        )
        if tok.json_text is not None:
            writer.write_tokenizer(tok.json_text)
        return writer

    def _examples(self) -> pd.DataFrame:
        n, split = len(self.inputs), self._split()
        rows = [row[row >= 0].tolist() for row in self.inputs]
        zeros = np.zeros(n, dtype=np.int64)
        return pd.DataFrame(
            {
                "example_id": np.arange(n, dtype=np.int64),
                "split": split,
                "label": zeros,
                "true_label": zeros,
                "is_noisy": np.zeros(n, dtype=bool),
                "is_canary": np.zeros(n, dtype=bool),
                "canary_repeats": zeros,
                "corruption": np.full(n, "none", dtype=object),
                "text": np.array([self.tokenizer.decode(r) for r in rows], dtype=object),
                "n_tokens": self.n_tokens.astype(np.int64),
                "prefix_len": np.full(n, self.prefix_len, dtype=np.int64),
                "suffix_len": np.full(n, self.suffix_len, dtype=np.int64),
                "duplicates": (split == "train").astype(np.int64),
                "secret": np.full(n, "", dtype=object),
            }
        )

    def _config(self, model: HFCausalLM, vocab: int, planned: int) -> dict[str, Any]:
        """run.json's config: memdash's sections (so `load_run_lm` rebuilds the model), the
        user's `config` merged into them."""
        train = {k: v for k, v in self._train_args.items() if k != "seed"}
        r = self.record
        sections: dict[str, Any] = {
            "data": {
                "dataset": "text",
                "text_corpus": "trainer",
                "seq_len": int(self.inputs.shape[1]),
                "chunking": "lines",
                **({"tokenizer": self.tokenizer.kind} if self.tokenizer.kind else {}),
                "vocab_size": vocab,
                "corruption": "none",
                "noise": 0.0,
                "canaries": 0,
                "duplicate_sequences": 0,
                "prefix_len": self.prefix_len,
                "suffix_len": self.suffix_len,
            },
            "model": model_section(model.wrapped, self.model_path),
            "train": {**train, "epochs": int(planned)},
            "record": {
                "record_train": self.record_train,
                "grad_accounting": False,
                "embed_layers": list(r.get("embed_layers", ())),
                "embed_epochs": sorted(r.get("embed_epochs", ())),
                "checkpoint_epochs": sorted(r.get("checkpoint_epochs", (0,))),
                "embed_dtype": r.get("embed_dtype", "float16"),
                "eval_batch_size": int(r.get("eval_batch_size", 64)),
                "embed_pool": self.embed_pool,
            },
            "seed": self._train_args.get("seed", 0),
            "command": COMMAND,
        }
        for key, value in self.config.items():
            both = isinstance(value, dict) and isinstance(sections.get(key), dict)
            sections[key] = {**sections[key], **value} if both else value
        try:
            RunConfig.from_dict(sections)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"config: {err}; a causal-LM run's config holds memdash's sections (data, "
                "model, train, record, seed, command), so that load_run_lm rebuilds its model"
            ) from None
        return sections

    # ------------------------------------------------------ minibatch logits
    def watch(self, network: nn.Module) -> None:
        """Keep the logits (and check the input_ids) of each training batch's first
        forward pass."""
        self.release()
        self._hook = network.register_forward_hook(self._on_lm_forward, with_kwargs=True)

    def _on_lm_forward(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        ids, recorder = self._ids, self.recorder
        if ids is None or recorder is None or not module.training:
            return
        self._ids = None  # the first forward of the batch is the one trained on
        logits = logits_of(output)
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        problem = self._misaligned(ids, input_ids, logits)
        if problem is not None:
            self.finish(RuntimeError(problem))
            raise ValueError(f"memdash: {problem}")
        recorder.log_batch(ids.to(logits.device), logits)

    def _misaligned(self, ids: torch.Tensor, input_ids: Any, logits: torch.Tensor) -> str | None:
        """Why a training batch's logits cannot be read as the items' (None: they can)."""
        if logits.dim() != 3 or len(logits) != len(ids):
            return (
                f"a training batch of {len(ids)} example ids gave logits of shape "
                f"{tuple(logits.shape)}; a causal LM gives (batch, positions, vocabulary)"
            )
        if not isinstance(input_ids, torch.Tensor) or input_ids.shape[0] != len(ids):
            return "the training batches reach the model without input_ids of one row an id"
        tokens = self.recorder.inputs[ids.to(self.recorder.inputs.device)]
        got = input_ids.to(tokens.device).long()
        span = min(got.shape[1] - self.lead, tokens.shape[1])
        stored = tokens[:, :span]
        same = ((got[:, self.lead : self.lead + span] == stored) | (stored < 0)).all(1)
        same &= (tokens >= 0).sum(1) <= span
        if self.lead:
            same &= got[:, 0] == self.bos
        if bool(same.all()):
            return None
        first = int(ids[int(torch.nonzero(~same)[0, 0])])
        return (
            f"the training batch's row of example {first} is not that item's input_ids as "
            "TraceCallback read them (right-padded); left padding, truncation, packing or "
            "items changed after the callback was made would misalign the recorded logits"
        )

    # --------------------------------------------------------------- checks
    def _check_same_examples(self) -> None:
        run = Run.open(self.path)
        stored = np.asarray(run.inputs(mmap=False))
        given = self.inputs.numpy()
        if stored.shape != given.shape or (stored != given).any():
            raise ValueError(
                f"cannot resume run {self.path}: it holds {len(stored)} sequences whose "
                f"tokens differ from the {len(given)} given now"
            )
        if int(run.meta.get("text", {}).get("bos_id", -1)) != self.bos:
            raise ValueError(f"cannot resume run {self.path}: it was recorded with another BOS")
