"""The recorder's clock: seconds spent on each part of an epoch, summed over the epochs.

Each committed epoch stores the sums in run.json under ``timing`` (docs/run-format.md):
``train`` (the training minibatch loop), ``eval_pass`` (the end-of-epoch pass over every
example, epoch 0's included), ``loss_sensitivity`` (the eval pass's backward passes that
give each example's input gradient), ``curvature`` (its perturbed copies' passes, and those
backward passes when loss sensitivity is not recorded) and ``critical`` (the search), each
present once that part has run. Parts nest: a part
timed inside another is not counted in the outer one. On a GPU the device is synchronized
at both ends of a part, so that its seconds are the work's, not the launches'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from time import perf_counter

import torch


class Clock:
    """Seconds per named part, summed over every time the part ran.

    Parameters
    ----------
    device : the device the timed work runs on (a CUDA device is synchronized)
    totals : the sums to go on from (a resumed run's stored ``timing``)
    """

    def __init__(
        self, device: torch.device | str | None = None, totals: Mapping[str, float] | None = None
    ) -> None:
        self._totals = {str(k): float(v) for k, v in (totals or {}).items()}
        cuda = device is not None and torch.device(device).type == "cuda"
        self._sync = torch.cuda.synchronize if cuda else None
        self._inner: list[float] = []  # per open part, the seconds of the parts inside it

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Time the block as part `name`, less the parts timed inside it."""
        if self._sync is not None:
            self._sync()
        start = perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            if self._sync is not None:
                self._sync()
            elapsed = perf_counter() - start
            inner = self._inner.pop()
            self._totals[name] = self._totals.get(name, 0.0) + max(elapsed - inner, 0.0)
            if self._inner:
                self._inner[-1] += elapsed

    def totals(self) -> dict[str, float]:
        """The sums so far, seconds per part (a copy, rounded to microseconds)."""
        return {name: round(seconds, 6) for name, seconds in self._totals.items()}
