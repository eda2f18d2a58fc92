"""Where independent jobs run: this machine, or the nodes of a Ray cluster.

`memdash estimate --backend ray` trains its model batches as Ray tasks and `memdash analyze
--backend ray` computes each layer and epoch's k-NN and each layer's UMAP as Ray tasks. Both
connect to an existing cluster at ``--address`` or start a local one for the purpose (and stop
it when done). A task reads the run from its path, so the nodes share the run's filesystem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

BACKENDS = ("local", "ray")


def check_backend(backend: str) -> None:
    """Refuse a backend that is not one of `BACKENDS`, naming the valid ones."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")


@contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[Any]:
    """The `ray` module, connected to the cluster at `address` or to a local one of `workers`
    CPUs started here; a cluster started here is stopped on the way out, one that was already
    connected (or reached at `address`) is left running.

    Raises
    ------
    ValueError
        Ray is not installed (one line naming the extra to install).
    """
    try:
        import ray
    except ImportError as err:
        raise ValueError("--backend ray needs Ray: pip install 'memdash[ray]'") from err
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_completed(
    ray: Any, fn: Callable[..., Any], jobs: Sequence[tuple]
) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*job)`` for every job as a Ray task of one CPU; yield (the job's index, its
    result) as each finishes, in the order they finish. A task's exception is raised here."""
    task = ray.remote(num_cpus=1)(fn)
    pending = {task.remote(*job): i for i, job in enumerate(jobs)}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        yield pending.pop(ready[0]), ray.get(ready[0])
