"""Writing a run: `RunWriter` creates a run directory and appends it epoch by epoch.

Every file is written atomically and `run.json` is rewritten last, after an epoch's
files, so a run killed at any moment reads correctly up to its last complete epoch. A
table is checked against its columns before it is written: a writer never makes a bad run.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from memdash.analysis import __version__
from memdash.analysis.store.atomic import (
    TRACE_ENCODING,
    as_table,
    write_bytes,
    write_json,
    write_npy,
    write_parquet,
    write_safetensors,
)
from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import check_schema
from memdash.analysis.store.inputs import FILES, ExampleSources, resolve_form, stored_inputs
from memdash.analysis.store.layout import (
    EXAMPLES_COLUMNS,
    LAYER_GRADS_COLUMNS,
    PLAIN_NAME,
    SCHEMA_VERSION,
    STATUSES,
    TOKENIZER_FILE,
    TRACE_COLUMNS,
)
from memdash.analysis.store.reader import Run
from memdash.analysis.store.schema import CONFIG, problem
from memdash.analysis.store.trace import (
    check_trace_source,
    sorted_by_example,
    trace_row_group_size,
)


def _now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _checked_table(
    run: Path, rel: str, data: pd.DataFrame | pa.Table, expected: dict[str, str]
) -> pa.Table:
    """Convert once and check a table about to be written: a writer never makes a bad run."""
    table = as_table(data)
    check_schema(run, rel, table.schema, expected, None)
    return table


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
        extra: dict[str, Any] | None = None,
        input_form: str = "full",
        sources: ExampleSources | None = None,
    ) -> RunWriter:
        """Start a new run: run.json (status ``created``), then examples.parquet and the inputs.

        The inputs are stored in `input_form` (`inputs.FORMS`, or ``auto``: full up to
        `inputs.AUTO_FULL_BYTES`, thumbnails above); ``path`` needs the `sources` of a
        dataset of files. run.json's ``inputs`` says which (absent for ``full``).

        `config` and the run.json made of it are checked against the schema first
        (`schema.RUN_JSON`): a RunFormatError names the key, and nothing is written.

        The status turns ``running`` when epoch 0 is committed; a run stopped before
        that (a full disk) is ``created``: nothing of it is read, and ``--resume``
        starts it again from the top.
        """
        path = Path(path)
        if (path / "run.json").exists() and not overwrite:
            raise FileExistsError(
                f"run {path} already exists; pass --resume to continue it or choose another --out"
            )
        found = problem(config, CONFIG, "config")  # a user's own loop's config included
        if found:
            raise RunFormatError(path, "run.json", found)
        table = _checked_table(path, "examples.parquet", examples, EXAMPLES_COLUMNS)
        if len(inputs) != len(examples):
            raise ValueError(f"{len(inputs)} inputs for {len(examples)} examples")
        if not np.array_equal(examples["example_id"].to_numpy(), np.arange(len(examples))):
            raise ValueError("examples.example_id must be 0..N-1 in row order")
        form = resolve_form(input_form, int(np.asarray(inputs).nbytes))
        stored, about = stored_inputs(inputs, form, sources)  # before anything is written
        meta = {
            "schema_version": SCHEMA_VERSION,
            "name": name or path.name or path.resolve().name,
            "status": "created",
            "epochs_completed": 0,
            "epochs_planned": int(config.get("train", {}).get("epochs", 0)),
            "n_classes": int(n_classes),
            "layers": list(layers),
            "config": config,
            "created_at": _now(),
            "updated_at": _now(),
            "memdash_version": __version__,
            **(extra or {}),  # keys of run.json's schema a kind of run adds (``modality``)
            **({"inputs": about} if about else {}),  # a form other than full
        }
        found = problem(meta)
        if found:
            raise RunFormatError(path, "run.json", found)
        if path.exists() and overwrite:
            _clear_run_files(path)
        path.mkdir(parents=True, exist_ok=True)
        writer = cls(path, meta)
        write_json(path / "run.json", meta)
        # row groups as the trace parts': one example's row read alone skips the others
        write_parquet(
            path / "examples.parquet", table, row_group_size=trace_row_group_size(table.num_rows)
        )
        if form == "path":
            write_parquet(path / FILES[form], stored)
        else:
            write_npy(path / FILES[form], stored)
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
        """One source's statistics at one epoch (columns TRACE_COLUMNS), sorted by
        example_id in row groups of `trace.trace_row_group_size` rows (one example's read
        skips the others by their statistics)."""
        check_trace_source(source)
        table = sorted_by_example(_checked_table(self.path, "trace.parquet", data, TRACE_COLUMNS))
        write_parquet(
            self.path / "trace.parquet" / f"{source}-epoch_{epoch:03d}.parquet",
            table,
            row_group_size=trace_row_group_size(table.num_rows),
            **TRACE_ENCODING,
        )

    def write_layer_grads(self, epoch: int, frame: pd.DataFrame) -> None:
        table = _checked_table(self.path, "layer_grads.parquet", frame, LAYER_GRADS_COLUMNS)
        write_parquet(self.path / "layer_grads.parquet" / f"epoch_{epoch:03d}.parquet", table)

    def write_embedding(self, epoch: int, layer: str, array: np.ndarray) -> None:
        """A layer's outputs for every example, shape (N, D)."""
        if not PLAIN_NAME.match(layer):
            raise ValueError(f"layer name {layer!r} is not a plain file name")
        write_npy(self.path / "embeddings" / f"epoch_{epoch:03d}" / f"{layer}.npy", array)

    def write_token_losses(self, epoch: int, array: np.ndarray) -> None:
        """Text runs: every sequence's per-token losses (nats) at `epoch`, float16 (N, L),
        NaN after each sequence's tokens (tokens/epoch_EEE.npy)."""
        if array.ndim != 2:
            raise ValueError(f"per-token losses must be (N, L), got shape {array.shape}")
        write_npy(self.path / "tokens" / f"epoch_{epoch:03d}.npy", array.astype(np.float16))

    def write_tokenizer(self, json_text: str) -> None:
        """Text runs with a trained tokenizer (BPE): its Hugging Face tokenizer.json."""
        write_bytes(self.path / TOKENIZER_FILE, json_text.encode("utf-8"))

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
        "tokens",
        "checkpoints",
        "resume",
        "derived",
    ):
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
    for name in ("run.json", "examples.parquet", *FILES.values(), TOKENIZER_FILE):
        (path / name).unlink(missing_ok=True)
