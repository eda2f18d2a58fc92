"""A run's inputs as the pages draw them, whichever form the run stores (store/inputs.py).

`drawable_inputs(run)[i]` is example i's input as numbers to draw: the stored float array
of a full run; a thumbnail run's thumbnail (uint8 * scale + offset); a path run's source
image, read when asked, or a one-line note (a str) where there is nothing to read (a canary
memdash drew, a file that is missing).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from memdash.analysis.record.images import read_source
from memdash.analysis.store import Run
from memdash.analysis.store.inputs import dequantize

Reader = Callable[..., np.ndarray]
KEPT_IMAGES = 256  # a path run's source images kept once read (the pages' lists and detail)


class ThumbnailRows:
    """A thumbnail run's inputs, row i = example i as float32 (uint8 * scale + offset).

    Parameters
    ----------
    thumbnails : uint8 (N, ...) as stored (memory-mapped)
    info : run.json's ``inputs`` (``scale``, ``offset``)
    """

    def __init__(self, thumbnails: np.ndarray, info: dict[str, Any]) -> None:
        self.thumbnails, self.info = thumbnails, info

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.thumbnails.shape)

    def __len__(self) -> int:
        return len(self.thumbnails)

    def __getitem__(self, index: Any) -> np.ndarray:
        return dequantize(self.thumbnails[index], self.info)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Every thumbnail as float32 (comparing two runs' inputs)."""
        values = dequantize(self.thumbnails, self.info)
        return values if dtype is None else values.astype(dtype)


class PathRows:
    """A path run's inputs: row i read from example i's source when asked (float32
    (C, H, W) in [0, 1], `record.images.read_source`), or a one-line note instead.

    Parameters
    ----------
    paths : object (N,), each example's stored path (None: no source)
    info : run.json's ``inputs`` (``root``, ``source``, ``column``)
    reader : what reads one source (`read_source`; a test may pass its own)
    """

    def __init__(
        self, paths: np.ndarray, info: dict[str, Any], *, reader: Reader = read_source
    ) -> None:
        self.paths, self.info, self.reader = paths, info, reader
        self._kept: OrderedDict[int, np.ndarray | str] = OrderedDict()

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths),)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> np.ndarray | str:
        i = int(index)
        if i not in self._kept:
            self._kept[i] = self._read(i)
            if len(self._kept) > KEPT_IMAGES:
                self._kept.popitem(last=False)
        return self._kept[i]

    def _read(self, i: int) -> np.ndarray | str:
        path = self.paths[i]
        if path is None:
            return f"example {i} has no source file: memdash drew its input (a canary or noise)"
        info = self.info
        try:
            return self.reader(
                info["root"], info["source"], str(path), column=info.get("column", "image")
            )
        except ValueError as err:
            return str(err)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The stored paths (comparing two runs' inputs: the same files, the same inputs)."""
        return np.asarray(self.paths, dtype=dtype or object)


def drawable_inputs(run: Run) -> np.ndarray | ThumbnailRows | PathRows:
    """The run's inputs to draw, row i = example i (see the module docstring)."""
    stored = run.stored_inputs(mmap=True)
    if run.input_form == "thumbnail":
        return ThumbnailRows(stored, run.input_info)
    if run.input_form == "path":
        paths = [p if isinstance(p, str) else None for p in stored["path"]]  # null: None
        return PathRows(np.array(paths, dtype=object), run.input_info)
    return stored
