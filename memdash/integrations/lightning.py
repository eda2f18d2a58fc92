"""Record a PyTorch Lightning training run into a memdash run.

Two lines in the user's code: wrap the training dataset in `WithIds`, and
unpack the id its batches now end with::

    train_loader = DataLoader(WithIds(train_set), batch_size=64, shuffle=True)
    ...
    def training_step(self, batch, batch_idx):
        x, y, _ids = batch              # was: x, y = batch

then ``Trainer(callbacks=[TraceCallback("runs/lit", train_set, test_set)])``.
The callback records, like `memdash train`:

- the statistics of every training minibatch (train mode, before the update),
  kept on the device and reduced once an epoch (the ``train`` source);
- an eval pass over every example at each epoch's end (the ``eval`` source), in eval
  mode under ``torch.inference_mode``, in the largest batches that fit (2-D max pools in
  channels-last layout on the CPU: the same values, faster), its files written by a
  background thread while the next epoch trains;
- embeddings of named layers at chosen epochs, and checkpoints (safetensors) at
  chosen epochs, 0 being the model before training;
- resume: ``trainer.fit(model, ckpt_path=...)`` goes on recording after the
  checkpoint's epoch (epochs the run holds beyond it are recorded again).

The network is the LightningModule itself, or its submodule named by
`network`; its layers are that module's top-level children that hold
parameters. The gradient accounting of ``memdash train`` (clean and flipped
parts of each batch's gradient) needs its own backward pass and is not
recorded here.

Needs the extra ``memdash[lightning]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader

from memdash.integrations.ids import NO_IDS, WithIds, batch_ids, unwrapped
from memdash.integrations.recording import CallbackRecording

__all__ = ["TraceCallback", "WithIds", "stack_dataset"]


def stack_dataset(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``(x, y)`` item of a map-style dataset as tensors (X of shape (N, ...), y int64
    of shape (N,)); a `WithIds` dataset is read without its ids."""
    dataset = unwrapped(dataset)
    xs, ys = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        if not isinstance(item, tuple | list) or len(item) < 2:
            raise TypeError(
                f"item {i} of the dataset is a {type(item).__name__}; TraceCallback reads "
                "(input, label) items"
            )
        xs.append(torch.as_tensor(item[0]))
        ys.append(int(item[1]))
    if not xs:
        raise ValueError("the dataset is empty")
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long)


def _check_ids(loaders: Any) -> None:
    """Raise ValueError when the training loader's dataset is not a `WithIds` (its
    batches would end with the labels, which cannot be told from ids)."""
    loader = loaders if isinstance(loaders, DataLoader) else None
    if loader is not None and not isinstance(loader.dataset, WithIds):
        raise ValueError(f"{NO_IDS} (the training loader reads a {type(loader.dataset).__name__})")


class TraceCallback(Callback):
    """A Lightning callback that records per-example traces into a memdash run.

    Parameters
    ----------
    path : the run directory (created when training starts from scratch)
    train_dataset : the training examples, ``(input, label)`` items; example i is item i
    test_dataset : optional held-out examples, ids following the training examples
    network : the attribute of the LightningModule holding the network (None: the
        module itself); its output must be the logits (or have a ``.logits`` field)
    true_labels : shape (N_train,), optional: examples whose label differs are flipped
    embed_layers, embed_epochs : layers of the network whose outputs are stored, and when
    checkpoint_epochs : epochs whose weights are stored as safetensors (0 = initialization)
    record_train : keep the statistics of the training minibatches
    eval_batch_size : examples per forward pass of the eval pass (None, the default: the
        largest that fits the device's memory, whatever the training batch size; see
        `memdash.integrations.eval_batch`)
    config : stored in run.json (for example the hyper-parameters)
    overwrite : replace a run already at `path` when training starts from scratch
    """

    def __init__(
        self,
        path: str | Path,
        train_dataset: Any,
        test_dataset: Any = None,
        *,
        network: str | None = None,
        true_labels: torch.Tensor | None = None,
        embed_layers: Iterable[str] = (),
        embed_epochs: Iterable[int] = (),
        checkpoint_epochs: Iterable[int] = (0,),
        record_train: bool = True,
        eval_batch_size: int | None = None,
        embed_dtype: str = "float16",
        config: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        x_train, y_train = stack_dataset(train_dataset)
        parts = [(x_train, y_train)]
        if test_dataset is not None:
            parts.append(stack_dataset(test_dataset))
        self.network = network
        self.recording = CallbackRecording(
            path,
            torch.cat([x for x, _ in parts]),
            torch.cat([y for _, y in parts]),
            len(y_train),
            true_labels=true_labels,
            config={"trainer": "lightning", **(config or {})},
            overwrite=overwrite,
            record_train=record_train,
            embed_layers=list(embed_layers),
            embed_epochs=list(embed_epochs),
            checkpoint_epochs=list(checkpoint_epochs),
            eval_batch_size=eval_batch_size,
            embed_dtype=embed_dtype,
        )

    @property
    def path(self) -> Path:
        return self.recording.path

    def _network(self, pl_module: LightningModule) -> torch.nn.Module:
        if self.network is None:
            return pl_module
        net = getattr(pl_module, self.network, None)
        if not isinstance(net, torch.nn.Module):
            raise ValueError(
                f"the LightningModule has no network {self.network!r}; its submodules: "
                f"{[name for name, _ in pl_module.named_children()]}"
            )
        return net

    # ----------------------------------------------------------- Lightning hooks
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # the loops' progress is restored from ckpt_path by now (not yet at on_fit_start)
        done = trainer.current_epoch
        if self.recording.record_train:
            _check_ids(trainer.train_dataloader)
        network = self._network(pl_module)
        self.recording.begin(network, pl_module.device, done, trainer.max_epochs or 0)
        self.recording.watch(network)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.recording.record_train:
            self.recording.expect(batch_ids(batch))

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.recording.expect(None)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.recording.end_epoch(trainer.current_epoch + 1)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.recording.finish()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self.recording.finish(exception)
