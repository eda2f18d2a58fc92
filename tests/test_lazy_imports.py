"""The dashboard's first chart waits for no heavy library it does not draw with (#28): the
pages import torch, FAISS, UMAP, numba, scikit-learn and scipy.stats only inside the
functions that use them. Each check runs in a fresh interpreter and reads its sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "faiss", "umap", "numba", "pynndescent", "sklearn", "scipy.stats", "opacus")
# what the first script run of `memdash dashboard` imports for the Runs page, a deep link to
# an example and the Embeddings page (dashboard/app.py imports the other pages when shown)
FIRST_CHART = (
    "memdash.dashboard.data",
    "memdash.dashboard.state",
    "memdash.dashboard.app_pages.common",
    "memdash.dashboard.app_pages.learn",
    "memdash.dashboard.app_pages.runs",
    "memdash.dashboard.app_pages.examples",
    "memdash.dashboard.app_pages.embeddings",
)
PAGES = (
    "compare",
    "exposure",
    "findings",
    "forgetting",
    "knn",
    "localization",
    "privacy",
    "proxies",
    "sensitivity",
    "similarity",
)
PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def heavy_after_importing(*modules: str) -> list[str]:
    """The heavy libraries in sys.modules of a fresh interpreter that imported `modules`."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *modules],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_first_charts_pages_import_no_heavy_library():
    assert heavy_after_importing(*FIRST_CHART) == []


def test_no_page_imports_a_heavy_library_at_import():
    """Nor does any other page (Privacy's LiRA and audit, the Findings' statistics import
    torch and scipy.stats inside the functions that use them)."""
    pages = [f"memdash.dashboard.app_pages.{p}" for p in PAGES]
    assert heavy_after_importing(*FIRST_CHART, *pages) == []


def test_the_probe_sees_a_heavy_import():
    """The check itself: a module that does import scipy.stats is reported."""
    assert heavy_after_importing("scipy.stats") == ["scipy.stats"]
