"""A data set as train and test arrays, and the seeded stratified split every loader uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset.

    Attributes
    ----------
    x_train, x_test : float32 arrays, shape (N_train, *input_shape), (N_test, *input_shape)
    y_train, y_test : int64 arrays, shape (N_train,), (N_test,)
    n_classes : number of classes; labels lie in 0..n_classes-1
    name : the dataset's name, for display
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def split_arrays(
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    test_fraction: float,
    name: str,
    *,
    n_classes: int | None = None,
) -> Dataset:
    """A seeded stratified train/test split (n_classes: default the largest label + 1)."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset(
        x_tr.astype(np.float32),
        y_tr.astype(np.int64),
        x_te.astype(np.float32),
        y_te.astype(np.int64),
        int(y.max()) + 1 if n_classes is None else n_classes,
        name,
    )


def saved_split_table(folder: Path):
    """One split of a Hugging Face dataset written by ``save_to_disk``, read with pyarrow
    alone (its ``state.json`` and Arrow stream files): a ``pyarrow.Table``.

    Raises
    ------
    ValueError
        Naming the folder: no readable state.json, an Arrow file missing or damaged, none.
    """
    import pyarrow as pa

    try:
        state = json.loads((folder / "state.json").read_text())
        files = [folder / part["filename"] for part in state["_data_files"]]
        tables = []
        for file in files:
            with pa.memory_map(str(file)) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException) as err:
        raise ValueError(f"{folder}: cannot read the saved dataset ({err})") from None
    if not tables:
        raise ValueError(f"{folder}: the saved dataset has no Arrow files")
    return pa.concat_tables(tables)
