"""The three forms a run stores its inputs in (docs/run-format.md, "The inputs").

- ``full``: ``inputs.npy``, the inputs as trained (float32, row i = example i); what every
  step that re-evaluates the model needs (localize, estimate, ssft);
- ``thumbnail``: ``inputs_thumbnail.npy``, uint8, each image downscaled by area averaging to
  at most THUMBNAIL_SIDE x THUMBNAIL_SIDE (a 1-D signal or a vector to THUMBNAIL_SIDE**2
  values per channel), quantized with one ``scale`` and ``offset`` for the run (in
  run.json's ``inputs``): value = uint8 * scale + offset;
- ``path``: ``inputs_path.parquet`` (``example_id``, ``path``), where each example's input came
  from: an image file relative to the dataset folder (``--dataset folder``) or ``SPLIT#ROW``,
  a row of a saved Hugging Face dataset (``--dataset hf``); null for an input memdash drew
  itself (a canary, a ``random_inputs`` example).

A run without run.json's ``inputs`` key stores ``full`` (every run written before the forms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import load_npy, read_table

FORMS = ("full", "thumbnail", "path")
FILES = {"full": "inputs.npy", "thumbnail": "inputs_thumbnail.npy", "path": "inputs_path.parquet"}
PATH_COLUMNS = {"example_id": "int", "path": "string"}
SOURCE_KINDS = ("folder", "hf")  # what a ``path`` points into
THUMBNAIL_SIDE = 64  # an image thumbnail's largest side
THUMBNAIL_LENGTH = THUMBNAIL_SIDE**2  # a 1-D thumbnail's most values per channel
# ``auto`` stores the inputs in full up to this size (float32 bytes), thumbnails above it:
# CIFAR-10 (0.69 GiB) and CIFAR-100 or SVHN keep every step that re-evaluates the model;
# ImageNet (673 GiB at 224 x 224, 59 GiB even at 64 x 64) gets 12 KiB a thumbnail
AUTO_FULL_BYTES = 2 * 2**30
_CHUNK = 1024  # examples thumbnailed at once (bounded temporaries)
_DENSE_WEIGHTS = 2**22  # the most weights of an axis's resampling matrix (32 MiB)


@dataclass(frozen=True)
class ExampleSources:
    """Where each example's input came from, for ``--store-inputs path``.

    Attributes
    ----------
    root : the dataset's folder, absolute
    kind : ``folder`` (each path an image file under `root`) or ``hf`` (``SPLIT#ROW``: row ROW
        of the saved split in folder SPLIT under `root`, ``#ROW`` for a saved Dataset)
    paths : object array of str or None, one per example (None: no source file)
    column : hf: the column of images
    """

    root: str
    kind: str
    paths: np.ndarray
    column: str = "image"


def input_form(meta: dict[str, Any]) -> str:
    """The form a run's inputs are stored in (run.json's ``inputs.form``; ``full`` without)."""
    inputs = meta.get("inputs")
    return str(inputs.get("form", "full")) if isinstance(inputs, dict) else "full"


def meta_problem(meta: dict[str, Any]) -> str | None:
    """What run.json's ``inputs`` lacks to read its form (None when nothing): a thumbnail's
    ``scale`` and ``offset``, a path's ``root`` and ``source``."""
    inputs = meta.get("inputs")
    if not isinstance(inputs, dict):
        return None
    needed = {"thumbnail": ("scale", "offset"), "path": ("root", "source")}
    missing = [k for k in needed.get(input_form(meta), ()) if k not in inputs]
    return f"key 'inputs' of form {input_form(meta)!r} lacks {missing}" if missing else None


def resolve_form(requested: str, nbytes: int) -> str:
    """The form to store: `requested`, or for ``auto`` ``full`` up to AUTO_FULL_BYTES of
    inputs and ``thumbnail`` above.

    Raises
    ------
    ValueError
        For an unknown form, listing the valid ones.
    """
    if requested == "auto":
        return "full" if nbytes <= AUTO_FULL_BYTES else "thumbnail"
    if requested not in FORMS:
        raise ValueError(f"unknown input form {requested!r}; valid: auto, {', '.join(FORMS)}")
    return requested


def thumbnail_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One example's thumbnail shape: of an image (C, H, W) (any axes before the last two
    kept) the largest side brought to THUMBNAIL_SIDE at the same aspect ratio; of a vector
    (D,) or a signal (C, L) the last axis to at most THUMBNAIL_LENGTH; smaller ones kept."""
    if len(shape) >= 3:
        h, w = shape[-2:]
        factor = min(1.0, THUMBNAIL_SIDE / max(h, w))
        return (*shape[:-2], max(1, round(h * factor)), max(1, round(w * factor)))
    return (*shape[:-1], min(shape[-1], THUMBNAIL_LENGTH))


def area_weights(length: int, size: int) -> np.ndarray:
    """(size, length) float64: row j weighs each input cell i by the share of output cell j
    ([j L / size, (j + 1) L / size)) it covers, over the cell's width; rows sum to 1."""
    edges = np.arange(size + 1) * (length / size)
    cells = np.arange(length + 1)
    overlap = np.minimum(edges[1:, None], cells[None, 1:]) - np.maximum(
        edges[:-1, None], cells[None, :-1]
    )
    return np.clip(overlap, 0.0, None) / (length / size)


def area_resample(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    """`x` resampled along `axis` to `size` cells by area averaging: cell j is the mean of
    the input over [j L / size, (j + 1) L / size), fractional input cells weighted by their
    overlap. float32 for float32 input, else float64. A matrix product with `area_weights`
    (an image's axes); for a long axis (over _DENSE_WEIGHTS weights) the same from the
    running sum, without the matrix."""
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = np.asarray(x, dtype)
    axis, length = axis % x.ndim, x.shape[axis]
    if size * length <= _DENSE_WEIGHTS and axis >= x.ndim - 2:  # contiguous products
        weights = area_weights(length, size).astype(dtype)
        return x @ weights.T if axis == x.ndim - 1 else weights @ x
    moved = np.moveaxis(x, axis, -1)
    if size * length <= _DENSE_WEIGHTS:
        out = moved @ area_weights(length, size).T.astype(dtype)
    else:
        total = np.cumsum(moved, -1, dtype=np.float64)
        total = np.concatenate([np.zeros((*moved.shape[:-1], 1)), total], -1)
        edges = np.arange(size + 1) * (length / size)
        left = np.minimum(np.floor(edges).astype(np.int64), length - 1)
        at = total[..., left] + (edges - left) * moved[..., left]  # the running sum there
        out = (np.diff(at, axis=-1) / (length / size)).astype(dtype)
    return np.moveaxis(out, -1, axis)


def quantization(inputs: np.ndarray) -> tuple[float, float]:
    """(scale, offset) of the uint8 thumbnails of `inputs`: values in [0, 1] (images read
    from 8-bit files) over 255 steps of [0, 1], so that those pixels come back exactly; any
    other range over its own minimum and maximum (area averages never leave it)."""
    low = min(float(np.min(inputs[i : i + _CHUNK])) for i in range(0, len(inputs), _CHUNK))
    high = max(float(np.max(inputs[i : i + _CHUNK])) for i in range(0, len(inputs), _CHUNK))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("inputs hold NaN or infinite values: they cannot be thumbnailed")
    if low >= 0.0 and high <= 1.0:
        return 1.0 / 255.0, 0.0
    return ((high - low) / 255.0) or 1.0, low


def make_thumbnails(inputs: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Every example's thumbnail (`thumbnail_shape`), quantized to uint8.

    Parameters
    ----------
    inputs : (N, *shape) numbers, N >= 1

    Returns
    -------
    thumbnails : uint8 (N, *thumbnail_shape(shape)); value = thumbnails * scale + offset
    scale, offset : floats (`quantization`)
    """
    if inputs.ndim < 2 or len(inputs) == 0:
        raise ValueError(
            f"thumbnails need inputs of shape (N, ...) with N >= 1, got {inputs.shape}"
        )
    shape = tuple(inputs.shape[1:])
    small = thumbnail_shape(shape)
    scale, offset = quantization(inputs)
    out = np.empty((len(inputs), *small), np.uint8)
    for start in range(0, len(inputs), _CHUNK):
        chunk = inputs[start : start + _CHUNK]
        for axis in reversed(range(1, chunk.ndim)):  # the last (contiguous) axis first
            if small[axis - 1] != shape[axis - 1]:
                chunk = area_resample(chunk, axis, small[axis - 1])
        steps = np.rint((chunk - np.float32(offset)) * np.float32(1 / scale))
        out[start : start + len(chunk)] = np.clip(steps, 0, 255)
    return out, scale, offset


def dequantize(thumbnails: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """float32 values of stored thumbnails: uint8 * scale + offset (run.json's ``inputs``)."""
    return (np.asarray(thumbnails, np.float32) * np.float32(meta["scale"])) + np.float32(
        meta["offset"]
    )


def stored_inputs(
    inputs: np.ndarray, form: str, sources: ExampleSources | None
) -> tuple[Any, dict[str, Any] | None]:
    """What a new run stores of its `inputs` in `form` (resolved), and run.json's ``inputs``
    (None for ``full``, which run.json leaves out): computed before anything is written.

    Raises
    ------
    ValueError
        ``path`` without `sources` (a dataset of no files), or sources of the wrong length.
    """
    shape = [int(n) for n in inputs.shape[1:]]
    if form == "full":
        return inputs, None
    if form == "thumbnail":
        small, scale, offset = make_thumbnails(inputs)
        meta = {"scale": scale, "offset": offset, "thumbnail_shape": list(small.shape[1:])}
        return small, {"form": form, "file": FILES[form], "shape": shape, **meta}
    if sources is None:
        raise ValueError(
            "--store-inputs path needs a dataset of files (--dataset folder or hf); these "
            "inputs have none: store them full or as thumbnails"
        )
    if len(sources.paths) != len(inputs) or sources.kind not in SOURCE_KINDS:
        raise ValueError(
            f"{len(sources.paths)} source paths of kind {sources.kind!r} for {len(inputs)} "
            f"inputs; expected one per example, of kind {' or '.join(SOURCE_KINDS)}"
        )
    table = pa.table(
        {
            "example_id": pa.array(np.arange(len(inputs)), pa.int64()),
            "path": pa.array(list(sources.paths), pa.string()),
        }
    )
    meta = {"root": sources.root, "source": sources.kind, "column": sources.column}
    return table, {"form": form, "file": FILES[form], "shape": shape, **meta}


def load_stored(run: Path, meta: dict[str, Any], n_examples: int, mmap: bool) -> Any:
    """The stored inputs of a run, checked: ``full`` and ``thumbnail`` (N, ...) arrays
    (memory-mapped when `mmap`), ``path`` a frame (``example_id`` 0..N-1, ``path``)."""
    form = input_form(meta)
    rel = FILES[form]
    if form == "path":
        frame = read_table(run, run / rel, PATH_COLUMNS, None)
        if not np.array_equal(frame["example_id"].to_numpy(), np.arange(n_examples)):
            raise RunFormatError(run, rel, f"example_id must be 0..{n_examples - 1} in order")
        return frame
    array = load_npy(run, rel, mmap)
    if array.ndim < 1 or len(array) != n_examples:
        raise RunFormatError(run, rel, f"shape {array.shape}, expected {n_examples} rows")
    if form == "thumbnail" and array.dtype != np.uint8:
        raise RunFormatError(run, rel, f"dtype {array.dtype}, expected uint8")
    return array


def not_full(run: Path, meta: dict[str, Any]) -> RunFormatError:
    """The error of a read of the full inputs from a run that stores another form."""
    form = input_form(meta)
    kept = "thumbnails" if form == "thumbnail" else "the path of each example's source"
    return RunFormatError(
        run,
        FILES["full"],
        f"not stored: the run keeps {kept} ({FILES[form]}, memdash train --store-inputs "
        f"{form}); what re-evaluates the model needs a run trained with --store-inputs full",
    )
