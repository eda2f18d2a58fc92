"""Finding runs: the run directories under some roots."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


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
