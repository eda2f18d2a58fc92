"""TraceRecorder: per-example training traces from any PyTorch training loop.

Per recorded epoch and per example it stores the loss, the softmax probability
of the label trained with (``prob_label``), the margin (that label's logit
minus the largest other logit), the prediction and whether it is correct, from
two sources:

``eval``
    an end-of-epoch pass over every example with the model in eval mode,
    ``torch.no_grad`` and large batches (the default);
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
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import nn

from memdash.analysis.measures.sensitivity import critical_samples, loss_sensitivity
from memdash.analysis.record.models import layer_names, layer_parameters
from memdash.analysis.record.tied_dropout import example_ids
from memdash.analysis.store import Run, RunWriter


def example_stats(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example statistics of logits against the labels trained with.

    Parameters
    ----------
    logits : shape (B, C)
    labels : int64, shape (B,)

    Returns
    -------
    dict of tensors of shape (B,): ``loss`` (cross-entropy, exact down to about 1e-38
    rather than to one ulp of the logits), ``prob_label``
    (softmax probability of the label), ``margin`` (label logit minus the
    largest other logit; > 0 exactly when the label wins), ``pred`` (argmax,
    first index on ties) and ``correct`` (pred == label).
    """
    logits = logits.float()
    y = labels.view(-1, 1)
    label_logit = logits.gather(1, y).squeeze(1)
    others = logits.scatter(1, y, float("-inf"))
    # log(1 + sum_j exp(z_j - z_y)) without cancellation: logsumexp(z) - z_y rounds every
    # loss below one ulp of the logits (about 1e-6) to 0, which ties memorized canaries
    loss = torch.nn.functional.softplus(torch.logsumexp(others, 1) - label_logit)
    other = others.amax(1)
    pred = logits.argmax(1)
    return {
        "loss": loss,
        "prob_label": torch.exp(-loss),
        "margin": label_logit - other,
        "pred": pred,
        "correct": pred == labels,
    }


def layer_embedding(layer: str, output: Any) -> torch.Tensor:
    """What a layer's output stores as its embedding, shape (B, ...).

    A tensor is itself; a Hugging Face ``ModelOutput`` gives its
    ``pooler_output`` when it has one, else the first token's hidden state
    (``last_hidden_state[:, 0]``, the [CLS] position).
    """
    if isinstance(output, torch.Tensor):
        return output
    for field in ("pooler_output", "last_hidden_state"):
        value = getattr(output, field, None)
        if isinstance(value, torch.Tensor):
            return value if field == "pooler_output" else value[:, 0]
    raise TypeError(
        f"layer {layer!r} returns a {type(output).__name__}, not a tensor: choose a layer "
        "whose output is a tensor to record its embeddings"
    )


def stats_table(
    source: str, epoch: int, ids: np.ndarray, stats: dict[str, torch.Tensor]
) -> pa.Table:
    """A trace part in the run-store layout from `example_stats` output.

    Built as an Arrow table straight from the arrays (a pandas round trip
    costs more than writing the file).
    """
    host = {k: v.cpu().numpy() for k, v in stats.items()}
    n = len(ids)
    return pa.table(
        {
            "source": pa.array([source]).take(np.zeros(n, dtype=np.int32)),
            "epoch": np.full(n, epoch, dtype=np.int32),
            "example_id": np.asarray(ids, dtype=np.int64),
            "loss": host["loss"].astype(np.float32, copy=False),
            "prob_label": host["prob_label"].astype(np.float32, copy=False),
            "margin": host["margin"].astype(np.float32, copy=False),
            "pred": host["pred"].astype(np.int32),
            "correct": host["correct"].astype(bool, copy=False),
            # optional columns (Arpit et al.): recorded only when asked for
            **{
                k: host[k].astype(np.float32, copy=False)
                for k in ("loss_sensitivity", "critical")
                if k in host
            },
        }
    )


class GradientAccountant:
    """Per-layer norms of the clean and flipped parts of each batch's gradient, over an epoch.

    `backward(ids, losses)` replaces ``losses.mean().backward()``: it takes one
    backward pass per part (one more than usual) and leaves in ``.grad`` their
    sum, the gradient of the batch's mean loss.
    """

    def __init__(self, model: nn.Module, is_noisy: torch.Tensor) -> None:
        self.groups = layer_parameters(model)
        self.params = [p for ps in self.groups.values() for p in ps]
        self.sizes = [len(ps) for ps in self.groups.values()]
        self.is_noisy = is_noisy
        self.reset()

    def reset(self) -> None:
        n_layers, device = len(self.groups), self.is_noisy.device
        self.norm_sum = torch.zeros(2, n_layers, dtype=torch.float64, device=device)
        self.cos_sum = torch.zeros(n_layers, dtype=torch.float64, device=device)
        self.cos_batches = 0
        self.counts = torch.zeros(2, dtype=torch.int64, device=device)

    def backward(self, ids: torch.Tensor, losses: torch.Tensor) -> None:
        noisy = self.is_noisy[ids]
        n = losses.numel()
        parts = [losses[~noisy].sum() / n, losses[noisy].sum() / n]
        present = [bool((~noisy).any()), bool(noisy.any())]
        self.counts += torch.stack([(~noisy).sum(), noisy.sum()])
        grads: list[Sequence[torch.Tensor] | None] = [None, None]
        live = [i for i in (0, 1) if present[i]]
        for k, i in enumerate(live):
            grads[i] = torch.autograd.grad(
                parts[i], self.params, retain_graph=k < len(live) - 1, allow_unused=True
            )
        grads = [self._fill(g) if g is not None else None for g in grads]
        sq = {i: self._per_layer(g, g) for i, g in enumerate(grads) if g is not None}
        for i, value in sq.items():
            self.norm_sum[i] += value.sqrt()
        if len(sq) == 2:
            dot = self._per_layer(grads[0], grads[1])
            self.cos_sum += dot / (sq[0].sqrt() * sq[1].sqrt()).clamp_min(1e-30)
            self.cos_batches += 1
        for p, *gs in zip(self.params, *[g for g in grads if g is not None], strict=True):
            total = gs[0] if len(gs) == 1 else gs[0] + gs[1]
            p.grad = total if p.grad is None else p.grad + total

    def _fill(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
        return [
            torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads, strict=True)
        ]

    def _per_layer(self, a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
        dots = torch.stack([(x.double() * y.double()).sum() for x, y in zip(a, b, strict=True)])
        return torch.stack([chunk.sum() for chunk in torch.split(dots, self.sizes)])

    def frame(self, epoch: int) -> pd.DataFrame:
        """The epoch's rows of layer_grads.parquet: one per (layer, subset)."""
        norms = self.norm_sum.cpu().numpy()
        total = norms.sum(0)
        share = np.divide(norms, total, out=np.full_like(norms, np.nan), where=total > 0)
        cos = (
            (self.cos_sum / self.cos_batches).cpu().numpy()
            if self.cos_batches
            else (np.full(len(self.groups), np.nan))
        )
        counts = self.counts.cpu().numpy()
        rows = [
            {
                "epoch": epoch,
                "layer": layer,
                "subset": subset,
                "grad_norm": float(norms[s, j]),
                "share": float(share[s, j]),
                "cosine": float(cos[j]),
                "n_examples": int(counts[s]),
            }
            for s, subset in enumerate(("clean", "noisy"))
            for j, layer in enumerate(self.groups)
        ]
        return pd.DataFrame(rows)


@contextlib.contextmanager
def _frozen_parameters(model: nn.Module) -> Iterator[None]:
    """No parameter asks for a gradient inside the block (a backward pass then computes
    the gradients with respect to the inputs alone)."""
    wanted = [p for p in model.parameters() if p.requires_grad]
    for p in wanted:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in wanted:
            p.requires_grad_(True)


def _frozen(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies that training cannot change while a background thread writes them."""
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}


def _summary_groups(split: np.ndarray, is_noisy: np.ndarray) -> dict[str, np.ndarray]:
    train = split == "train"
    groups = {
        "train": train,
        "clean": train & ~is_noisy,
        "noisy": train & is_noisy,
        "test": split == "test",
    }
    return {name: mask for name, mask in groups.items() if mask.any()}


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
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memdash-writer")
        self._pending: Future | None = None
        self._groups = _summary_groups(split, noisy.cpu().numpy()) if split is not None else {}
        self.record_sensitivity = loss_sensitivity
        # critical samples: (examples in the seeded subset, radius, steps, seed) or None
        self.critical = critical
        self._critical_ids = None
        if critical is not None:
            count, _, _, seed = critical
            generator = torch.Generator().manual_seed(seed)
            pick = torch.randperm(len(labels), generator=generator)[: min(count, len(labels))]
            self._critical_ids = pick.sort().values.to(inputs.device)

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
        stats, embeddings = self.evaluate(epoch in self.embed_epochs)
        jobs.append(
            partial(
                w.write_trace, "eval", epoch, stats_table("eval", epoch, self._all_ids(), stats)
            )
        )
        jobs += [partial(w.write_embedding, epoch, k, v) for k, v in embeddings.items()]
        if self.accountant is not None and epoch > 0:
            jobs.append(partial(w.write_layer_grads, epoch, self.accountant.frame(epoch)))
            self.accountant.reset()
        if epoch in self.checkpoint_epochs:
            jobs.append(partial(w.write_checkpoint, epoch, _frozen(self.model.state_dict())))
        if resume_state is not None:
            tensors, meta = resume_state
            jobs.append(
                partial(w.write_resume_state, _frozen(tensors), json.loads(json.dumps(meta)))
            )
        summary = {"epoch": epoch} | self._accuracies(stats)
        jobs.append(partial(w.commit_epoch, epoch, last_epoch=summary))
        self._submit(jobs)
        return summary

    def flush(self) -> None:
        """Wait until every epoch handed over is on disk; raise the first write error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def finish(self, status: str = "complete", **extra: Any) -> None:
        """Flush the writes, then mark the run `complete` (or `failed`), adding `extra`
        to run.json."""
        try:
            self.flush()
        finally:
            self._io.shutdown(wait=True)
            self.writer.finish(status, **extra)

    def group_accuracies(self) -> dict[str, float]:
        """Accuracy (given labels) of an eval pass now: ``{train,clean,noisy,test}_acc``."""
        stats, _ = self.evaluate()
        return self._accuracies(stats)

    def _accuracies(self, stats: dict[str, torch.Tensor]) -> dict[str, float]:
        correct = stats["correct"].cpu().numpy()
        return {f"{name}_acc": float(correct[mask].mean()) for name, mask in self._groups.items()}

    # --------------------------------------------------------------- helpers
    def _submit(self, jobs: list[Callable[[], None]]) -> None:
        self.flush()  # at most one epoch in flight: bounded memory, errors surface early

        def run() -> None:
            for job in jobs:
                job()

        self._pending = self._io.submit(run)

    def _all_ids(self) -> np.ndarray:
        return np.arange(len(self.labels))

    def _train_source_table(self, epoch: int) -> pa.Table | None:
        if not self._batches:
            return None
        ids = torch.cat([b[0] for b in self._batches]).to(self.labels.device)
        logits = torch.cat([b[1] for b in self._batches])
        self._batches = []
        order = torch.arange(len(ids), device=ids.device)
        last = torch.full((len(self.labels),), -1, dtype=torch.long, device=ids.device)
        last.scatter_reduce_(0, ids, order, reduce="amax")
        presented = torch.nonzero(last >= 0).squeeze(1)
        pick = last[presented]
        stats = example_stats(
            logits[pick.to(logits.device)], self.labels[presented].to(logits.device)
        )
        return stats_table("train", epoch, presented.cpu().numpy(), stats)

    @torch.no_grad()
    def _forward(self, inputs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The model on a batch, its example ids known to any example-tied dropout."""
        with example_ids(self.model, ids):
            return self.model(inputs)

    def _forward_grad(self, inputs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """`_forward` keeping the graph (for gradients with respect to the inputs)."""
        with example_ids(self.model, ids):
            return self.model(inputs)

    def _critical(self) -> torch.Tensor:
        """Per example, 1.0 if critical (Arpit et al.), 0.0 if not, NaN outside the subset."""
        _, radius, steps, seed = self.critical
        out = torch.full((len(self.labels),), float("nan"), device=self.inputs.device)
        with _frozen_parameters(self.model):
            for ids in torch.split(self._critical_ids, self.eval_batch_size):
                found = critical_samples(
                    self._forward_grad, self.inputs[ids], ids, radius=radius, steps=steps, seed=seed
                )
                out[ids] = found.float()
        return out

    def evaluate(self, with_embeddings: bool = False):
        """Eval-mode pass over every example; returns (stats, {layer: (N, D) array})."""
        was_training = self.model.training
        self.model.eval()
        captured: dict[str, list[torch.Tensor]] = {name: [] for name in self.embed_layers}
        hooks = []
        if with_embeddings:
            for name in self.embed_layers:
                hooks.append(
                    getattr(self.model, name).register_forward_hook(
                        lambda _m, _i, out, name=name: captured[name].append(
                            layer_embedding(name, out).detach().flatten(1)
                        )
                    )
                )
        chunks = zip(
            torch.split(self.inputs, self.eval_batch_size),
            torch.split(
                torch.arange(len(self.inputs), device=self.inputs.device), self.eval_batch_size
            ),
            strict=True,
        )
        try:
            try:
                if self.record_sensitivity:  # the same forward pass, plus one backward a batch
                    with _frozen_parameters(self.model):  # gradients reach the inputs only
                        parts = [
                            loss_sensitivity(self._forward_grad, x, self.labels[ids], ids)
                            for x, ids in chunks
                        ]
                    logits = torch.cat([p[0] for p in parts])
                    sensitivity = torch.cat([p[1] for p in parts])
                else:
                    logits = torch.cat([self._forward(x, ids) for x, ids in chunks])
            finally:
                for hook in hooks:
                    hook.remove()
            # the search runs its own forward passes: after the embeddings were captured
            critical = self._critical() if self.critical is not None else None
        finally:
            self.model.train(was_training)
        stats = example_stats(logits, self.labels.to(logits.device))
        if self.record_sensitivity:
            stats["loss_sensitivity"] = sensitivity
        if critical is not None:
            stats["critical"] = critical
        torch_dtype = torch.float16 if self.embed_dtype == np.float16 else torch.float32
        embeddings = {
            name: torch.cat(parts).to(torch_dtype).cpu().numpy()
            for name, parts in captured.items()
            if parts
        }
        return stats, embeddings
