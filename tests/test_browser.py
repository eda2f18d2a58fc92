"""End to end: `memdash dashboard` served on a free port, driven by headless Chromium."""

from __future__ import annotations

import contextlib
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


def dashboard_command(root: Path, port: int) -> list[str]:
    """`memdash dashboard ROOT --port PORT` with this interpreter."""
    return [
        sys.executable,
        "-m",
        "memdash.analysis.cli",
        "dashboard",
        str(root),
        "--port",
        str(port),
    ]


SERVERS: dict[str, subprocess.Popen] = {}  # URL -> the server process, while it serves


@contextlib.contextmanager
def serve(root: Path):
    """`memdash dashboard ROOT` on a free port; yields its URL (its process in SERVERS)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    port = _free_port()
    proc = subprocess.Popen(
        dashboard_command(root, port),
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
    SERVERS[url] = proc
    try:
        yield url
    finally:
        del SERVERS[url]
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def analyzed_root(tiny_run, tmp_path):
    from memdash.analysis.ensemble.estimate import EstimateSpec, estimate
    from memdash.analysis.record.config import LocalizeConfig
    from memdash.analysis.steps.pipeline import LOCALIZE_STEPS, analyze

    root = tmp_path / "root"
    shutil.copytree(tiny_run, root / "tiny")
    analyze(root / "tiny")
    analyze(
        root / "tiny",
        config=LocalizeConfig(retrain_epochs=1, flip_examples=5),
        steps=LOCALIZE_STEPS,
    )
    estimate(root / "tiny", EstimateSpec(models=4, models_per_batch=4), workers=1)
    return root


@pytest.fixture
def server(analyzed_root):
    with serve(analyzed_root) as url:
        yield url


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
    "privacy": "Privacy",
    "proxies": "Proxies",
    "compare": "Compare runs",
    "similarity": "Similarity",
    "sensitivity": "Loss sensitivity and critical samples",
    "findings": "Findings",
    "learn-data-maps": "Data maps",
    "learn-one-way-to-learn": "One way to learn, N ways to memorize",
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
        # open one of them (the sidebar's example, which a row click or a point click sets)
        _open_in_sidebar(page, 11)
        page.wait_for_selector(".js-plotly-plot >> nth=2", timeout=60_000)
        assert "example=11" in page.url
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(tmp_path / "embeddings.png"), full_page=True)
        browser.close()


def _open_in_sidebar(page, example_id: int) -> None:
    field = page.locator("[data-testid='stSidebar'] input[type='number']")
    field.fill(str(example_id))
    field.press("Enter")


def _settled(page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def test_a_deep_link_opens_an_example_and_the_url_keeps_the_state(analyzed_root, tmp_path):
    from playwright.sync_api import sync_playwright

    shutil.copytree(analyzed_root / "tiny", analyzed_root / "other")  # a second run, "tiny (other)"
    with serve(analyzed_root) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{server}/examples?run=tiny%20(other)&example=5")
        page.wait_for_selector("text=example 5", timeout=60_000)
        page.wait_for_selector("text=Run tiny (other)", timeout=60_000)
        for title in ("Forgetting and data map", "Exposure"):
            page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title).click()
            page.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
            _settled(page)
            page.wait_for_function("() => location.search.includes('run=tiny')", timeout=30_000)
            assert "example=5" in page.url and "other" in page.url, page.url
            # the caption comes with the page's last rerun: wait for it, then check no other
            page.wait_for_selector("text=Run tiny (other)", timeout=30_000)
            assert page.locator("text=Run tiny (tiny)").count() == 0
            assert page.locator("[data-testid='stException']").count() == 0
        page.reload()
        page.wait_for_selector("h1:has-text('Exposure')", timeout=60_000)
        _settled(page)
        assert "example=5" in page.url and "other" in page.url
        assert page.locator("text=Run tiny (other)").count() >= 1
        field = page.locator("[data-testid='stSidebar'] input[type='number']")
        assert field.input_value() == "5"
        page.screenshot(path=str(tmp_path / "deep_link.png"), full_page=True)
        browser.close()


def test_a_run_with_a_truncated_trace_part_breaks_no_page(analyzed_root, tmp_path):
    from playwright.sync_api import sync_playwright

    damaged = analyzed_root / "damaged"
    shutil.copytree(analyzed_root / "tiny", damaged)
    part = damaged / "trace.parquet" / "eval-epoch_002.parquet"
    part.write_bytes(part.read_bytes()[:64])
    with serve(analyzed_root) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{server}/runs")
        page.wait_for_selector("text=eval-epoch_002.parquet", timeout=60_000)
        for path, title in PAGES.items():
            page.goto(f"{server}/{path}?run=tiny%20(damaged)")
            page.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
            _settled(page)
            errors = page.locator("[data-testid='stException']")
            assert errors.count() == 0, (path, errors.first.inner_text()[:2000])
            assert "Traceback" not in page.content(), path
        # the healthy run still draws
        page.goto(f"{server}/embeddings?run=tiny%20(tiny)")
        page.wait_for_selector("text=Run tiny (tiny)", timeout=60_000)
        page.wait_for_selector(".js-plotly-plot .nsewdrag", timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        browser.close()


def _listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp and tcp6 write them) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_the_server_binds_to_the_loopback_address_only(tmp_path, monkeypatch):
    """`memdash dashboard` listens on 127.0.0.1 unless --host says otherwise."""
    from typer.testing import CliRunner

    from memdash.analysis import cli
    from memdash.analysis.cli import dashboard

    seen = {}
    monkeypatch.setattr(dashboard, "serve", lambda arguments: seen.update(argv=arguments))
    CliRunner().invoke(cli.app, ["dashboard", str(tmp_path)])
    argv = seen["argv"]
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    CliRunner().invoke(cli.app, ["dashboard", str(tmp_path), "--host", "0.0.0.0"])
    assert seen["argv"][seen["argv"].index("--server.address") + 1] == "0.0.0.0"
    monkeypatch.undo()
    with serve(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and nothing else


HOSTILE = {
    "non-UTF-8": "run=%ff%fe%fd&example=%ff%00",
    "traversal": "run=..%2F..%2Fetc%2Fpasswd&example=1",
    "huge number": "run=tiny&example=" + "9" * 400,
    "negative": "run=tiny&example=-5",
    "long name": "run=" + "x" * 20_000,
    "markup": "run=%3Cscript%3Ealert(1)%3C%2Fscript%3E&example=%5Bx%5D(http%3A%2F%2Fa)",
}


def test_hostile_query_values_are_refused_politely(server):
    """Query values a browser can send (bytes that are not UTF-8, paths, numbers of 400
    digits, 20,000-character names, markup): each page answers with the default run and a
    warning, never an exception, and the server keeps serving."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for case, query in HOSTILE.items():
            page.goto(f"{server}/examples?{query}")
            page.wait_for_selector("h1:has-text('Examples')", timeout=60_000)
            _settled(page)
            assert page.locator("[data-testid='stException']").count() == 0, case
            run = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox'] input")
            assert run.first.input_value() == "tiny", case  # the only run, not the value given
            warned = "not an example id" if "number" in case or case == "negative" else "No run"
            assert page.locator(f"text={warned}").count() >= 1, case
            assert page.locator("script:has-text('alert(1)')").count() == 0, case
        browser.close()
    assert urllib.request.urlopen(server + "/_stcore/health", timeout=5).status == 200
