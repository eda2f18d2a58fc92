"""A data set as train and test arrays, and the seeded stratified split every loader uses."""

from __future__ import annotations

from dataclasses import dataclass

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
