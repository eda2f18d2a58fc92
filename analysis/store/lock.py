"""The write lock: one process at a time computes and writes a run's derived results."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from memdash.analysis.store.errors import RunNotWritable

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
