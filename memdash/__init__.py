"""memdash: record what a deep network memorizes, compute the measures of memorization from the
literature, and explore them in a dashboard.

The repository keeps the library in ``analysis/`` and the app in ``dashboard/``;
installed, they are ``memdash.analysis`` and ``memdash.dashboard``. This module
is the small public API, imported on first use (``import memdash`` loads
neither torch nor FAISS)::

    import memdash

    run = memdash.open_run("runs/first")              # a recorded run (the run store)
    scores = memdash.trace_scores(**matrices)          # forgetting, data maps, AUM
    recorder = memdash.TraceRecorder.create(...)       # record your own training loop
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module of memdash.analysis that defines it
_PUBLIC = {
    # recording and the run store
    "TraceRecorder": "record.recorder",
    "Run": "store",
    "RunFormatError": "store",
    "discover_runs": "store",
    # trace scores (Toneva et al.; Swayamdipta et al.; Pleiss et al.)
    "trace_matrices": "measures.dynamics",
    "trace_scores": "measures.dynamics",
    "forgetting_events": "measures.dynamics",
    "first_learned_epoch": "measures.dynamics",
    "learned_epoch": "measures.dynamics",
    # held-out memorization and influence (Feldman & Zhang; Jiang et al.)
    "mem_scores": "measures.heldout",
    "influence": "measures.heldout",
    "c_scores": "measures.heldout",
    "newcombe_interval": "measures.heldout",
    # exposure (Carlini et al. 2019)
    "exposure_interpolation": "measures.exposure",
    "exposure_extrapolation": "measures.exposure",
    "reference_exposure": "measures.exposure",
    "skewnorm_logcdf": "measures.skewnorm",
    # k-NN against the network (Cohen et al.)
    "FaissKNN": "measures.neighbors",
    "knn_predict": "measures.neighbors",
    "agreement": "measures.neighbors",
    # projections
    "aligned_projections": "measures.projection",
    # findings
    "check_all": "findings",
}

__all__ = ["__version__", "open_run", *_PUBLIC]

if TYPE_CHECKING:  # for type checkers and editors; at run time each name loads on first use
    from memdash.analysis.measures.dynamics import trace_matrices, trace_scores  # noqa: F401
    from memdash.analysis.record.recorder import TraceRecorder  # noqa: F401
    from memdash.analysis.store import Run


def open_run(path: str) -> Run:
    """Open a recorded run directory (validated; `RunFormatError` names what is wrong)."""
    from memdash.analysis.store import Run

    return Run.open(path)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"memdash.analysis.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'memdash' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
