"""What every analysis step shares: the progress callback it reports through.

A step is ``compute(run, config, progress) -> {derived file name: DataFrame}``;
`memdash.analysis.steps.pipeline` caches what it returns under RUN/derived/.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    del message
