"""The independent parts of a step (each layer and epoch's k-NN, each layer's UMAP), run in this
process one after the other or as Ray tasks (`memdash analyze --backend ray`).

A part is a module-level function ``part(run, *args, progress=...)`` whose result depends
only on its arguments and the run on disk; `LocalJobs` calls it with the step's open `Run`,
`RayJobs` in a Ray worker with the run opened there from its path (the nodes share the run's
filesystem). Either way the step assembles the results in the order of its parts, so the
derived files are the same byte for byte (tested on a sample run).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

from memdash.analysis.record.cluster import check_backend, ray_completed, ray_session
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.store import Run

Part = Callable[..., Any]


class Jobs(Protocol):
    """Runs a step's parts and returns their results in the order of `parts`."""

    def map(
        self,
        part: Part,
        run: Run,
        parts: Sequence[tuple],
        *,
        labels: Sequence[str],
        progress: Progress,
    ) -> list[Any]:
        """``[part(run, *args) for args in parts]``, each labelled for `progress`."""
        ...

    def close(self) -> None:
        """Let go of what running the parts took (a Ray cluster started for them)."""
        ...


class LocalJobs:
    """The parts one after the other in this process, on the step's open run."""

    def map(
        self,
        part: Part,
        run: Run,
        parts: Sequence[tuple],
        *,
        labels: Sequence[str],
        progress: Progress,
    ) -> list[Any]:
        results = []
        for label, args in zip(labels, parts, strict=True):
            progress(label)
            results.append(
                part(run, *args, progress=lambda what, label=label: progress(f"{label}: {what}"))
            )
        return results

    def close(self) -> None:
        """Nothing to let go of."""


def _in_worker(part: Part, path: str, args: tuple) -> Any:
    """A part in a Ray worker: the run opened from its path."""
    return part(Run.open(Path(path)), *args, progress=_quiet)


class RayJobs:
    """The parts as Ray tasks of one CPU each, on the cluster at `address` or on a local one
    of `workers` CPUs, started at the first `map` and kept until `close`."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address, self.workers = address, workers
        self._stack = ExitStack()
        self._ray: Any = None

    def map(
        self,
        part: Part,
        run: Run,
        parts: Sequence[tuple],
        *,
        labels: Sequence[str],
        progress: Progress,
    ) -> list[Any]:
        if self._ray is None:
            progress("starting Ray")
            self._ray = self._stack.enter_context(ray_session(self.address, self.workers))
        results: list[Any] = [None] * len(parts)
        jobs = [(part, str(run.path), args) for args in parts]
        progress(f"{len(jobs)} Ray tasks ({', '.join(labels)})")
        for done, (i, result) in enumerate(ray_completed(self._ray, _in_worker, jobs), start=1):
            results[i] = result
            progress(f"{done} of {len(jobs)} Ray tasks done ({labels[i]})")
        return results

    def close(self) -> None:
        """Stop the Ray cluster this started (one reached at an address is left running)."""
        self._stack.close()
        self._ray = None


def jobs_for(
    backend: str, address: str | None = None, workers: int | None = None
) -> LocalJobs | RayJobs:
    """The jobs of ``local`` (this process) or ``ray`` (`RayJobs`; `workers` local CPUs,
    default all cores)."""
    check_backend(backend)
    if backend == "local":
        return LocalJobs()
    return RayJobs(address, workers or os.cpu_count() or 1)
