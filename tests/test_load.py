"""Load: 8 concurrent headless browser sessions, each on its own run, example and pages,
for about a minute against one `memdash dashboard` server. No session sees an exception
or another session's selection; the server's memory stays under a stated bound; the page
times (p50, p95) are printed in the session's reliability table."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import tally
from test_browser import CHROMIUM, FLAGS, SERVERS, serve

pytestmark = pytest.mark.browser

SAMPLES = Path(__file__).resolve().parents[1] / "sample_runs"
SESSIONS = 8
SECONDS = 60.0
MEMORY_BOUND_MIB = 1024  # the server and its children, resident, at the peak (~390 seen)
# page path -> its title; each session starts at a different one and goes round
PAGES = {
    "runs": "Runs",
    "examples": "Examples",
    "forgetting": "Forgetting and data map",
    "embeddings": "Embeddings",
    "knn": "k-NN vs network",
    "exposure": "Exposure",
    "privacy": "Privacy",
    "proxies": "Proxies",
    "localization": "Localization",
    "compare": "Compare runs",
    "similarity": "Similarity",
    "sensitivity": "Loss sensitivity and critical samples",
}
RUNS = [
    "digits_mlp_noise20",
    "digits_mlp_clean",
    "digits_mlp_noise20_tied",
    "mnist1d_cnn_noise10_canaries",
    "digits_mlp_noise20_dropout",
    "digits_mlp_random_labels",
    "digits_mlp_noise20",
    "digits_mlp_clean",
]


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
        )
        todo += [int(c) for c in children]
    return total / 1024


class Peak(threading.Thread):
    """Samples a process tree's resident memory every 0.25 s until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.25):
            self.peak = max(self.peak, _tree_rss_mib(self.pid))


_RUN_FIELD = "[data-testid='stSidebar'] [data-testid='stSelectbox'] input"
_EXAMPLE_FIELD = "[data-testid='stSidebar'] input[type='number']"


async def _settled_value(page, field: str, own: str) -> str:
    """The field's value once it shows `own` (a widget is briefly empty while the page
    reruns), or whatever it shows after 30 s."""
    locator = page.locator(field).first
    for _ in range(120):
        value = await locator.input_value()
        if value == own:
            return value
        if value:  # a value, and not ours: another session's selection
            return value
        await asyncio.sleep(0.25)
    return await locator.input_value()


async def _session(browser, url: str, index: int, until: float, times: list, problems: list):
    """One user: its own run and example, going round the pages until `until`."""
    run, example = RUNS[index], 10 + index
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    order = list(PAGES)[index:] + list(PAGES)[:index]
    visited = 0
    while time.perf_counter() < until or visited < len(PAGES):
        path = order[visited % len(order)]
        visited += 1
        started = time.perf_counter()
        await page.goto(f"{url}/{path}?run={quote(run)}&example={example}")
        await page.wait_for_selector(f"h1:has-text('{PAGES[path]}')", timeout=120_000)
        await page.wait_for_load_state("networkidle")
        await page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000
        )
        times.append(time.perf_counter() - started)
        where = f"session {index} on {path}"
        if await page.locator("[data-testid='stException']").count():
            problems.append(f"{where}: an exception")
        # the sidebar shows this session's run and example, never another session's
        for field, own in ((_RUN_FIELD, run), (_EXAMPLE_FIELD, str(example))):
            shown = await _settled_value(page, field, own)
            if shown != own:
                problems.append(f"{where}: {shown!r} in the sidebar, not {own!r}")
        if f"example={example}" not in page.url:
            problems.append(f"{where}: the URL lost its example: {page.url}")
    await context.close()


async def _load(url: str, seconds: float) -> tuple[list[float], list[str]]:
    from playwright.async_api import async_playwright

    times: list[float] = []
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_session(browser, url, i, until, times, problems) for i in range(SESSIONS))
        )
        await browser.close()
    return times, problems


def test_eight_sessions_for_a_minute(tmp_path):
    with serve(SAMPLES) as url:
        peak = Peak(SERVERS[url].pid)
        peak.start()
        started = time.perf_counter()
        times, problems = asyncio.run(_load(url, SECONDS))
        elapsed = time.perf_counter() - started
        peak.done.set()
        peak.join()
    p50, p95 = np.percentile(times, [50, 95])
    tally.line(
        f"load: {SESSIONS} sessions x {elapsed:.0f} s, {len(times)} pages, "
        f"page time p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(times):.2f} s; "
        f"server peak RSS {peak.peak:.0f} MiB (bound {MEMORY_BOUND_MIB}); "
        f"{len(problems)} problems"
    )
    tally.case("load (8 browser sessions)", len(times))
    assert not problems, problems[:10]
    assert len(times) >= SESSIONS * len(PAGES)
    assert peak.peak < MEMORY_BOUND_MIB
