"""Background writes: the recorder's epochs go to disk on one thread while training goes on.

`EpochWrites` runs each epoch's writes in order on a single background thread, at most one epoch
in flight (bounded memory; a write's error surfaces at the next hand-over or at `flush`);
`frozen` copies the tensors that training would change while they are being written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch


def frozen(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies that training cannot change while a background thread writes them."""
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}


class EpochWrites:
    """One background thread that runs each epoch's writes, in the order handed over."""

    def __init__(self) -> None:
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memdash-writer")
        self._pending: Future | None = None

    def submit(self, jobs: Sequence[Callable[[], None]]) -> None:
        """Hand over an epoch's writes, to run in order once the previous epoch's are done."""
        self.flush()  # at most one epoch in flight: bounded memory, errors surface early

        def run() -> None:
            for job in jobs:
                job()

        self._pending = self._io.submit(run)

    def flush(self) -> None:
        """Wait until every epoch handed over is on disk; raise the first write error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Stop the thread once the writes handed over are done."""
        self._io.shutdown(wait=True)
