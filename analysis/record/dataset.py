"""A data set as train and test arrays, and the seeded stratified split every loader uses."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from memdash.analysis.store.inputs import ExampleSources


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset.

    Attributes
    ----------
    x_train, x_test : float32 arrays, shape (N_train, *input_shape), (N_test, *input_shape)
    y_train, y_test : int64 arrays, shape (N_train,), (N_test,)
    n_classes : number of classes; labels lie in 0..n_classes-1
    name : the dataset's name, for display
    sources : for a dataset of files (folder, hf), where each example came from: its
        ``paths`` hold the training examples' then the test examples' (None: no files)
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    sources: ExampleSources | None = None

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
    sources: ExampleSources | None = None,
) -> Dataset:
    """A seeded stratified train/test split (n_classes: default the largest label + 1);
    `sources` (one path per row of `x`) are split with the examples."""
    from sklearn.model_selection import train_test_split

    arrays = (x, y) if sources is None else (x, y, sources.paths)
    split = train_test_split(*arrays, test_size=test_fraction, random_state=seed, stratify=y)
    x_tr, x_te, y_tr, y_te = split[:4]
    if sources is not None:  # the same rows as the examples': train then test
        sources = replace(sources, paths=np.concatenate(split[4:]))
    return Dataset(
        x_tr.astype(np.float32),
        y_tr.astype(np.int64),
        x_te.astype(np.float32),
        y_te.astype(np.int64),
        int(y.max()) + 1 if n_classes is None else n_classes,
        name,
        sources,
    )


def example_sources(data: Dataset, examples: pd.DataFrame) -> ExampleSources | None:
    """Each example's source (`Dataset.sources`) in the order of a run's examples
    (`corruption.prepare`: the training examples first, in the data's order, then canaries,
    the test examples, reference canaries): None for an input memdash drew itself (a canary,
    an input replaced by noise) and for a dataset of no files."""
    if data.sources is None:
        return None
    n_train = len(data.y_train)
    paths = np.full(len(examples), None, dtype=object)
    drawn = examples["corruption"].to_numpy()[:n_train] == "random_inputs"
    paths[:n_train] = np.where(drawn, None, data.sources.paths[:n_train])
    paths[(examples["split"] == "test").to_numpy()] = data.sources.paths[n_train:]
    return replace(data.sources, paths=paths)


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
