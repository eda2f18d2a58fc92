"""What every command shares: the console, the config defaults its options show, a config read
from the options, and the ways a command fails (an error, a refusal before any work)."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from memdash.analysis.cli.basics import fail, refuse
from memdash.analysis.record.config import DataConfig, ModelConfig, RecordConfig, TrainConfig

if TYPE_CHECKING:
    from memdash.analysis.record.config import RunConfig
    from memdash.analysis.store import Run, RunFormatError

# the defaults the options show (and give when left out): those of the run config
DATA, MODEL, TRAIN, RECORD = DataConfig(), ModelConfig(), TrainConfig(), RecordConfig()

Config = TypeVar("Config")


def command_line() -> str:
    """The command line being run, as the `command` a run stores for its reproduction."""
    return "memdash " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def config_from(config: type[Config], options: Mapping[str, Any], **parsed: Any) -> Config:
    """A `config` dataclass from a command's options: each option named after one of its
    fields fills that field, and `parsed` (options parsed from text, or named otherwise) go
    on top; the fields left give their defaults."""
    named = {f.name for f in fields(config)}
    given = {name: value for name, value in options.items() if name in named}
    return config(**{**given, **parsed})


def open_runs(roots: list[Path]) -> tuple[list[Run], list[RunFormatError]]:
    """The runs found under `roots`, opened, and the errors of those that cannot be read."""
    from memdash.analysis.store import Run, RunFormatError, discover_runs

    opened, broken = [], []
    for path in discover_runs(roots):
        try:
            opened.append(Run.open(path))
        except RunFormatError as err:
            broken.append(err)
    return opened, broken


def cannot_write(err: OSError, folder: Path, kept: str) -> NoReturn:
    """A write into `folder` that failed (a full disk, a read-only folder): what failed, the
    space left when the system gave no reason (a short write), and what is kept."""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err)
    if err.errno is None and folder.exists():
        reason += f" ({shutil.disk_usage(folder).free} bytes free on the disk of {folder})"
    fail(f"cannot write{where}: {reason}; {kept}")


def refuse_bad_config(config: RunConfig, *, models: int = 1) -> None:
    """Refuse (exit code 2, one line) a run config whose values do not fit each other
    (`record.config.validate`), the model (its layers) or the machine's memory
    (`footprint`), before any work; `models` are trained at once (an estimate's batch)."""
    from memdash.analysis.cli.footprint import unfit, unknown_layers
    from memdash.analysis.record.config import validate

    try:
        validate(config)
    except ValueError as err:
        refuse(str(err))
    problem = unknown_layers(config) or unfit(config, models=models)
    if problem is not None:
        refuse(problem)


@contextmanager
def errors_reported(
    *expected: type[Exception], written: Path | None = None, kept: str = ""
) -> Iterator[None]:
    """Report what a command expects may go wrong in the block as one error line (exit code 1).

    Parameters
    ----------
    *expected
        The errors reported by their message; default a run that cannot be read
        (`RunFormatError`) and a bad value (`ValueError`).
    written
        The folder the block writes into: a failed write there (an `OSError` not among
        `expected`) is reported by `cannot_write`, with `kept`; without it, it propagates.
    kept
        What is kept after a failed write, and how to go on.
    """
    from memdash.analysis.store import RunFormatError

    reported = expected or (RunFormatError, ValueError)
    try:
        yield
    except reported as err:
        fail(str(err))
    except OSError as err:
        if written is None:
            raise
        cannot_write(err, written, kept)
