"""End to end: `memdash dashboard` served on a free port, driven by headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_run, tmp_path):
    from memdash.analysis.config import LocalizeConfig
    from memdash.analysis.estimate import EstimateSpec, estimate
    from memdash.analysis.pipeline import LOCALIZE_STEPS, analyze

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    shutil.copytree(tiny_run, tmp_path / "tiny")
    analyze(tmp_path / "tiny")
    analyze(
        tmp_path / "tiny",
        config=LocalizeConfig(retrain_epochs=1, flip_examples=5),
        steps=LOCALIZE_STEPS,
    )
    estimate(tmp_path / "tiny", EstimateSpec(models=4, models_per_batch=4), workers=1)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memdash.analysis.cli",
            "dashboard",
            str(tmp_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the dashboard did not start: " + proc.stdout.read().decode()[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_runs_page_draws_its_chart_without_exceptions(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        page.wait_for_selector("h1:has-text('Runs')", timeout=60_000)
        page.wait_for_selector(".js-plotly-plot .scatterlayer", timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.locator("text=train (flipped)").count() >= 1
        page.locator("[data-testid='stRadio'] label").filter(has_text="loss").click()
        page.wait_for_selector(".js-plotly-plot .g-ytitle:has-text('loss')", timeout=30_000)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
        browser.close()


PAGES = {
    "examples": "Examples",
    "forgetting": "Forgetting and data map",
    "embeddings": "Embeddings",
    "knn": "k-NN vs network",
    "localization": "Localization",
    "exposure": "Exposure",
    "compare": "Compare runs",
    "findings": "Findings",
    "learn-data-maps": "Data maps",
}


def test_every_page_renders_and_a_selected_point_opens_its_example(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        for path, title in PAGES.items():
            page.goto(f"{server}/{path}")
            page.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
            page.wait_for_load_state("networkidle")
            assert page.locator("[data-testid='stException']").count() == 0, path
        page.goto(f"{server}/embeddings")
        plot = page.locator(".js-plotly-plot .nsewdrag").first
        plot.wait_for(timeout=60_000)
        box = plot.bounding_box()
        x0, y0 = box["x"] + 5, box["y"] + 5
        x1, y1 = box["x"] + box["width"] - 5, box["y"] + box["height"] - 5
        page.mouse.move(x0, y0)
        page.mouse.down()
        for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 2)):
            page.mouse.move(x, y, steps=5)
        page.mouse.up()
        page.wait_for_selector("text=selected examples", timeout=60_000)
        page.wait_for_selector(".js-plotly-plot >> nth=2", timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(tmp_path / "embeddings.png"), full_page=True)
        browser.close()
