"""TextRecorder: the per-sequence trace of a causal language model.

A sequence is one example. Per recorded epoch and per sequence it stores, from the eval pass
(every sequence, eval mode) and from the training minibatches (train mode, before the
update), the trace columns of docs/run-format.md read for text:

``loss``
    the mean token loss (cross-entropy in nats over the sequence's tokens, each predicted
    from the ones before it and BOS);
``log_perplexity``
    the sum of the token losses in bits (the Secret Sharer's Px of the whole sequence);
``token_accuracy``
    the share of tokens whose argmax is the token;
``prob_label``, ``margin``
    the geometric mean token probability exp(-loss), and the mean token margin;
``pred``
    -1 (a sequence has no class);
``correct``
    extractable (Carlini et al. 2023): greedy decoding from the first ``prefix_len`` tokens
    reproduces the next ``suffix_len`` exactly, read from the same forward pass (the argmax
    at each suffix position, fed the true tokens, is the token: by induction that is what
    greedy decoding generates).

Forgetting events, data maps, learning time and every other trace score then read sequences
as they read images. Per-token losses (float16, NaN after a sequence's end) are stored at the
embedding and checkpoint epochs (``tokens/epoch_EEE.npy``), and embeddings are a layer's
hidden state once the model has read BOS and every token of the sequence (one pass one
position longer than the eval pass), or its mean over the states after each token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import numpy as np
import pyarrow as pa
import torch

from memdash.analysis.record.eval_pass import normal_buffers
from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.record.stats import accuracies_by_group, stats_table
from memdash.analysis.record.text.models import CausalLM
from memdash.analysis.record.text.scoring import (
    model_inputs,
    sequence_statistics,
    token_statistics,
)
from memdash.analysis.store import RunWriter

POOLS = ("last", "mean")


class TextRecorder(TraceRecorder):
    """Records the per-sequence trace, per-token losses, embeddings and checkpoints of a
    causal language model into a run.

    Parameters
    ----------
    writer : the run being written
    model : the language model (`CausalLM`); its top-level children are its layers
    tokens : int64, shape (N, L), every sequence's tokens, -1 after its end (inputs.npy)
    bos : the tokenizer's BOS id, fed before every sequence
    prefix_len, suffix_len : int, shape (N,): each sequence's extraction prefix P and
        suffix S (a canary's prefix is its format's text before the secret)
    split : shape (N,), ``train``/``test``/``reference`` per sequence
    embed_pool : ``last`` (the hidden state at the last token) or ``mean`` (over tokens)
    record_train, embed_layers, embed_epochs, checkpoint_epochs, embed_dtype,
    eval_batch_size : as for `TraceRecorder`
    """

    def __init__(
        self,
        writer: RunWriter,
        model: CausalLM,
        tokens: torch.Tensor,
        *,
        bos: int,
        prefix_len: np.ndarray,
        suffix_len: np.ndarray,
        split: np.ndarray,
        embed_pool: str = "last",
        record_train: bool = True,
        embed_layers: Iterable[str] = (),
        embed_epochs: Iterable[int] = (),
        checkpoint_epochs: Iterable[int] = (0,),
        embed_dtype: str = "float16",
        eval_batch_size: int = 64,
    ) -> None:
        if embed_pool not in POOLS:
            raise ValueError(f"unknown embed_pool {embed_pool!r}; valid: {', '.join(POOLS)}")
        embed_epochs, checkpoint_epochs = list(embed_epochs), list(checkpoint_epochs)
        labels = torch.zeros(len(tokens), dtype=torch.long, device=tokens.device)
        super().__init__(
            writer,
            model,
            tokens,
            labels,
            record_train=record_train,
            grad_accounting=False,
            embed_layers=embed_layers,
            embed_epochs=embed_epochs,
            checkpoint_epochs=checkpoint_epochs,
            embed_dtype=embed_dtype,
            eval_batch_size=eval_batch_size,
            split=split,
        )
        self.bos, self.embed_pool = bos, embed_pool
        device = tokens.device
        self.prefix_len = torch.tensor(np.array(prefix_len), dtype=torch.long, device=device)
        self.suffix_len = torch.tensor(np.array(suffix_len), dtype=torch.long, device=device)
        self.n_tokens = (tokens >= 0).sum(1)
        self.token_epochs = set(embed_epochs) | set(checkpoint_epochs)
        self._token_losses: np.ndarray | None = None

    # ------------------------------------------------------------ in the loop
    def log_batch(self, ids: torch.Tensor, logits: torch.Tensor) -> None:
        """Keep a training minibatch's per-sequence statistics (train mode, before the
        update), from its logits of shape (B, T, V) over the batch's first T tokens."""
        if not self.record_train:
            return
        with torch.inference_mode():  # statistics only: nothing here reaches autograd
            tokens = self.inputs[ids][:, : logits.shape[1]]
            stats = sequence_statistics(
                token_statistics(logits.detach(), tokens),
                self.prefix_len[ids],
                self.suffix_len[ids],
            )
        self._batches.append((ids.detach(), stats))

    def _train_source_table(self, epoch: int) -> pa.Table | None:
        """The epoch's ``train`` trace part: each sequence's last presentation."""
        if not self._batches:
            return None
        batches, self._batches = self._batches, []
        ids = torch.cat([b[0] for b in batches])
        stats = {k: torch.cat([b[1][k] for b in batches]) for k in batches[0][1]}
        order = torch.arange(len(ids), device=ids.device)
        last = torch.full((len(self.labels),), -1, dtype=torch.long, device=ids.device)
        last.scatter_reduce_(0, ids, order, reduce="amax")
        presented = torch.nonzero(last >= 0).squeeze(1)
        picked = {k: v[last[presented]] for k, v in stats.items()}
        picked["pred"] = torch.full((len(presented),), -1, dtype=torch.long)
        return stats_table("train", epoch, presented.cpu().numpy(), picked)

    # --------------------------------------------------------------- eval pass
    def evaluate(
        self, with_embeddings: bool = False
    ) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
        """Eval-mode pass over every sequence under ``torch.inference_mode``; returns (stats,
        {layer: (N, D) array}) and keeps the per-token losses for `_epoch_extras`."""
        was_training = self.model.training
        self.model.eval()
        n, length = self.inputs.shape
        losses = np.full((n, length), np.nan, dtype=np.float16)
        parts: list[dict[str, torch.Tensor]] = []
        pooled: dict[str, list[torch.Tensor]] = {name: [] for name in self.embed_layers}
        try:
            with torch.inference_mode():
                for chunk in torch.split(
                    torch.arange(n, device=self.inputs.device), self.eval_batch_size
                ):
                    width = max(int(self.n_tokens[chunk].max()), 1)
                    tokens = self.inputs[chunk][:, :width]
                    ids, mask = model_inputs(tokens, self.bos)
                    per_token = token_statistics(self.model(ids), tokens)
                    parts.append(
                        sequence_statistics(
                            per_token, self.prefix_len[chunk], self.suffix_len[chunk]
                        )
                    )
                    losses[chunk.cpu().numpy(), :width] = per_token["loss"].cpu().numpy()
                    if with_embeddings and self.embed_layers:
                        # BOS and every token: position j holds the state after token j - 1
                        read = torch.cat([ids[:, :1], tokens.clamp(min=0)], dim=1)
                        hidden = self.model.hidden(read, self.embed_layers)
                        for name, states in hidden.items():
                            pooled[name].append(self._pool(states, mask))
        finally:
            self.model.train(was_training)
            normal_buffers(self.model)  # a cache the pass built lazily stays trainable
        stats = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        stats["pred"] = torch.full((n,), -1, dtype=torch.long)
        self._token_losses = losses
        dtype = torch.float16 if self.embed_dtype == np.float16 else torch.float32
        embeddings = {
            name: torch.cat(chunks).to(dtype).cpu().numpy()
            for name, chunks in pooled.items()
            if chunks
        }
        return stats, embeddings

    def _pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T + 1, D) hidden states of BOS and the T tokens -> (B, D): the state after the
        last token has been read, or the mean of the states after each token (BOS's left
        out); `mask` (B, T) marks the tokens."""
        if self.embed_pool == "last":
            last = mask.sum(1).clamp(min=1)  # the last token's own position, after BOS
            return states[torch.arange(len(states), device=states.device), last]
        weights = mask.to(states.dtype).unsqueeze(2)
        return (states[:, 1:] * weights).sum(1) / weights.sum(1).clamp(min=1)

    # --------------------------------------------------------------- helpers
    def _epoch_extras(self, epoch: int) -> list[Callable[[], None]]:
        if epoch not in self.token_epochs or self._token_losses is None:
            return []
        return [partial(self.writer.write_token_losses, epoch, self._token_losses)]

    def _summary(self, stats: dict[str, torch.Tensor]) -> dict[str, float]:
        """Per group the share extractable (``{group}_acc``) and the mean token loss."""
        loss = stats["loss"].cpu().numpy()
        means = {
            f"{name}_loss": float(np.nanmean(loss[mask])) for name, mask in self._groups.items()
        }
        return accuracies_by_group(stats, self._groups) | means
