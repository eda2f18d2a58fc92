"""The run store's errors: a run that does not meet the contract, and one that cannot be written."""

from __future__ import annotations

from pathlib import Path


class RunFormatError(ValueError):
    """A run directory that does not meet the run-store contract.

    The message names the run, the file and what was expected.
    """

    def __init__(self, run: Path | str, file: str, problem: str) -> None:
        self.run, self.file, self.problem = str(run), file, problem
        super().__init__(f"run {self.run}: {file}: {problem}")


class RunNotWritable(RunFormatError):
    """A run directory that cannot be written (read-only, no permission, disk full)."""
