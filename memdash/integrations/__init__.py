"""Record a run from the trainers researchers use, into the same run store as `memdash train`.

``memdash.integrations.lightning.TraceCallback``
    a PyTorch Lightning callback (extra ``memdash[lightning]``);
``memdash.integrations.transformers.TraceCallback``
    a Hugging Face ``Trainer`` callback for sequence classification, or with
    ``task="causal_lm"`` for a causal language model's fine-tuning, recorded as a text run
    (extra ``memdash[transformers]``).

Both learn which examples a training batch holds from `WithIds`, a dataset
wrapper that adds each item's index (its example id) to the item.
"""

from memdash.integrations.ids import ID_KEY, WithIds, batch_ids

__all__ = ["ID_KEY", "WithIds", "batch_ids"]
