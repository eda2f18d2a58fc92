"""Dashboard speed (issue 5): warm reruns of every page, and first charts in Chromium.

1. Every page through Streamlit's AppTest on the sample runs: the first run
   (cold caches) and the median of 5 reruns after it (warm caches).
2. `memdash dashboard` started on the sample runs, headless Chromium opening
   the Runs page: seconds from starting the server to the first chart drawn.
3. A 100,000-example synthetic run (MLP, 3 epochs, embeddings of `out` at
   epochs 0 and 3, analyzed), made once under benchmarks/.cache/: the same
   rerun timing for its pages, and the seconds from opening the Embeddings
   page in Chromium to its scatter drawn (a seeded 20,000-point sample by
   default; the "all points" box draws every point).

4. A deep link, `/examples?run=digits_mlp_noise20&example=5`, opened on a
   fresh server: seconds until that example's input is drawn in its detail.

Goals: every warm rerun under 0.5 s on the sample run; the first chart within
5 s of starting the server; the 100,000-example Embeddings page drawn in
under 3 s with cold caches (a fresh server, opened once).

Run: .venv/bin/python benchmarks/dashboard.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # `dashboard` is the app package, not this script

from tests.test_browser import (  # noqa: E402  (the browser and server the tests drive)
    CHROMIUM,
    FLAGS,
    dashboard_command,
)

CACHE = REPO / "benchmarks" / ".cache"
PAGES = (
    "runs",
    "examples",
    "forgetting",
    "embeddings",
    "knn",
    "localization",
    "exposure",
    "compare",
)


def _page(name: str) -> None:
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def reruns(root: Path, pages=PAGES) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ["MEMDASH_ROOTS"] = str(root)
    for name in pages:
        at = AppTest.from_function(_page, args=(name,), default_timeout=300)
        start = time.perf_counter()
        at.run()
        first = time.perf_counter() - start
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            at.run()
            samples.append(time.perf_counter() - start)
        flag = "" if not at.exception else f"  EXCEPTION {at.exception[0].value}"
        warm = statistics.median(samples)
        print(f"  {name:13s} first {first:6.2f} s, warm rerun {warm:5.3f} s (goal < 0.5){flag}")


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, said: Callable[[], str] = str) -> None:
    """Poll `url`'s Streamlit health check until the server answers; a RuntimeError with
    what it said (`said()`) when the server exits first."""
    while True:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({server.returncode}) before answering: {said()}"
                ) from None
            time.sleep(0.02)


def first_chart(root: Path, path: str, selector: str, *, check_all: bool = False) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)  # already open
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        server = subprocess.Popen(
            dashboard_command(root, port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, server)
            up = time.perf_counter() - start
            opened = time.perf_counter()
            page.goto(f"{url}/{path}")
            page.wait_for_selector(selector, timeout=300_000)
            drawn = time.perf_counter()
            print(
                f"  /{path}: server up {up:.1f} s; first chart {drawn - start:.1f} s after the "
                f"server started, {drawn - opened:.1f} s after the page was opened"
            )
            again = time.perf_counter()
            page.reload()
            page.wait_for_selector(selector, timeout=300_000)
            print(f"  reloaded (warm caches): chart drawn {time.perf_counter() - again:.1f} s")
            if check_all:
                box = page.get_by_text("Draw every point")
                if box.count():
                    again = time.perf_counter()
                    box.click()
                    page.wait_for_timeout(500)
                    page.wait_for_selector(selector, timeout=300_000)
                    page.wait_for_load_state("networkidle")
                    print(f"  every point drawn {time.perf_counter() - again:.1f} s after ticking")
        finally:
            browser.close()
            server.terminate()
            server.wait(timeout=10)


def big_run() -> Path:
    """The 100,000-example synthetic run, made and analyzed once."""
    root = CACHE / "big"
    run = root / "synthetic_100k"
    if (run / "derived" / "manifest.json").is_file():
        return root
    memdash = [sys.executable, "-m", "memdash.analysis.cli"]
    subprocess.run(
        [
            *memdash,
            "train",
            "--dataset",
            "synthetic",
            "--n-examples",
            "100000",
            "--noise",
            "0.2",
            "--hidden",
            "256,128",
            "--epochs",
            "3",
            "--embed-layers",
            "out",
            "--embed-epochs",
            "0,3",
            "--checkpoint-epochs",
            "0,3",
            "--overwrite",
            "--out",
            str(run),
        ],
        check=True,
    )
    subprocess.run([*memdash, "analyze", str(run), "--only", "scores,knn,umap"], check=True)
    return root


def main() -> None:
    samples = REPO / "sample_runs"
    print("Sample runs: page reruns (AppTest)")
    reruns(samples)
    print("Sample runs: server start to first chart (Chromium)")
    first_chart(samples, "runs", ".js-plotly-plot .scatterlayer")
    print("Sample runs: a deep link to one example, to its detail drawn (Chromium)")
    first_chart(
        samples,
        "examples?run=digits_mlp_noise20&example=5",
        ".js-plotly-plot .gtitle:has-text('example 5')",
    )
    root = big_run()
    print("100,000-example run: page reruns (AppTest)")
    reruns(root, ("runs", "examples", "forgetting", "embeddings", "knn"))
    print("100,000-example run: the Embeddings page in Chromium")
    first_chart(root, "embeddings", ".js-plotly-plot .gl-container canvas", check_all=True)


if __name__ == "__main__":
    main()
