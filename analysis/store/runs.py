"""The run store: the only code that reads or writes a run directory.

A run is a directory readable without memdash (pandas, polars, DuckDB, numpy);
the layout is documented in docs/run-format.md (schema_version 1). Every file
is written atomically (a hidden temporary file, then a rename) and `run.json`
is updated last, so a run killed at any moment reads correctly up to its last
complete epoch. Nothing is pickled: tables are Parquet, arrays .npy, weights
safetensors, metadata JSON.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis import __version__

SCHEMA_VERSION = 1
STATUSES = ("created", "running", "complete", "failed")
SOURCES = ("eval", "train")
SPLITS = ("train", "test", "reference")

# column -> kind; kinds are checked on the Parquet schema without reading data
EXAMPLES_COLUMNS = {
    "example_id": "int",
    "split": "string",
    "label": "int",
    "true_label": "int",
    "is_noisy": "bool",
    "is_canary": "bool",
}
TRACE_COLUMNS = {
    "source": "string",
    "epoch": "int",
    "example_id": "int",
    "loss": "float",
    "prob_label": "float",
    "margin": "float",
    "pred": "int",
    "correct": "bool",
}
LAYER_GRADS_COLUMNS = {
    "epoch": "int",
    "layer": "string",
    "subset": "string",
    "grad_norm": "float",
    "share": "float",
    "cosine": "float",
    "n_examples": "int",
}
RUN_JSON_KEYS = {
    "schema_version": int,
    "name": str,
    "status": str,
    "epochs_completed": int,
    "config": dict,
    "created_at": str,
    "memdash_version": str,
}

_KIND_CHECKS: dict[str, Callable[[pa.DataType], bool]] = {
    "int": pa.types.is_integer,
    "float": pa.types.is_floating,
    "bool": pa.types.is_boolean,
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
}
_TRACE_PART = re.compile(r"^(eval|train)-epoch_(\d{3,})\.parquet$")
_GRADS_PART = re.compile(r"^epoch_(\d{3,})\.parquet$")
_EPOCH_DIR = re.compile(r"^epoch_(\d{3,})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_DERIVED_NAME = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


class RunFormatError(ValueError):
    """A run directory that does not meet the run-store contract.

    The message names the run, the file and what was expected.
    """

    def __init__(self, run: Path | str, file: str, problem: str) -> None:
        self.run, self.file, self.problem = str(run), file, problem
        super().__init__(f"run {self.run}: {file}: {problem}")


class RunNotWritable(RunFormatError):
    """A run directory that cannot be written (read-only, no permission, disk full)."""


# ----------------------------------------------------------------- the write lock

LOCK_NAME = ".memdash.lock"


@contextlib.contextmanager
def write_lock(
    path: str | Path, what: str, *, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the run's write lock while `what` computes and writes its derived results.

    An exclusive ``flock`` on RUN/.memdash.lock: a second process (another
    ``memdash analyze``, ``localize`` or ``estimate``, or the dashboard's compute
    button) waits for the first, told through `on_wait`, and then finds the
    results fresh; two never write the same files at once. The kernel drops the
    lock when its holder dies (a killed run is never left locked). A run
    directory that cannot be written raises RunNotWritable, before any work.
    """
    import fcntl

    lock_path = Path(path) / LOCK_NAME
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115  (held for the whole block)
    except OSError as err:
        raise RunNotWritable(
            path,
            LOCK_NAME,
            f"cannot write to the run directory ({err.strerror}): {what} "
            "stores its results under RUN/derived/; reading the run still works",
        ) from err
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"another memdash process is writing {path}; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------- atomic writes


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through `write(tmp)` into a hidden temporary sibling, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True)))


# trace parts are most of a run's bytes: ids delta-coded, floats byte-stream-split
# (which lets zstd find the shared exponents), small ints dictionary-coded.
_TRACE_ENCODING = {
    "use_dictionary": ["source", "epoch", "pred"],
    "column_encoding": {
        "example_id": "DELTA_BINARY_PACKED",
        "loss": "BYTE_STREAM_SPLIT",
        "prob_label": "BYTE_STREAM_SPLIT",
        "margin": "BYTE_STREAM_SPLIT",
    },
}


def _as_table(data: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False).replace_schema_metadata(None)


def write_parquet(path: Path, data: pd.DataFrame | pa.Table, **options: Any) -> None:
    """Write a frame as zstd Parquet (no pandas metadata: any reader gets plain columns)."""
    table = _as_table(data)
    _atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd", **options))


def write_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)

    _atomic(path, write)


def write_safetensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic(path, lambda tmp: save_file(clean, str(tmp), metadata=metadata))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------ writer


class RunWriter:
    """Writes one run directory, epoch by epoch.

    Use `RunWriter.create` for a new run and `RunWriter.reopen` to resume one.
    Per epoch, write the epoch's files, then `commit_epoch`; `finish` marks
    the run complete or failed.
    """

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        config: dict[str, Any],
        examples: pd.DataFrame,
        inputs: np.ndarray,
        n_classes: int,
        layers: Iterable[str] = (),
        name: str | None = None,
        overwrite: bool = False,
    ) -> RunWriter:
        """Start a new run: run.json (status ``created``), then examples.parquet and inputs.npy.

        The status turns ``running`` when epoch 0 is committed; a run stopped before
        that (a full disk) is ``created``: nothing of it is read, and ``--resume``
        starts it again from the top.
        """
        path = Path(path)
        if (path / "run.json").exists() and not overwrite:
            raise FileExistsError(
                f"run {path} already exists; pass --resume to continue it or choose another --out"
            )
        table = _checked_table(path, "examples.parquet", examples, EXAMPLES_COLUMNS)
        if len(inputs) != len(examples):
            raise ValueError(f"{len(inputs)} inputs for {len(examples)} examples")
        if not np.array_equal(examples["example_id"].to_numpy(), np.arange(len(examples))):
            raise ValueError("examples.example_id must be 0..N-1 in row order")
        if path.exists() and overwrite:
            _clear_run_files(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "name": name or path.name,
            "status": "created",
            "epochs_completed": 0,
            "epochs_planned": int(config.get("train", {}).get("epochs", 0)),
            "n_classes": int(n_classes),
            "layers": list(layers),
            "config": config,
            "created_at": _now(),
            "updated_at": _now(),
            "memdash_version": __version__,
        }
        writer = cls(path, meta)
        write_json(path / "run.json", meta)
        write_parquet(path / "examples.parquet", table)
        write_npy(path / "inputs.npy", inputs)
        return writer

    @classmethod
    def reopen(cls, path: str | Path, *, epoch: int | None = None) -> RunWriter:
        """Reopen an existing run to append epochs after its last complete one.

        With `epoch`, go on after that epoch instead: a trainer resumed from a
        checkpoint older than the run's last epoch records the later epochs
        again (readers ignore the files of uncommitted epochs; they are
        overwritten as those epochs are recorded).
        """
        run = Run.open(path)
        meta = dict(run.meta, status="running", updated_at=_now())
        if epoch is not None:
            if not 0 <= epoch <= run.epochs_completed:
                raise RunFormatError(
                    run.path,
                    "run.json",
                    f"cannot resume after epoch {epoch}: the run holds epochs "
                    f"0..{run.epochs_completed}",
                )
            meta["epochs_completed"] = int(epoch)
        writer = cls(run.path, meta)
        write_json(writer.path / "run.json", meta)
        return writer

    @property
    def epochs_completed(self) -> int:
        return int(self.meta["epochs_completed"])

    def write_trace(self, source: str, epoch: int, data: pd.DataFrame | pa.Table) -> None:
        """One source's statistics at one epoch (columns TRACE_COLUMNS)."""
        if source not in SOURCES:
            raise ValueError(f"unknown trace source {source!r}; valid: {', '.join(SOURCES)}")
        table = _checked_table(self.path, "trace.parquet", data, TRACE_COLUMNS)
        write_parquet(
            self.path / "trace.parquet" / f"{source}-epoch_{epoch:03d}.parquet",
            table,
            **_TRACE_ENCODING,
        )

    def write_layer_grads(self, epoch: int, frame: pd.DataFrame) -> None:
        table = _checked_table(self.path, "layer_grads.parquet", frame, LAYER_GRADS_COLUMNS)
        write_parquet(self.path / "layer_grads.parquet" / f"epoch_{epoch:03d}.parquet", table)

    def write_embedding(self, epoch: int, layer: str, array: np.ndarray) -> None:
        """A layer's outputs for every example, shape (N, D)."""
        if not _NAME.match(layer):
            raise ValueError(f"layer name {layer!r} is not a plain file name")
        write_npy(self.path / "embeddings" / f"epoch_{epoch:03d}" / f"{layer}.npy", array)

    def write_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        """Model weights after `epoch` epochs (0 = initialization), as safetensors."""
        write_safetensors(
            self.path / "checkpoints" / f"epoch_{epoch:03d}.safetensors",
            state,
            {"format": "pt"},  # one key: safetensors orders several at random
        )

    def write_resume_state(self, tensors: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Model and optimizer state after the last epoch, for `--resume`."""
        write_safetensors(
            self.path / "resume" / "state.safetensors",
            tensors,
            {"memdash": json.dumps(metadata, sort_keys=True)},
        )

    def commit_epoch(self, epoch: int, **extra: Any) -> None:
        """Declare `epoch` complete: rewrite run.json last, after the epoch's files."""
        self.meta.update(extra, epochs_completed=int(epoch), updated_at=_now())
        if self.meta["status"] == "created":  # epoch 0 is stored: the run can be read
            self.meta["status"] = "running"
        write_json(self.path / "run.json", self.meta)

    def finish(self, status: str = "complete", **extra: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; valid: {', '.join(STATUSES)}")
        self.meta.update(extra, status=status, updated_at=_now())
        write_json(self.path / "run.json", self.meta)
        if status == "complete":  # the resume state has served its purpose
            import shutil

            shutil.rmtree(self.path / "resume", ignore_errors=True)


def _clear_run_files(path: Path) -> None:
    """Remove a previous run's files (only the run-store's own names) before overwriting."""
    import shutil

    for name in (
        "trace.parquet",
        "layer_grads.parquet",
        "embeddings",
        "checkpoints",
        "resume",
        "derived",
    ):
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
    for name in ("run.json", "examples.parquet", "inputs.npy"):
        (path / name).unlink(missing_ok=True)


# ------------------------------------------------------------------------ reader


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
        file = path / "run.json"
        if not file.is_file():
            raise RunFormatError(path, "run.json", "missing; expected a memdash run directory")
        try:
            meta = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RunFormatError(path, "run.json", f"not valid JSON ({err})") from err
        if not isinstance(meta, dict):
            raise RunFormatError(path, "run.json", "expected a JSON object")
        for key, kind in RUN_JSON_KEYS.items():
            if key not in meta:
                raise RunFormatError(path, "run.json", f"missing key {key!r}")
            if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
                raise RunFormatError(
                    path, "run.json", f"key {key!r} must be {kind.__name__}, got {meta[key]!r}"
                )
        if meta["schema_version"] != SCHEMA_VERSION:
            raise RunFormatError(
                path,
                "run.json",
                f"unknown schema_version {meta['schema_version']}; this memdash reads "
                f"{SCHEMA_VERSION} (memdash {__version__})",
            )
        if meta["status"] not in STATUSES:
            raise RunFormatError(
                path, "run.json", f"status {meta['status']!r} is not one of {STATUSES}"
            )
        if meta["epochs_completed"] < 0:
            raise RunFormatError(path, "run.json", "epochs_completed must be >= 0")
        for name in ("examples.parquet", "inputs.npy"):
            if meta["status"] != "created" and not (path / name).is_file():
                raise RunFormatError(path, name, "missing")
        return cls(path, meta)

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

    def in_layer_order(self, names: Iterable[str]) -> list[str]:
        """Layer names in the network's forward order (names it does not list last, by name)."""
        order = {name: i for i, name in enumerate(self.layers)}
        return sorted(names, key=lambda name: (order.get(name, len(order)), name))

    # --- tables
    def examples(self, columns: list[str] | None = None) -> pd.DataFrame:
        """examples.parquet (one row per example, row i = example i)."""
        frame = self._read_table(self.path / "examples.parquet", EXAMPLES_COLUMNS, columns)
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

    def inputs(self, *, mmap: bool = True) -> np.ndarray:
        """inputs.npy, row i = example i, memory-mapped by default."""
        array = self._load_npy("inputs.npy", mmap)
        if array.ndim < 1 or len(array) != self.n_examples():
            raise RunFormatError(
                self.path, "inputs.npy", f"shape {array.shape}, expected {self.n_examples()} rows"
            )
        return array

    def trace_parts(self, source: str | None = None) -> dict[tuple[str, int], Path]:
        """The committed trace part files by (source, epoch)."""
        return {
            (m.group(1), int(m.group(2))): p
            for p, m in _parts(self.path / "trace.parquet", _TRACE_PART)
            if int(m.group(2)) <= self.epochs_completed and source in (None, m.group(1))
        }

    def missing_files(self) -> list[str]:
        """The files the committed epochs promise but the run lacks, relative to the run: an
        eval trace part per epoch 0..E; a minibatch part per epoch 1..E when the run records
        them; and, when the config says which, its embeddings and checkpoints."""
        if self.meta.get("estimate_only") or self.status == "created":
            return []  # estimate --out: data and held-out models, no trace; created: nothing
        done = self.epochs_completed
        parts = self.trace_parts()
        record = self.config.get("record", {}) if isinstance(self.config, dict) else {}
        wanted = [f"trace.parquet/eval-epoch_{e:03d}.parquet" for e in range(done + 1)]
        if record.get("record_train", any(s == "train" for s, _ in parts)):
            wanted += [f"trace.parquet/train-epoch_{e:03d}.parquet" for e in range(1, done + 1)]
        grads = [int(m.group(1)) for _, m in _parts(self.path / "layer_grads.parquet", _GRADS_PART)]
        if grads:
            wanted += [f"layer_grads.parquet/epoch_{e:03d}.parquet" for e in range(1, done + 1)]
        for epoch in record.get("embed_epochs", []):
            if isinstance(epoch, int) and epoch <= done:
                wanted += [
                    f"embeddings/epoch_{epoch:03d}/{layer}.npy"
                    for layer in record.get("embed_layers", [])
                ]
        for epoch in record.get("checkpoint_epochs", []):
            if isinstance(epoch, int) and epoch <= done:
                wanted.append(f"checkpoints/epoch_{epoch:03d}.safetensors")
        return [f for f in wanted if not (self.path / f).is_file()]

    def trace_columns(self, source: str = "eval") -> list[str]:
        """The columns of a source's trace (optional ones such as ``loss_sensitivity``
        included), from its first part's schema; [] without parts."""
        parts = [f for (s, _), f in sorted(self.trace_parts().items()) if s == source]
        return pq.read_schema(parts[0]).names if parts else []

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
        if source is not None and source not in SOURCES:
            raise ValueError(f"unknown trace source {source!r}; valid: {', '.join(SOURCES)}")
        parts = self.trace_parts(source)
        wanted = None if epochs is None else set(epochs)
        files = [p for (_, e), p in sorted(parts.items()) if wanted is None or e in wanted]
        return self._read_parts(files, TRACE_COLUMNS, columns)

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
        if source not in SOURCES:
            raise ValueError(f"unknown trace source {source!r}; valid: {', '.join(SOURCES)}")
        columns = list(columns)
        parts = sorted((e, f) for (_, e), f in self.trace_parts(source).items() if e >= first_epoch)
        epochs = np.array([e for e, _ in parts], dtype=np.int64)
        n = self.n_examples()
        grids = {c: np.full((len(parts), n), np.nan) for c in columns}
        for row, (_, file) in enumerate(parts):
            table = self._read_part(file, TRACE_COLUMNS, ["example_id", *columns])
            ids = table.column("example_id").to_numpy()
            if len(ids) and (ids.min() < 0 or ids.max() >= n):
                rel = str(file.relative_to(self.path))
                raise RunFormatError(self.path, rel, f"example_id outside 0..{n - 1}")
            for c in columns:
                grids[c][row, ids] = table.column(c).to_numpy(zero_copy_only=False)
        return epochs, grids

    def layer_grads(self) -> pd.DataFrame:
        """Per-layer gradient norms of the clean and flipped parts of the loss (may be empty)."""
        files = [
            p
            for p, m in _parts(self.path / "layer_grads.parquet", _GRADS_PART)
            if int(m.group(1)) <= self.epochs_completed
        ]
        return self._read_parts(files, LAYER_GRADS_COLUMNS, None)

    # --- arrays and weights
    def embedding_index(self) -> dict[int, list[str]]:
        """Recorded embeddings: epoch -> layer names."""
        out: dict[int, list[str]] = {}
        root = self.path / "embeddings"
        for d, m in _parts(root, _EPOCH_DIR):
            epoch = int(m.group(1))
            if epoch <= self.epochs_completed:
                out[epoch] = sorted(f.stem for f in d.glob("*.npy"))
        return dict(sorted(out.items()))

    def embedding(self, epoch: int, layer: str, *, mmap: bool = True) -> np.ndarray:
        """A layer's outputs at an epoch, shape (N, D)."""
        if layer not in self.embedding_index().get(epoch, []):
            raise RunFormatError(
                self.path,
                f"embeddings/epoch_{epoch:03d}/{layer}.npy",
                f"not recorded; recorded: {self.embedding_index()}",
            )
        rel = f"embeddings/epoch_{epoch:03d}/{layer}.npy"
        array = self._load_npy(rel, mmap)
        if array.ndim != 2 or len(array) != self.n_examples():
            raise RunFormatError(
                self.path, rel, f"shape {array.shape}, expected ({self.n_examples()}, D)"
            )
        return array

    def checkpoint_epochs(self) -> list[int]:
        files = (self.path / "checkpoints").glob("epoch_*.safetensors")
        epochs = (int(f.stem.split("_")[1]) for f in files if f.stem.split("_")[1].isdigit())
        return sorted(e for e in epochs if e <= self.epochs_completed)

    def checkpoint(self, epoch: int) -> dict[str, Any]:
        """Model weights (a state dict of tensors) after `epoch` epochs."""
        from safetensors.torch import load_file

        file = self.path / "checkpoints" / f"epoch_{epoch:03d}.safetensors"
        if epoch not in self.checkpoint_epochs():
            raise RunFormatError(
                self.path,
                f"checkpoints/{file.name}",
                f"not recorded; recorded epochs: {self.checkpoint_epochs()}",
            )
        return load_file(str(file))

    def resume_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(tensors, metadata) of the state saved after the last complete epoch."""
        from safetensors import safe_open

        file = self.path / "resume" / "state.safetensors"
        if not file.is_file():
            raise RunFormatError(self.path, "resume/state.safetensors", "missing; cannot resume")
        with safe_open(str(file), framework="pt") as fh:
            meta = json.loads(fh.metadata()["memdash"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        if meta.get("epoch") != self.epochs_completed:
            raise RunFormatError(
                self.path,
                "resume/state.safetensors",
                f"holds epoch {meta.get('epoch')}, run.json says {self.epochs_completed}",
            )
        return tensors, meta

    # --- derived results
    def derived_path(self, name: str) -> Path:
        """RUN/derived/NAME, where NAME is a file name, optionally under one folder."""
        if not _DERIVED_NAME.match(name):
            raise ValueError(f"derived name {name!r} is not a plain file name (or folder/name)")
        return self.path / "derived" / name

    def read_derived(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        file = self.derived_path(name)
        if not file.is_file():
            raise RunFormatError(self.path, f"derived/{name}", "missing; run `memdash analyze`")
        try:
            return pq.read_table(file, columns=columns).to_pandas()
        except (pa.ArrowException, OSError) as err:
            raise RunFormatError(self.path, f"derived/{name}", f"unreadable ({err})") from err

    def write_derived(self, name: str, frame: pd.DataFrame) -> None:
        file = self.derived_path(name)
        file.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(file, frame)

    def derived_manifest(self) -> dict[str, Any]:
        """derived/manifest.json: per step, what its result was computed from ({} if none)."""
        file = self.path / "derived" / "manifest.json"
        try:
            manifest = json.loads(file.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return {}  # none, or unreadable: everything is recomputed
        return manifest if isinstance(manifest, dict) else {}

    def replace_derived(
        self, step: str, tables: dict[str, pd.DataFrame], entry: dict[str, Any]
    ) -> None:
        """Write a step's tables, remove the files it wrote before and no longer does,
        then record `entry` plus the file list in the manifest (last, so an
        interruption leaves the step stale)."""
        old = self.derived_manifest().get(step)
        for name, frame in tables.items():
            self.write_derived(name, frame)
        previous = old.get("files", []) if isinstance(old, dict) else []
        for name in previous:
            if isinstance(name, str) and name not in tables and _DERIVED_NAME.match(name):
                self.derived_path(name).unlink(missing_ok=True)
        manifest = self.derived_manifest() | {step: entry | {"files": sorted(tables)}}
        write_json(self.path / "derived" / "manifest.json", manifest)

    # --- validation
    def validate(self) -> list[str]:
        """Check every file of the run; return a list of notes, raise RunFormatError on a fault."""
        notes = []
        self.check_parts()
        examples = self.examples()
        bad_split = set(examples["split"]) - set(SPLITS)
        if bad_split:
            raise RunFormatError(
                self.path, "examples.parquet", f"unknown split values {sorted(bad_split)}"
            )
        self.inputs()
        n = len(examples)
        parts = self.trace_parts()
        for (source, epoch), file in parts.items():
            table = self._read_parts([file], TRACE_COLUMNS, None)
            if len(table) and (table["example_id"].min() < 0 or table["example_id"].max() >= n):
                raise RunFormatError(
                    self.path, f"trace.parquet/{file.name}", f"example_id outside 0..{n - 1}"
                )
            if len(table) and not ((table["epoch"] == epoch) & (table["source"] == source)).all():
                raise RunFormatError(
                    self.path,
                    f"trace.parquet/{file.name}",
                    f"rows must all have source={source!r} and epoch={epoch}",
                )
        eval_epochs = sorted(e for s, e in parts if s == "eval")
        notes.append(f"{len(parts)} trace parts; eval epochs {_ranges(eval_epochs)}")
        self.layer_grads()
        for epoch, layers in self.embedding_index().items():
            for layer in layers:
                self.embedding(epoch, layer)
        notes.append(f"embeddings at epochs {list(self.embedding_index())}")
        for epoch in self.checkpoint_epochs():
            self._check_checkpoint(epoch)
        notes.append(f"checkpoints at epochs {self.checkpoint_epochs()}")
        return notes

    def _check_checkpoint(self, epoch: int) -> None:
        """Read one checkpoint's safetensors header and tensor names (not the weights)."""
        from safetensors import safe_open

        rel = f"checkpoints/epoch_{epoch:03d}.safetensors"
        try:
            with safe_open(str(self.path / rel), framework="pt") as fh:
                names = list(fh.keys())
        except Exception as err:  # safetensors raises its own error types for bad headers
            raise RunFormatError(
                self.path, rel, f"not a readable safetensors file ({err})"
            ) from err
        if not names:
            raise RunFormatError(self.path, rel, "holds no tensors (expected the model weights)")

    # --- helpers
    def heldout_array(self, name: str) -> np.ndarray:
        """An array of `memdash estimate` under RUN/heldout/ (see analysis/ensemble/estimate.py)."""
        if not _NAME.match(name):
            raise ValueError(f"heldout file {name!r} is not a plain file name")
        return self._load_npy(f"heldout/{name}", False)

    def _load_npy(self, rel: str, mmap: bool) -> np.ndarray:
        try:
            return np.load(self.path / rel, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, EOFError, OSError) as err:
            raise RunFormatError(self.path, rel, f"not a readable .npy array ({err})") from err

    def _read_table(
        self, file: Path, expected: dict[str, str], columns: list[str] | None
    ) -> pd.DataFrame:
        rel = str(file.relative_to(self.path))
        if not file.is_file():
            raise RunFormatError(self.path, rel, "missing")
        self._check_part(file, expected, columns)
        try:
            return pq.read_table(file, columns=columns).to_pandas()
        except (pa.ArrowException, OSError) as err:
            raise RunFormatError(self.path, rel, f"damaged Parquet data ({err})") from err

    def _read_parts(
        self, files: list[Path], expected: dict[str, str], columns: list[str] | None
    ) -> pd.DataFrame:
        tables = [self._read_part(file, expected, columns) for file in files]
        if not tables:
            return _empty_frame(expected, columns)
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()

    def _read_part(
        self, file: Path, expected: dict[str, str], columns: list[str] | None
    ) -> pa.Table:
        """One Parquet part, its schema checked; damage is named as a RunFormatError."""
        rel = self._check_part(file, expected, columns)
        try:
            return pq.read_table(file, columns=columns or list(expected))
        except (pa.ArrowException, OSError) as err:
            raise RunFormatError(self.path, rel, f"damaged Parquet data ({err})") from err

    def _check_part(self, file: Path, expected: dict[str, str], columns: list[str] | None) -> str:
        """Read one Parquet file's footer and check its schema; its name relative to the run."""
        rel = str(file.relative_to(self.path))
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowException, OSError) as err:
            raise RunFormatError(self.path, rel, f"not a readable Parquet file ({err})") from err
        _check_schema(self.path, rel, schema, expected, columns)
        return rel

    def check_parts(self) -> None:
        """A quick check (milliseconds) that no link leads out of the run directory, that
        every file the committed epochs promise exists, and that every trace and
        layer-gradient part has a readable Parquet footer and schema; RunFormatError names
        the first such file."""
        self.check_links()
        if self.status == "created":
            return  # nothing recorded yet, nothing promised
        missing = self.missing_files()
        if missing:
            raise RunFormatError(
                self.path, missing[0], f"missing (epochs_completed is {self.epochs_completed})"
            )
        self._check_part(self.path / "examples.parquet", EXAMPLES_COLUMNS, None)
        for file in self.trace_parts().values():
            self._check_part(file, TRACE_COLUMNS, None)
        for file, _ in _parts(self.path / "layer_grads.parquet", _GRADS_PART):
            self._check_part(file, LAYER_GRADS_COLUMNS, None)

    def check_links(self) -> None:
        """Refuse a run whose files or folders are links leading out of the run directory.

        memdash reads and writes only inside a run: a link to elsewhere (another run's
        trace, /etc/passwd, a derived/ folder on another disk) raises RunFormatError naming
        the link and where it leads. Links that stay inside the run are fine.
        """
        root = self.path.resolve()
        for folder, dirs, files in os.walk(self.path, followlinks=False):
            for name in sorted(dirs + files):
                link = Path(folder) / name
                if link.is_symlink() and not link.resolve().is_relative_to(root):
                    raise RunFormatError(
                        self.path,
                        str(link.relative_to(self.path)),
                        f"a link to {link.resolve()}, outside the run directory; memdash reads "
                        "and writes only inside a run (copy the file in instead)",
                    )


def _parts(root: Path, pattern: re.Pattern[str]) -> list[tuple[Path, re.Match[str]]]:
    if not root.is_dir():
        return []
    found = ((p, pattern.match(p.name)) for p in sorted(root.iterdir()))
    return [(p, m) for p, m in found if m]


def _check_schema(
    run: Path, rel: str, schema: pa.Schema, expected: dict[str, str], columns: list[str] | None
) -> None:
    needed = expected if columns is None else {c: expected[c] for c in columns if c in expected}
    for column, kind in needed.items():
        if column not in schema.names:
            raise RunFormatError(run, rel, f"missing column {column!r} (expected {kind})")
        dtype = schema.field(column).type
        if not _KIND_CHECKS[kind](dtype):
            raise RunFormatError(run, rel, f"column {column!r} is {dtype}, expected {kind}")
    if columns is not None:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise RunFormatError(run, rel, f"no column(s) {unknown}; has {schema.names}")


def _checked_table(
    run: Path, rel: str, data: pd.DataFrame | pa.Table, expected: dict[str, str]
) -> pa.Table:
    """Convert once and check a table about to be written: a writer never makes a bad run."""
    table = _as_table(data)
    _check_schema(run, rel, table.schema, expected, None)
    return table


def _empty_frame(expected: dict[str, str], columns: list[str] | None) -> pd.DataFrame:
    dtypes = {"int": "int64", "float": "float32", "bool": "bool", "string": "object"}
    names = columns or list(expected)
    return pd.DataFrame({c: pd.Series(dtype=dtypes[expected.get(c, "float")]) for c in names})


def _ranges(values: list[int]) -> str:
    if not values:
        return "none"
    if values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return str(values)


def discover_runs(roots: Iterable[str | Path], *, max_depth: int = 3) -> list[Path]:
    """Run directories (holding run.json) under the roots, sorted; links are not followed."""
    found: set[Path] = set()
    for root in roots:
        base = Path(root).resolve()
        if not base.is_dir():
            continue
        for current, dirs, files in os.walk(base, followlinks=False):
            here = Path(current)
            depth = len(here.relative_to(base).parts)
            if "run.json" in files:
                found.add(here)
                dirs[:] = []
            elif depth >= max_depth:
                dirs[:] = []
            else:
                dirs[:] = [d for d in dirs if not d.startswith(".") and d != "derived"]
    return sorted(found)
