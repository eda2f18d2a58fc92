"""Example ids for batches: a dataset wrapper that adds each item's index to the item.

memdash's traces are per example, so a callback must know which examples a
training batch holds. `WithIds` wraps a map-style dataset: item ``i`` becomes
``(*item, i)`` for a tuple or list, and ``{**item, "example_id": i}`` for a
dict; the default collate functions batch the ids into an int64 tensor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

ID_KEY = "example_id"

NO_IDS = (
    "the training batches carry no example ids: wrap the training dataset in "
    "memdash.integrations.WithIds (item i then ends with i)"
)


class WithIds(Dataset):
    """A map-style dataset whose items carry their index, the example id.

    Parameters
    ----------
    dataset : any map-style dataset (``__len__`` and ``__getitem__``) whose
        items are tuples, lists or dicts

    Examples
    --------
    >>> ds = WithIds([(0.5, 1), (0.25, 0)])
    >>> ds[1]
    (0.25, 0, 1)
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        if isinstance(item, Mapping):
            return {**item, ID_KEY: index}
        if isinstance(item, Sequence) and not isinstance(item, str | bytes):
            return (*item, index)
        raise TypeError(
            f"WithIds: item {index} is a {type(item).__name__}; items must be tuples, lists "
            "or dicts"
        )


def unwrapped(dataset: Any) -> Any:
    """The dataset inside a `WithIds` (the dataset itself otherwise)."""
    return dataset.dataset if isinstance(dataset, WithIds) else dataset


def batch_ids(batch: Any) -> torch.Tensor:
    """The example ids of a batch drawn from a `WithIds` dataset, int64 of shape (B,).

    The ``example_id`` entry of a dict batch, or the last element of a tuple
    or list batch. Raises ValueError naming the fix when the batch has none.
    """
    if isinstance(batch, Mapping):
        if ID_KEY not in batch:
            raise ValueError(f"{NO_IDS} (a batch with keys {sorted(batch)})")
        ids = batch[ID_KEY]
    elif isinstance(batch, Sequence) and not isinstance(batch, str | bytes) and batch:
        ids = batch[-1]
    else:
        raise ValueError(f"{NO_IDS} (a batch of type {type(batch).__name__})")
    integer = isinstance(ids, torch.Tensor) and not (
        ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool
    )
    if not (integer and ids.dim() == 1):
        raise ValueError(f"{NO_IDS} (its ids are {_describe(ids)})")
    return ids.long()


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def token_items(dataset: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, item) of a tokenized dataset (`WithIds` unwrapped), each item a dict with
    ``input_ids``; a TypeError names the first that is not."""
    dataset = unwrapped(dataset)
    for i in range(len(dataset)):
        item = dataset[i]
        if not isinstance(item, Mapping) or "input_ids" not in item:
            raise TypeError(
                f"item {i} of the dataset is not a dict with input_ids (it is a "
                f"{type(item).__name__}); tokenize the dataset first"
            )
        yield i, item
