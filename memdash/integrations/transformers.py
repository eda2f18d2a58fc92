"""Record a Hugging Face ``Trainer`` run into a memdash run: sequence classification, or
causal-LM fine-tuning (``task="causal_lm"``).

Two changes to the user's code: wrap the training dataset in `WithIds`, and
keep its ``example_id`` column in the batches::

    args = TrainingArguments(..., remove_unused_columns=False)
    trainer = Trainer(model, args, train_dataset=WithIds(train_set),
                      callbacks=[TraceCallback("runs/hf", train_set, test_set)])

Items are dicts with ``input_ids`` and ``labels`` (or ``label``), as a
tokenized ``datasets.Dataset`` gives them; drop the text columns when
tokenizing (``map(..., remove_columns=["text"])``), since the Trainer no
longer drops them. The callback takes the ``example_id`` out of each forward
call before the model sees it (a forward pre-hook), and records like
`memdash train`:

- the statistics of every training minibatch, from the logits of its forward
  pass (train mode, before the update; each micro-batch under gradient
  accumulation);
- an eval pass over every example at each epoch's end, the attention mask
  being ``input_ids != pad_token_id`` (eval mode, ``torch.inference_mode``, the largest
  batches that fit, written while the next epoch trains);
- embeddings of named layers (the model's top-level children: for BERT
  ``bert`` stores its pooled output), and checkpoints as safetensors;
- resume: ``trainer.train(resume_from_checkpoint=...)`` goes on after the
  checkpoint's epoch.

With ``task="causal_lm"`` the items are sequences (``input_ids``; ``labels``, if
any, the copy the causal-LM collators make) and the run is a text run, recorded
like ``memdash train --dataset text``: see `memdash.integrations.causal_lm`.

Needs the extra ``memdash[transformers]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from memdash.integrations.causal_lm import CausalLMRecording
from memdash.integrations.ids import ID_KEY, WithIds, token_items
from memdash.integrations.recording import CallbackRecording, logits_of

__all__ = [
    "TASKS",
    "CausalLMRecording",
    "SequenceClassifier",
    "TraceCallback",
    "WithIds",
    "stack_sequences",
]

TASKS = ("sequence_classification", "causal_lm")
_FOR_LM = "for causal-LM fine-tuning pass task='causal_lm'"


def stack_sequences(dataset: Any, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The token ids and labels of a sequence-classification dataset.

    Returns
    -------
    input_ids : int64, shape (N, L), right-padded with `pad_token_id` to the longest
    labels : int64, shape (N,), from each item's ``labels`` (or ``label``)
    """
    rows, labels = [], []
    for i, item in token_items(dataset):
        label = item.get("labels", item.get("label"))
        if label is None:
            raise ValueError(
                f"item {i} of the dataset has no labels or label: {sorted(item)} ({_FOR_LM})"
            )
        if torch.as_tensor(label).numel() != 1:
            raise ValueError(f"item {i}'s labels are a sequence, not a class ({_FOR_LM})")
        rows.append(torch.as_tensor(item["input_ids"], dtype=torch.long).flatten())
        labels.append(int(label))
    if not rows:
        raise ValueError("the dataset is empty")
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, torch.tensor(labels, dtype=torch.long)


class SequenceClassifier(nn.Module):
    """A sequence classifier seen as memdash sees a network: token ids (N, L) -> logits.

    Its layers are the model's own top-level children (for BERT: ``bert`` and
    ``classifier``), so its checkpoints hold the model's own state-dict keys.
    """

    def __init__(self, model: nn.Module, pad_token_id: int) -> None:
        super().__init__()
        for name, child in model.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "hf_model", model)  # not a child: no "hf_model." prefix
        self.pad_token_id = pad_token_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_token_id).long()
        return logits_of(self.hf_model(input_ids=input_ids, attention_mask=mask))

    def train(self, mode: bool = True) -> SequenceClassifier:
        super().train(mode)
        self.hf_model.train(mode)
        return self


class TraceCallback(TrainerCallback):
    """A ``transformers.Trainer`` callback that records per-example traces into a memdash run.

    Parameters
    ----------
    path : the run directory (created when training starts from scratch)
    train_dataset : the training examples (dicts with ``input_ids`` and ``labels``; for
        ``causal_lm`` with ``input_ids``); example i is item i
    test_dataset : optional held-out examples, ids following the training examples
    task : ``sequence_classification`` (the default: one class label per item) or
        ``causal_lm`` (a language model fine-tuned on the items' sequences; the run is a
        text run, `memdash.integrations.causal_lm`)
    pad_token_id : classification: the padding token (the tokenizer's ``pad_token_id``,
        default 0)
    true_labels : classification: shape (N_train,), optional; examples whose label differs
        are flipped
    tokenizer : causal_lm: the tokenizer the items were made with, optional: it decodes each
        sequence's ``text``, gives the BOS, and (a fast one) is stored as tokenizer.json
    bos_token_id : causal_lm: the token every sequence is read after (default the
        tokenizer's ``bos_token_id``, else its ``eos_token_id``; required without a
        tokenizer). Items that all begin with it are stored without it
    prefix_len, suffix_len : causal_lm: extraction's prefix and suffix (default 32 and 16
        tokens); every sequence must hold both
    embed_pool : causal_lm: a sequence's embedding, its ``last`` token's (default) or the
        ``mean`` over its tokens
    model_path : causal_lm: for a model other than a plain GPT-2, the save_pretrained folder
        `load_run_lm` rebuilds it from (default: the folder it was loaded from)
    embed_layers, embed_epochs : the layers whose outputs are stored, and when
        (classification: the model's top-level children; causal_lm: ``embed``, ``block1``
        .. ``blockK``, ``out``)
    checkpoint_epochs : epochs whose weights are stored as safetensors (0 = initialization)
    record_train : keep the statistics of the training minibatches (needs `WithIds` and
        ``remove_unused_columns=False``)
    eval_batch_size : examples per forward pass of the eval pass (classification: None, the
        default, takes the largest that fits the device's memory, see
        `memdash.integrations.eval_batch`; causal_lm: default 16)
    config : stored in run.json (causal_lm: merged into memdash's config sections)
    overwrite : replace a run already at `path` when training starts from scratch
    """

    def __init__(
        self,
        path: str | Path,
        train_dataset: Any,
        test_dataset: Any = None,
        *,
        task: str = "sequence_classification",
        pad_token_id: int | None = None,
        true_labels: torch.Tensor | None = None,
        tokenizer: Any = None,
        bos_token_id: int | None = None,
        prefix_len: int | None = None,
        suffix_len: int | None = None,
        embed_pool: str | None = None,
        model_path: str | None = None,
        embed_layers: Iterable[str] = (),
        embed_epochs: Iterable[int] = (),
        checkpoint_epochs: Iterable[int] = (0,),
        record_train: bool = True,
        eval_batch_size: int | None = None,
        embed_dtype: str = "float16",
        config: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
        self.task = task
        record = {
            "record_train": record_train,
            "embed_layers": list(embed_layers),
            "embed_epochs": list(embed_epochs),
            "checkpoint_epochs": list(checkpoint_epochs),
            "embed_dtype": embed_dtype,
        }
        self._pre_hook: torch.utils.hooks.RemovableHandle | None = None
        self._batches = 0
        if task == "causal_lm":
            _only_for("sequence_classification", pad_token_id=pad_token_id, true_labels=true_labels)
            self.recording = CausalLMRecording(
                path,
                train_dataset,
                test_dataset,
                tokenizer=tokenizer,
                bos_token_id=bos_token_id,
                prefix_len=32 if prefix_len is None else prefix_len,
                suffix_len=16 if suffix_len is None else suffix_len,
                embed_pool=embed_pool or "last",
                model_path=model_path,
                config=config,
                overwrite=overwrite,
                eval_batch_size=eval_batch_size or 16,
                **record,
            )
            return
        lm_only = {"tokenizer": tokenizer, "bos_token_id": bos_token_id, "model_path": model_path}
        lm_only |= {"prefix_len": prefix_len, "suffix_len": suffix_len, "embed_pool": embed_pool}
        _only_for("causal_lm", **lm_only)
        pad_token_id = 0 if pad_token_id is None else pad_token_id
        x_train, y_train = stack_sequences(train_dataset, pad_token_id)
        x, y = x_train, y_train
        if test_dataset is not None:
            x_test, y_test = stack_sequences(test_dataset, pad_token_id)
            width = max(x_train.shape[1], x_test.shape[1])
            x = torch.cat([_pad(x_train, width, pad_token_id), _pad(x_test, width, pad_token_id)])
            y = torch.cat([y_train, y_test])
        self.pad_token_id = pad_token_id
        self.recording = CallbackRecording(
            path,
            x,
            y,
            len(y_train),
            true_labels=true_labels,
            config={"trainer": "transformers", **(config or {})},
            overwrite=overwrite,
            eval_batch_size=eval_batch_size,
            **record,
        )

    @property
    def path(self) -> Path:
        return self.recording.path

    # ----------------------------------------------------------- Trainer events
    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        if self._pre_hook is None:  # kept after training: evaluation batches may carry ids
            self._pre_hook = model.register_forward_pre_hook(self._take_ids, with_kwargs=True)
        done = math.floor((state.epoch or 0) + 1e-6)  # restored when resuming
        if self.task == "causal_lm":
            network = self.recording.wrap(model, args)
        else:
            network = SequenceClassifier(model, self.pad_token_id)
        planned = math.ceil(args.num_train_epochs)
        self.recording.begin(network, model.device, done, planned)
        self.recording.watch(model)
        self._batches = 0

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if self.recording.record_train and self._batches == 0:
            self.recording.finish(RuntimeError("no example ids"))
            raise ValueError(
                "memdash: the training batches reach the model without their example ids: "
                "wrap the training dataset in memdash.integrations.WithIds and pass "
                "TrainingArguments(remove_unused_columns=False)"
            )

    def on_epoch_end(self, args, state, control, **kwargs) -> None:
        self.recording.end_epoch(round(state.epoch))

    def on_train_end(self, args, state, control, **kwargs) -> None:
        self.recording.finish()

    # ------------------------------------------------------------------ hooks
    def _take_ids(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        ids = kwargs.pop(ID_KEY, None)
        if ids is not None and module.training:
            self._batches += 1
            self.recording.expect(torch.as_tensor(ids).long().flatten())
        return args, kwargs


def _only_for(task: str, **options: Any) -> None:
    """Refuse the options of the other task (those not None)."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: only for task={task!r}")


def _pad(ids: torch.Tensor, width: int, pad_token_id: int) -> torch.Tensor:
    return nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad_token_id)
