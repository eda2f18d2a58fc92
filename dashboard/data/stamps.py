"""What the data layer's caches key on: a run's stamps, which change when the run changes.

A cached read takes the stamps of the runs it reads as arguments, so a run that commits an
epoch or records an analysis is read again, and an unchanged one is not.
"""

from __future__ import annotations

from pathlib import Path

from memdash.analysis.store.layout import DERIVED_NAME


def run_stamp(path: Path) -> float:
    """Changes whenever the run commits an epoch (run.json is rewritten last)."""
    try:
        return (path / "run.json").stat().st_mtime
    except OSError:
        return 0.0


def derived_stamp(path: Path) -> float:
    """Changes whenever an analysis step records a result (the manifest is written last)."""
    try:
        return (path / "derived" / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0


def derived_file_stamp(path: Path, name: str) -> tuple[int, int, int]:
    """Changes whenever RUN/derived/NAME is rewritten (its size, modification time and inode;
    (0, 0, 0) when there is none, or NAME is not a derived name)."""
    if not DERIVED_NAME.match(name):
        return (0, 0, 0)
    try:
        info = (path / "derived" / name).stat()
    except OSError:
        return (0, 0, 0)
    return (info.st_size, info.st_mtime_ns, info.st_ino)


def roots_stamp(paths: list[str]) -> float:
    """Changes whenever any of the runs commits an epoch or records an analysis."""
    return max((run_stamp(Path(p)) + derived_stamp(Path(p)) for p in paths), default=0.0)
