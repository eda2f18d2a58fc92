"""TraceRecorder: per-example training traces from any PyTorch training loop.

Per recorded epoch and per example it stores the loss, the softmax probability
of the label trained with (``prob_label``), the margin (that label's logit
minus the largest other logit), the prediction and whether it is correct, from
two sources:

``eval``
    an end-of-epoch pass over every example with the model in eval mode,
    ``torch.inference_mode`` and large batches (the default);
``train``
    the logits of the training minibatches themselves, in train mode, before
    the update: the source used by Toneva et al. (2019, forgetting events) and
    Swayamdipta et al. (2020, data maps). The minibatch logits are kept on the
    device and reduced once per epoch; an example presented several times in
    an epoch (a repeated canary) keeps its last presentation.

It also stores embeddings of named layers (forward hooks) at chosen epochs,
checkpoints at chosen epochs (0 = initialization), and, with gradient
accounting on, per layer the norm of the gradient of the clean part and of the
flipped part of each batch's loss (each weighted by its share of the batch,
so that the two add up to the batch's gradient) summed over the epoch, and the
mean over batches of their cosine (Maini et al. 2023, "Can Neural Network
Memorization Be Localized?").

The pieces live beside it: the statistics in `stats`, the eval pass (embeddings, loss
sensitivity, curvature, critical samples) in `eval_pass`, the gradient accounting in
`grad_accounting`, the background writes in `writes` and the seconds each part of an epoch
takes (run.json's ``timing``) in `timing`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import nn

from memdash.analysis.record.eval_pass import (
    captured_embeddings,
    critical_subset,
    epoch_measures,
    eval_logits,
    stacked_embeddings,
    train_rows,
)
from memdash.analysis.record.grad_accounting import GradientAccountant
from memdash.analysis.record.models import layer_names
from memdash.analysis.record.stats import (
    accuracies_by_group,
    example_stats,
    last_presentation_stats,
    stats_table,
    summary_groups,
)
from memdash.analysis.record.timing import Clock
from memdash.analysis.record.writes import EpochWrites, frozen
from memdash.analysis.store import Run, RunWriter


class TraceRecorder:
    """Records per-example traces, embeddings, checkpoints and layer gradients into a run.

    Parameters
    ----------
    writer : the run being written (`RunWriter`)
    model : the network; its top-level children with parameters are its layers
    inputs : shape (N, ...), every example of the run (train, test, ...), row i = example i
    labels : int64, shape (N,), the labels trained with (the noisy ones for flipped examples)
    is_noisy : bool, shape (N,), flipped examples (for gradient accounting)
    record_train : keep the statistics of the training minibatches (`log_batch`)
    grad_accounting : split each batch's gradient into its clean and flipped parts (`backward`)
    embed_layers, embed_epochs : layers whose outputs are stored, and at which epochs
    checkpoint_epochs : epochs whose weights are stored (0 = initialization)
    embed_dtype : ``float16`` or ``float32``
    eval_batch_size : examples per forward pass of the eval pass
    split : shape (N,), ``train``/``test``/``reference`` per example; with it each
        commit stores the epoch's accuracies in run.json (``last_epoch``)
    loss_sensitivity : record each example's ||dL/dx||_1 (Arpit et al.), a trace column
    curvature : (directions, step, run seed): record the input-loss curvature (Garg, Roy et
        al.) of the training split (all without `split`), NaN for the others, a trace column
    run_json : epoch -> keys run.json takes with the epoch (a DP run's epsilon spent)

    Examples
    --------
    See `TraceRecorder.create` and the README for a complete training loop.
    """

    def __init__(
        self,
        writer: RunWriter,
        model: nn.Module,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        *,
        is_noisy: torch.Tensor | None = None,
        record_train: bool = True,
        grad_accounting: bool = False,
        embed_layers: Iterable[str] = (),
        embed_epochs: Iterable[int] = (),
        checkpoint_epochs: Iterable[int] = (0,),
        embed_dtype: str = "float16",
        eval_batch_size: int = 512,
        split: np.ndarray | None = None,
        loss_sensitivity: bool = False,
        critical: tuple[int, float, int, int] | None = None,
        curvature: tuple[int, float, int] | None = None,
        run_json: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        unknown = sorted(set(embed_layers) - set(layer_names(model)))
        if unknown:
            raise ValueError(
                f"unknown embedding layers {unknown}; the model's layers: {layer_names(model)}"
            )
        self.writer, self.model = writer, model
        self.inputs, self.labels = inputs, labels.long()
        self.record_train = record_train
        self.embed_layers = list(embed_layers)
        self.embed_epochs = set(embed_epochs)
        self.checkpoint_epochs = set(checkpoint_epochs)
        self.embed_dtype = np.dtype(embed_dtype)
        self.eval_batch_size = eval_batch_size
        noisy = torch.zeros(len(labels), dtype=torch.bool) if is_noisy is None else is_noisy
        self.accountant = (
            GradientAccountant(model, noisy.to(inputs.device).bool()) if grad_accounting else None
        )
        self._batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._writes = EpochWrites()
        self._groups = summary_groups(split, noisy.cpu().numpy()) if split is not None else {}
        self.record_sensitivity = loss_sensitivity
        # critical samples: (examples in the seeded subset, radius, steps, seed) or None
        self.critical = critical
        self.curvature = curvature
        self._curvature_rows = train_rows(split, inputs.device) if curvature else None
        self.run_json = run_json
        # seconds per part of an epoch, summed over the epochs (a resumed run's go on)
        self.clock = Clock(inputs.device, getattr(writer, "meta", {}).get("timing"))
        self._critical_ids = None
        self._gradients: torch.Tensor | None = None  # the eval pass's grad_x L, for curvature
        if critical is not None:
            count, _, _, seed = critical
            self._critical_ids = critical_subset(len(labels), count, seed).to(inputs.device)

    @classmethod
    def create(
        cls,
        path: str | Path,
        model: nn.Module,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_test: torch.Tensor | None = None,
        y_test: torch.Tensor | None = None,
        *,
        true_labels: torch.Tensor | None = None,
        config: dict[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> TraceRecorder:
        """Start a new run for a user's own training loop.

        Example ids are the training examples 0..N_train-1 (so the indices a
        loader yields are the ids), then the test examples. `true_labels`
        (shape (N_train,)) marks examples whose `y_train` differs as flipped.
        """
        xs = [x_train] + ([x_test] if x_test is not None else [])
        ys = [y_train] + ([y_test] if y_test is not None else [])
        inputs, labels = torch.cat(xs), torch.cat(ys).long()
        true = labels.clone()
        if true_labels is not None:
            true[: len(y_train)] = true_labels.long().to(true.device)
        n_train, n = len(y_train), len(labels)
        examples = pd.DataFrame(
            {
                "example_id": np.arange(n, dtype=np.int64),
                "split": np.where(np.arange(n) < n_train, "train", "test").astype(object),
                "label": labels.cpu().numpy(),
                "true_label": true.cpu().numpy(),
                "is_noisy": (labels != true).cpu().numpy(),
                "is_canary": np.zeros(n, dtype=bool),
            }
        )
        writer = RunWriter.create(
            path,
            config=config or {},
            examples=examples,
            inputs=inputs.detach().cpu().numpy(),
            n_classes=int(labels.max()) + 1,
            layers=layer_names(model),
            overwrite=overwrite,
        )
        options.setdefault("grad_accounting", bool(examples["is_noisy"].any()))
        return cls(
            writer,
            model,
            inputs,
            labels,
            is_noisy=labels != true,
            split=examples["split"].to_numpy(),
            **options,
        )

    @classmethod
    def reopen(
        cls,
        path: str | Path,
        model: nn.Module,
        *,
        epoch: int | None = None,
        device: torch.device | str = "cpu",
        **options: Any,
    ) -> TraceRecorder:
        """Go on recording a run after its last complete epoch (or after `epoch`).

        The examples, labels and inputs are the run's own (examples.parquet and
        inputs.npy); `model` must have the run's layers. `options` are those of
        the constructor.
        """
        writer = RunWriter.reopen(path, epoch=epoch)
        run = Run.open(path)
        if layer_names(model) != run.layers:
            raise ValueError(
                f"run {run.path} was recorded from a model with layers {run.layers}; "
                f"this model's layers are {layer_names(model)}"
            )
        examples = run.examples(["split", "label", "is_noisy"])
        inputs = torch.from_numpy(np.array(run.inputs(mmap=False))).to(device)
        labels = torch.tensor(examples["label"].to_numpy(dtype=np.int64), device=device)
        is_noisy = torch.tensor(examples["is_noisy"].to_numpy(dtype=bool), device=device)
        options.setdefault("grad_accounting", bool(is_noisy.any()))
        return cls(
            writer,
            model,
            inputs,
            labels,
            is_noisy=is_noisy,
            split=examples["split"].to_numpy(),
            **options,
        )

    # ------------------------------------------------------------ in the loop
    def log_batch(self, ids: torch.Tensor, logits: torch.Tensor) -> None:
        """Keep a training minibatch's logits (train mode, before the update).

        Costs no computation per batch: the logits stay on the device and are
        reduced once, in `end_epoch`.
        """
        if self.record_train:
            self._batches.append((ids.detach(), logits.detach()))

    def backward(self, ids: torch.Tensor, losses: torch.Tensor) -> None:
        """Back-propagate the batch's mean loss; with gradient accounting, part by part.

        Parameters
        ----------
        ids : the batch's example ids, shape (B,)
        losses : per-example losses (``reduction="none"``), shape (B,)
        """
        if self.accountant is None:
            losses.mean().backward()
        else:
            self.accountant.backward(ids.to(self.accountant.is_noisy.device), losses)

    # --------------------------------------------------------- epoch borders
    def start(self) -> None:
        """Record epoch 0, the model before training."""
        self.end_epoch(0)

    def end_epoch(
        self, epoch: int, *, resume_state: tuple[dict, dict] | None = None
    ) -> dict[str, float]:
        """Record `epoch`: write everything recorded for it, then commit it in run.json (last).

        The statistics are computed here; the files are written by a background
        thread while the next epoch trains, in order and with run.json last, so
        a killed process still leaves a run readable up to its last committed
        epoch. Errors of a write surface at the next `end_epoch` or at `finish`.
        Returns the epoch's eval accuracies by group (see `split`).
        """
        w = self.writer
        jobs: list[Callable[[], None]] = []
        train_table = self._train_source_table(epoch)
        if train_table is not None:
            jobs.append(partial(w.write_trace, "train", epoch, train_table))
        with self.clock.part("eval_pass"):
            stats, embeddings = self.evaluate(epoch in self.embed_epochs)
        stats |= epoch_measures(  # curvature, critical samples: their own passes
            self.model,
            self.inputs,
            self.labels,
            self.eval_batch_size,
            epoch=epoch,
            curvature=self.curvature,
            curvature_rows=self._curvature_rows,
            gradients=self._gradients,
            critical=self.critical and (self._critical_ids, *self.critical[1:]),
            clock=self.clock,
        )
        self._gradients = None
        jobs.append(
            partial(
                w.write_trace,
                "eval",
                epoch,
                stats_table("eval", epoch, np.arange(len(self.labels)), stats),
            )
        )
        jobs += [partial(w.write_embedding, epoch, k, v) for k, v in embeddings.items()]
        jobs += self._epoch_extras(epoch)
        if self.accountant is not None and epoch > 0:
            jobs.append(partial(w.write_layer_grads, epoch, self.accountant.frame(epoch)))
            self.accountant.reset()
        if epoch in self.checkpoint_epochs:
            jobs.append(partial(w.write_checkpoint, epoch, frozen(self.model.state_dict())))
        if resume_state is not None:
            tensors, meta = resume_state
            jobs.append(
                partial(w.write_resume_state, frozen(tensors), json.loads(json.dumps(meta)))
            )
        summary = {"epoch": epoch} | self._summary(stats)
        extra = self.run_json(epoch) if self.run_json is not None else {}
        timing = self.clock.totals()
        jobs.append(partial(w.commit_epoch, epoch, last_epoch=summary, timing=timing, **extra))
        self._submit(jobs)
        return summary

    def flush(self) -> None:
        """Wait until every epoch handed over is on disk; raise the first write error."""
        self._writes.flush()

    def finish(self, status: str = "complete", **extra: Any) -> None:
        """Flush the writes, then mark the run `complete` (or `failed`), adding `extra`
        to run.json."""
        try:
            self.flush()
        finally:
            self._writes.close()
            self.writer.finish(status, **extra)

    def group_accuracies(self) -> dict[str, float]:
        """Accuracy (given labels) of an eval pass now: ``{train,clean,noisy,test}_acc``."""
        stats, _ = self.evaluate()
        return accuracies_by_group(stats, self._groups)

    # --------------------------------------------------------------- helpers
    def _epoch_extras(self, epoch: int) -> list[Callable[[], None]]:
        """Writes of an epoch beyond the trace, embeddings and weights (a subclass's own
        files, e.g. a text run's per-token losses), run before the checkpoint; none here."""
        return []

    def _summary(self, stats: dict[str, torch.Tensor]) -> dict[str, float]:
        """What run.json's ``last_epoch`` holds besides the epoch: accuracies by group."""
        return accuracies_by_group(stats, self._groups)

    def _submit(self, jobs: list[Callable[[], None]]) -> None:
        self._writes.submit(jobs)

    def _train_source_table(self, epoch: int) -> pa.Table | None:
        """The epoch's ``train`` trace part from the minibatches kept by `log_batch` (None
        when none were), emptying them."""
        if not self._batches:
            return None
        batches, self._batches = self._batches, []
        ids, stats = last_presentation_stats(batches, self.labels)
        return stats_table("train", epoch, ids, stats)

    def evaluate(
        self, with_embeddings: bool = False
    ) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
        """Eval-mode pass over every example; returns (stats, {layer: (N, D) array})."""
        was_training = self.model.training
        self.model.eval()
        try:
            with captured_embeddings(
                self.model, self.embed_layers, capture=with_embeddings
            ) as captured:
                logits, grads = eval_logits(
                    self.model,
                    self.inputs,
                    self.labels,
                    self.eval_batch_size,
                    gradients=self.record_sensitivity or self.curvature is not None,
                    clock=self.clock,  # its backward passes: the measures' own time
                    part="loss_sensitivity" if self.record_sensitivity else "curvature",
                )
        finally:
            self.model.train(was_training)
        stats = example_stats(logits, self.labels.to(logits.device))
        if grads is not None and self.record_sensitivity:
            stats["loss_sensitivity"] = grads.flatten(1).abs().sum(1).float()
        self._gradients = grads if self.curvature is not None else None
        return stats, stacked_embeddings(captured, self.embed_dtype)
