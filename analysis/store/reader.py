"""Reading a run: `Run`, a run directory opened for reading (docs/run-format.md).

Every read checks what it reads and raises `RunFormatError` naming the run, the file and
what was expected; epochs after ``epochs_completed`` are never returned. The checks live
in `checks`, checked file reading in `files`, the trace in `trace`, weights in
`checkpoints` and the derived results in `derived`; `Run` puts them behind one object.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis.store import checkpoints, checks, derived, inventory, trace
from memdash.analysis.store import inputs as stored
from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import load_npy, read_parts, read_table
from memdash.analysis.store.layout import (
    EPOCH_DIR,
    EXAMPLES_COLUMNS,
    GRADS_PART,
    LAYER_GRADS_COLUMNS,
    TOKENIZER_FILE,
    TOKENS_PART,
    TRACE_COLUMNS,
    parts,
)


class Run:
    """A run directory opened for reading; `Run.open` validates run.json.

    Every read checks what it reads and raises `RunFormatError` naming the
    run, the file and what was expected. Epochs after `epochs_completed`
    (left by a killed process) are never returned.
    """

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta

    @classmethod
    def open(cls, path: str | Path) -> Run:
        path = Path(path)
        return cls(path, checks.read_run_json(path))

    # --- metadata
    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def status(self) -> str:
        return str(self.meta["status"])

    @property
    def epochs_completed(self) -> int:
        return int(self.meta["epochs_completed"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.meta["config"])

    @property
    def n_classes(self) -> int:
        return int(self.meta.get("n_classes") or self.examples(["label"])["label"].max() + 1)

    @property
    def layers(self) -> list[str]:
        return list(self.meta.get("layers", []))

    @property
    def is_text(self) -> bool:
        """A run of a language model, whose examples are sequences (run.json ``modality``)."""
        return self.meta.get("modality") == "text"

    def in_layer_order(self, names: Iterable[str]) -> list[str]:
        """Layer names in the network's forward order (names it does not list last, by name)."""
        order = {name: i for i, name in enumerate(self.layers)}
        return sorted(names, key=lambda name: (order.get(name, len(order)), name))

    # --- tables
    def examples(self, columns: list[str] | None = None) -> pd.DataFrame:
        """examples.parquet (one row per example, row i = example i)."""
        frame = read_table(self.path, self.path / "examples.parquet", EXAMPLES_COLUMNS, columns)
        if "example_id" in frame and not np.array_equal(
            frame["example_id"].to_numpy(), np.arange(len(frame))
        ):
            raise RunFormatError(
                self.path, "examples.parquet", "example_id must be 0..N-1 in order"
            )
        return frame

    def n_examples(self) -> int:
        file = self.path / "examples.parquet"
        try:
            return pq.ParquetFile(file).metadata.num_rows
        except (pa.ArrowException, OSError) as err:
            raise RunFormatError(
                self.path, "examples.parquet", f"not a readable Parquet file ({err})"
            ) from err

    @property
    def input_form(self) -> str:
        """How the run stores its inputs: ``full`` (inputs.npy), ``thumbnail`` or ``path``."""
        return stored.input_form(self.meta)

    @property
    def input_info(self) -> dict[str, Any]:
        """run.json's ``inputs``: the form, its file and per-example ``shape`` as trained; a
        thumbnail's ``scale``, ``offset`` and ``thumbnail_shape``; a path's ``root``,
        ``source`` (folder or hf) and image ``column`` (``{"form": "full"}`` for full)."""
        return dict(self.meta.get("inputs") or {"form": "full", "file": stored.FILES["full"]})

    def stored_inputs(self, *, mmap: bool = True) -> np.ndarray | pd.DataFrame:
        """The inputs in the run's `input_form`, checked: the float inputs.npy, the uint8
        thumbnails (value = uint8 * scale + offset, `input_info`), or the frame of source
        paths (``example_id``, ``path``; null for an input memdash drew itself)."""
        return stored.load_stored(self.path, self.meta, self.n_examples(), mmap)

    def inputs(self, *, mmap: bool = True) -> np.ndarray:
        """inputs.npy, row i = example i, memory-mapped by default; a RunFormatError for
        a run that stores thumbnails or paths instead (`input_form`)."""
        if self.input_form != "full":
            raise stored.not_full(self.path, self.meta)
        array = load_npy(self.path, "inputs.npy", mmap)
        if array.ndim < 1 or len(array) != self.n_examples():
            raise RunFormatError(
                self.path, "inputs.npy", f"shape {array.shape}, expected {self.n_examples()} rows"
            )
        return array

    def trace_parts(self, source: str | None = None) -> dict[tuple[str, int], Path]:
        """The committed trace part files by (source, epoch)."""
        return trace.trace_parts(self.path, self.epochs_completed, source)

    def missing_files(self) -> list[str]:
        """The files the committed epochs promise but the run lacks, relative to the run: an
        eval trace part per epoch 0..E; a minibatch part per epoch 1..E when the run records
        them; and, when the config says which, its embeddings and checkpoints."""
        return checks.missing_files(self.path, self.meta)

    def trace_columns(self, source: str = "eval") -> list[str]:
        """The columns of a source's trace (optional ones such as ``loss_sensitivity``
        included), from its first part's schema; [] without parts."""
        found = [f for (s, _), f in sorted(self.trace_parts().items()) if s == source]
        return pq.read_schema(found[0]).names if found else []

    def trace_sources(self) -> list[str]:
        return sorted({s for s, _ in self.trace_parts()})

    def trace(
        self,
        source: str | None = "eval",
        *,
        columns: list[str] | None = None,
        epochs: Iterable[int] | None = None,
    ) -> pd.DataFrame:
        """The long-format trace, one row per (source, epoch, example).

        Parameters
        ----------
        source : ``eval``, ``train`` or None for both
        columns : the columns to read (None = all)
        epochs : the epochs to read (None = 0..epochs_completed)
        """
        if source is not None:
            trace.check_trace_source(source)
        found = self.trace_parts(source)
        wanted = None if epochs is None else set(epochs)
        files = [p for (_, e), p in sorted(found.items()) if wanted is None or e in wanted]
        return read_parts(self.path, files, TRACE_COLUMNS, columns)

    def trace_grids(
        self, source: str, columns: Iterable[str], *, first_epoch: int = 1
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A source's trace as (E, N) float64 arrays, read one epoch's part at a time.

        The result equals ``dynamics.trace_matrices(run.trace(source), N, columns)``
        (epochs >= `first_epoch`, NaN where an example is absent), but the long
        trace never sits in memory: the peak is the arrays plus one part, about
        a tenth of reading the whole trace first.

        Returns
        -------
        epochs : int, shape (E,), the recorded epochs >= `first_epoch`
        grids : column -> float64 array of shape (E, N)
        """
        trace.check_trace_source(source)
        return trace.trace_grids(
            self.path,
            self.trace_parts(source),
            self.n_examples(),
            columns,
            first_epoch=first_epoch,
        )

    def layer_grads(self) -> pd.DataFrame:
        """Per-layer gradient norms of the clean and flipped parts of the loss (may be empty)."""
        files = [
            p
            for p, m in parts(self.path / "layer_grads.parquet", GRADS_PART)
            if int(m.group(1)) <= self.epochs_completed
        ]
        return read_parts(self.path, files, LAYER_GRADS_COLUMNS, None)

    # --- arrays and weights
    def embedding_index(self) -> dict[int, list[str]]:
        """Recorded embeddings: epoch -> layer names."""
        out: dict[int, list[str]] = {}
        for d, m in parts(self.path / "embeddings", EPOCH_DIR):
            epoch = int(m.group(1))
            if epoch <= self.epochs_completed:
                out[epoch] = sorted(f.stem for f in d.glob("*.npy"))
        return dict(sorted(out.items()))

    def embedding(self, epoch: int, layer: str, *, mmap: bool = True) -> np.ndarray:
        """A layer's outputs at an epoch, shape (N, D)."""
        rel = f"embeddings/epoch_{epoch:03d}/{layer}.npy"
        if layer not in self.embedding_index().get(epoch, []):
            raise RunFormatError(
                self.path, rel, f"not recorded; recorded: {self.embedding_index()}"
            )
        array = load_npy(self.path, rel, mmap)
        if array.ndim != 2 or len(array) != self.n_examples():
            raise RunFormatError(
                self.path, rel, f"shape {array.shape}, expected ({self.n_examples()}, D)"
            )
        return array

    def token_loss_epochs(self) -> list[int]:
        """Text runs: the committed epochs whose per-token losses are stored."""
        found = parts(self.path / "tokens", TOKENS_PART)
        epochs = (int(m.group(1)) for _, m in found)
        return sorted(e for e in epochs if e <= self.epochs_completed)

    def token_losses(self, epoch: int, *, mmap: bool = True) -> np.ndarray:
        """Text runs: per-token losses (nats) at an epoch, float16 (N, L) aligned with the
        tokens of inputs.npy, NaN after each sequence's end."""
        rel = f"tokens/epoch_{epoch:03d}.npy"
        if epoch not in self.token_loss_epochs():
            raise RunFormatError(
                self.path, rel, f"not recorded; recorded epochs: {self.token_loss_epochs()}"
            )
        array = load_npy(self.path, rel, mmap)
        shape = self.inputs().shape
        if array.shape != shape:
            raise RunFormatError(self.path, rel, f"shape {array.shape}, expected {shape}")
        return array

    def tokenizer_json(self) -> str | None:
        """Text runs: the run's own tokenizer (tokenizer.json, a trained BPE), or None."""
        file = self.path / TOKENIZER_FILE
        if not file.is_file():
            return None
        try:
            return file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise RunFormatError(self.path, TOKENIZER_FILE, f"not readable ({err})") from err

    def checkpoint_epochs(self) -> list[int]:
        return checkpoints.checkpoint_epochs(self.path, self.epochs_completed)

    def checkpoint(self, epoch: int) -> dict[str, Any]:
        """Model weights (a state dict of tensors) after `epoch` epochs."""
        return checkpoints.load_checkpoint(self.path, epoch, self.epochs_completed)

    def resume_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(tensors, metadata) of the state saved after the last complete epoch."""
        return checkpoints.load_resume_state(self.path, self.epochs_completed)

    # --- derived results
    def derived_path(self, name: str) -> Path:
        """RUN/derived/NAME, where NAME is a file name, optionally under one folder."""
        return derived.derived_path(self.path, name)

    def read_derived(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return derived.read_derived(self.path, name, columns)

    def write_derived(self, name: str, frame: pd.DataFrame) -> None:
        derived.write_derived(self.path, name, frame)

    def derived_manifest(self) -> dict[str, Any]:
        """derived/manifest.json: per step, what its result was computed from ({} if none),
        keeping only the steps whose files all match the SHA-256 and size it recorded (a
        truncated or overwritten table reads as not computed; each version of a file is
        hashed once per process). Steps of a manifest that recorded no hashes are kept."""
        return derived.verified_manifest(self.path)

    def derived_problems(self) -> tuple[list[tuple[str, str]], list[str], list[str]]:
        """What is wrong in derived/ as (file, problem) pairs (a manifest that is not JSON, a
        file that is missing or does not match its hash, every file hashed), the derived
        files that match, and those that cannot be verified (their manifest recorded no
        hashes)."""
        return derived.manifest_problems(self.path)

    def replace_derived(
        self, step: str, tables: dict[str, pd.DataFrame], entry: dict[str, Any]
    ) -> None:
        """Write a step's tables, remove the files it wrote before and no longer does,
        then record `entry` plus the file list in the manifest (last, so an
        interruption leaves the step stale)."""
        derived.replace_derived(self.path, step, tables, entry)

    def heldout_array(self, name: str) -> np.ndarray:
        """An array of `memdash estimate` under RUN/heldout/ (see analysis/ensemble/estimate.py)."""
        return derived.heldout_array(self.path, name)

    # --- validation
    def validate(self) -> list[str]:
        """Check every file of the run; return a list of notes, raise RunFormatError on a fault."""
        notes = []
        self.check_parts()
        examples = self.examples()
        checks.check_splits(self.path, examples)
        self.stored_inputs()
        n = len(examples)
        found = self.trace_parts()
        for (source, epoch), file in found.items():
            checks.check_trace_part(self.path, file, source, epoch, n)
        eval_epochs = sorted(e for s, e in found if s == "eval")
        notes.append(f"{len(found)} trace parts; eval epochs {checks.ranges(eval_epochs)}")
        self.layer_grads()
        for epoch, layers in self.embedding_index().items():
            for layer in layers:
                self.embedding(epoch, layer)
        notes.append(f"embeddings at epochs {list(self.embedding_index())}")
        for epoch in self.checkpoint_epochs():
            checkpoints.check_checkpoint(self.path, epoch)
        notes.append(f"checkpoints at epochs {self.checkpoint_epochs()}")
        return notes

    def survey(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Every file of the run folder the store does not account for, as (file, why) pairs:
        the unexpected (names the store never writes, and parts of epochs never committed that
        do not read) and the leftovers of a killed writer (see `inventory.survey`)."""
        return inventory.survey(self.path, self.meta, derived.read_manifest(self.path))

    def check_parts(self) -> None:
        """A quick check (milliseconds) that no link leads out of the run directory, that
        every file the committed epochs promise exists, and that every trace and
        layer-gradient part has a readable Parquet footer and schema; RunFormatError names
        the first such file."""
        checks.check_parts(self.path, self.meta)

    def check_links(self) -> None:
        """Refuse a run whose files or folders are links leading out of the run directory.

        memdash reads and writes only inside a run: a link to elsewhere (another run's
        trace, /etc/passwd, a derived/ folder on another disk) raises RunFormatError naming
        the link and where it leads. Links that stay inside the run are fine.
        """
        checks.check_links(self.path)
