"""What both trainer callbacks share: the run's life from the first epoch to the last.

A `CallbackRecording` creates the run when training starts from scratch
(recording epoch 0, the model before training), or reopens it when the trainer
resumes from a checkpoint; keeps the logits of each training batch (a forward
hook on the network, train mode, before the update); records each epoch
through a `TraceRecorder`; and marks the run complete or failed at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.store import Run
from memdash.integrations.eval_batch import eval_batch_size

__all__ = ["CallbackRecording", "logits_of"]


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a network's output: the tensor itself, or its ``logits`` field
    (a Hugging Face ``ModelOutput``)."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError(
        f"the network returned a {type(output).__name__}; memdash needs its logits, a tensor "
        "of shape (batch, classes) or an output with a .logits field"
    )


class CallbackRecording:
    """The run a trainer callback records.

    Parameters
    ----------
    path : the run directory
    inputs : shape (N, ...), every example (training examples first, then test)
    labels : int64, shape (N,), the labels trained with
    n_train : the first `n_train` examples are the training split
    true_labels : shape (n_train,), optional; training examples whose label
        differs are marked flipped (``is_noisy``)
    config : stored in run.json beside the recording options
    overwrite : replace a run already at `path` when training starts from scratch
    record : `TraceRecorder` options (``record_train``, ``embed_layers``,
        ``embed_epochs``, ``checkpoint_epochs``, ``embed_dtype``, ``eval_batch_size``);
        an ``eval_batch_size`` of None (the default) is chosen when training starts, the
        largest that fits the device's memory budget (`eval_batch.eval_batch_size`), and
        stored in run.json's ``config.record``
    """

    def __init__(
        self,
        path: str | Path,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        n_train: int,
        *,
        true_labels: torch.Tensor | None = None,
        config: dict[str, Any] | None = None,
        overwrite: bool = False,
        **record: Any,
    ) -> None:
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        self.path = Path(path)
        self.inputs, self.labels, self.n_train = inputs, labels.long(), n_train
        self.true_labels = true_labels
        self.config = dict(config or {})
        self.overwrite = overwrite
        batch = record.get("eval_batch_size")
        if batch is not None and (
            isinstance(batch, bool) or not isinstance(batch, int) or batch < 1
        ):
            raise ValueError(
                f"eval_batch_size must be a positive number of examples, or None to choose "
                f"the largest that fits; got {batch!r}"
            )
        self.record = {"grad_accounting": False, **record, "eval_batch_size": batch}
        self.recorder: TraceRecorder | None = None
        self._ids: torch.Tensor | None = None
        self._hook: torch.utils.hooks.RemovableHandle | None = None

    @property
    def record_train(self) -> bool:
        """Whether the training minibatches' statistics are kept (they need example ids)."""
        return bool(self.record.get("record_train", True))

    # ------------------------------------------------------------- the run
    def begin(self, model: nn.Module, device: torch.device, done: int, planned: int) -> None:
        """Start recording `model` with `done` epochs already trained (0: create the run
        and record epoch 0; otherwise reopen it after epoch `done`)."""
        if self.record["eval_batch_size"] is None:
            self.record["eval_batch_size"] = eval_batch_size(model, self.inputs, device=device)
        config = {
            **self.config,
            "train": {**self.config.get("train", {}), "epochs": int(planned)},
            "record": {
                "record_train": self.record_train,
                "embed_layers": list(self.record.get("embed_layers", ())),
                "embed_epochs": sorted(self.record.get("embed_epochs", ())),
                "checkpoint_epochs": sorted(self.record.get("checkpoint_epochs", (0,))),
                "eval_batch_size": self.record["eval_batch_size"],
            },
        }
        if done == 0:
            if (self.path / "run.json").exists() and not self.overwrite:
                raise FileExistsError(
                    f"run {self.path} already exists; resume the trainer from its checkpoint "
                    "to go on recording it, pass overwrite=True, or choose another path"
                )
            x, y = self.inputs.to(device), self.labels.to(device)
            self.recorder = TraceRecorder.create(
                self.path,
                model,
                x[: self.n_train],
                y[: self.n_train],
                x[self.n_train :] if len(x) > self.n_train else None,
                y[self.n_train :] if len(y) > self.n_train else None,
                true_labels=self.true_labels,
                config=config,
                overwrite=self.overwrite,
                **self.record,
            )
            self.recorder.start()
        else:
            self._check_same_examples()
            self.recorder = TraceRecorder.reopen(
                self.path, model, epoch=done, device=device, **self.record
            )
            self.recorder.writer.meta["epochs_planned"] = int(planned)  # a longer fit

    def end_epoch(self, epoch: int) -> None:
        """Record epoch `epoch` (1-based): its minibatch part and the eval pass."""
        self.recorder.end_epoch(epoch)

    def finish(self, error: BaseException | None = None) -> None:
        """Flush the writes and mark the run complete, or failed with `error`."""
        self.release()
        if self.recorder is None:
            return
        recorder, self.recorder = self.recorder, None
        if error is None:
            recorder.finish("complete")
        else:
            recorder.finish("failed", error=str(error) or type(error).__name__)

    # ------------------------------------------------------ minibatch logits
    def watch(self, network: nn.Module) -> None:
        """Keep the logits of the first forward pass of `network` in each training batch."""
        self.release()
        self._hook = network.register_forward_hook(self._on_forward)

    def expect(self, ids: torch.Tensor | None) -> None:
        """The example ids of the training batch about to run (None: not in a batch)."""
        self._ids = ids

    def release(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._ids = None

    def _on_forward(self, module: nn.Module, _inputs: Any, output: Any) -> None:
        ids, recorder = self._ids, self.recorder
        if ids is None or recorder is None or not module.training:
            return
        logits = logits_of(output)
        if logits.dim() != 2 or len(logits) != len(ids):
            raise ValueError(
                f"a training batch of {len(ids)} example ids gave logits of shape "
                f"{tuple(logits.shape)}; memdash needs one row of logits per example"
            )
        self._ids = None  # the first forward of the batch is the one trained on
        recorder.log_batch(ids.to(logits.device), logits)

    # --------------------------------------------------------------- checks
    def _check_same_examples(self) -> None:
        run = Run.open(self.path)
        labels = run.examples(["label"])["label"].to_numpy()
        if len(labels) != len(self.labels) or (labels != self.labels.cpu().numpy()).any():
            raise ValueError(
                f"cannot resume run {self.path}: it holds {len(labels)} examples whose labels "
                f"differ from the {len(self.labels)} examples given now"
            )
