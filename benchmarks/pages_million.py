"""Pages that draw every point of a million-example run (issue #27): the Embeddings page and
the data map on a synthetic 1,000,000-example run, against the goals.

The run is written once with memdash's own writer under benchmarks/.cache/pages_million/
(`tests.test_pages_million.write_map_run`: 10 classes, a sixth held out, 10% flipped, 0.5%
canaries, two epochs of eval trace, its trace scores, a made-up 2-D map of ten clusters at
epochs 0 and 2), about 130 MB.

1. server: each page through Streamlit's AppTest in a fresh process (cold caches: the run
   read, the points joined, the figure built and serialized), a warm rerun, then a lasso
   (a 300-vertex star around a third of the map) and a box set as the chart's selection,
   to the list of the examples inside. Goals: first draw under 5 s, a lasso's list under 2 s.
2. chart, side by side in this process: the density chart of every point
   (`charts.density.every_point`) against one WebGL trace of every point
   (`charts.scatter`, the straightforward alternative): seconds to build and serialize
   the figure as Streamlit does, and its size.
3. selection, side by side: the lasso's point-in-polygon test over the million points
   (`charts.selection.in_polygon`, points sorted by y once) against the textbook
   vectorized ray casting, one pass over every point per edge; and a pass over the
   points' coordinates (the machine's limit: reading them once).
4. with --browser: `memdash dashboard` started on the run, headless Chromium (software
   WebGL) opening the Embeddings page: seconds to the chart drawn (the raster and its
   points) on a fresh server and reloaded, then a lasso drawn with the mouse: seconds from
   its release to the list shown; the same on a 2,000-example run (the costs that do not
   grow with the run) and for one WebGL trace of every point in a bare Streamlit app (the
   alternative; about 6 minutes, --no-every-point skips it).

Run: .venv/bin/python benchmarks/pages_million.py [--n 1000000] [--browser [--no-every-point]]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # `tests` and `dashboard` of this checkout

CACHE = REPO / "benchmarks" / ".cache" / "pages_million"
STAR = 300  # the lasso's vertices
SMALL = 2_000  # the small run the browser's fixed costs are measured on


def star(cx: float, cy: float, r: float, n: int = STAR) -> tuple[list[float], list[float]]:
    """A lasso: a wobbly star of `n` vertices around (cx, cy), mean radius `r`."""
    import numpy as np

    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = r * (1 + 0.25 * np.sin(7 * t))
    return (cx + radius * np.cos(t)).tolist(), (cy + radius * np.sin(t)).tolist()


def the_run(n: int) -> Path:
    """The synthetic run of `n` examples, written once."""
    from tests.test_pages_million import write_map_run

    path = CACHE / f"synthetic_{n}"
    if not (path / "derived" / "manifest.json").is_file():
        start = time.perf_counter()
        write_map_run(path, n, epochs=2)
        print(f"  wrote {path.relative_to(REPO)} in {time.perf_counter() - start:.0f} s")
    return path


# ------------------------------------------------------------------ 1. server (AppTest)
def _page(name):
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def server_times(path: str, page: str) -> dict:
    """In this (fresh) process: the page's first run, a warm rerun, a lasso and a box."""
    import numpy as np
    import pandas as pd
    from streamlit.testing.v1 import AppTest

    os.environ["MEMDASH_ROOTS"] = str(Path(path).parent)
    at = AppTest.from_function(_page, args=(page,), default_timeout=600)
    at.query_params["run"] = Path(path).name
    out = {}
    start = time.perf_counter()
    at.run()
    out["first draw (cold)"] = time.perf_counter() - start
    assert not at.exception, at.exception[0].value
    out["figure MB"] = len(at.get("plotly_chart")[-1].proto.spec) / 1e6  # the map's
    start = time.perf_counter()
    at.run()
    out["warm rerun"] = time.perf_counter() - start
    key, (x, y) = {
        "embeddings": ("embeddings_map", ("x", "y")),
        "forgetting": ("forgetting_map", ("variability", "confidence")),
    }[page]
    if page == "embeddings":
        umap = pd.read_parquet(Path(path) / "derived" / "umap" / "out.parquet")
        drawn = umap[umap["epoch"] == umap["epoch"].max()]
    else:
        drawn = pd.read_parquet(Path(path) / "derived" / "scores.parquet")
    cx, cy = float(np.median(drawn[x])), float(np.median(drawn[y]))
    spread = float(np.std(drawn[x]))
    shapes = {
        "lasso": star(cx, cy, 0.8 * spread),
        "box": ([cx - spread, cx + spread], [cy - spread, cy + spread]),
    }
    for kind, (xs, ys) in shapes.items():
        selection = {"points": [], "box": [], "lasso": []}
        selection[kind] = [{"xref": "x", "yref": "y", "x": xs, "y": ys}]
        at.session_state[key] = {"selection": selection}
        start = time.perf_counter()
        at.run()
        out[f"{kind} list"] = time.perf_counter() - start
        assert not at.exception, at.exception[0].value
        listed = [m.value for m in at.markdown if "selected examples" in m.value]
        out[f"{kind} selected"] = listed[0].split(" selected")[0].strip("*") if listed else "0"
    return out


def server(path: Path) -> None:
    for page in ("embeddings", "forgetting"):
        done = subprocess.run(
            [sys.executable, __file__, "--server-page", page, "--run", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.split("RESULT", 1)[1])
        print(
            f"  {page:10s} first draw (cold) {result['first draw (cold)']:5.2f} s (goal < 5), "
            f"warm rerun {result['warm rerun']:4.2f} s, "
            f"the map's figure {result['figure MB']:.1f} MB"
        )
        print(
            f"  {'':10s} lasso ({STAR} vertices) to its list of {result['lasso selected']} "
            f"examples {result['lasso list']:4.2f} s (goal < 2); box of "
            f"{result['box selected']} {result['box list']:4.2f} s"
        )


# ------------------------------------------------------------- 2. chart, side by side
def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def charts_side_by_side(path: Path) -> None:
    import plotly.io
    import plotly.tools

    from memdash.analysis.store import Run
    from memdash.analysis.tables.examples import example_table
    from memdash.dashboard.charts import scatter
    from memdash.dashboard.charts.density import every_point

    run = Run.open(path)
    table = example_table(run)
    umap = run.read_derived("umap/out.parquet")
    at = umap[umap["epoch"] == umap["epoch"].max()].reset_index(drop=True)
    for column in ("kind", "label", "true_label", "confidence"):
        at[column] = table[column].to_numpy()[at["example_id"]]

    def sent(figure) -> str:  # what st.plotly_chart does with a figure
        figure = plotly.tools.return_figure_from_figure_or_data(figure, validate_figure=True)
        return plotly.io.to_json(figure, validate=False)

    for colour in ("kind", "confidence"):
        ours, spec = _timed(lambda c=colour: sent(every_point(at, x="x", y="y", color=c)))
        theirs, every = _timed(lambda c=colour: sent(scatter(at, x="x", y="y", color=c)))
        print(
            f"  colour {colour:10s} density + sample {ours:4.2f} s, {len(spec) / 1e6:4.1f} MB; "
            f"one WebGL trace of every point {theirs:4.2f} s, {len(every) / 1e6:4.1f} MB "
            f"({len(every) / len(spec):.0f}x the bytes for the browser)"
        )


# --------------------------------------------------------- 3. selection, side by side
def naive_in_polygon(x, y, xs, ys):
    """The textbook vectorized ray casting: every point against every edge."""
    import numpy as np

    inside = np.zeros(len(x), bool)
    for x1, y1, x2, y2 in zip(xs, ys, xs[1:] + xs[:1], ys[1:] + ys[:1], strict=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= ((y1 > y) != (y2 > y)) & (x < crossing)
    return inside


def selection_side_by_side(path: Path) -> None:
    import numpy as np

    from memdash.analysis.store import Run
    from memdash.dashboard.charts.selection import in_box, in_polygon

    umap = Run.open(path).read_derived("umap/out.parquet")
    at = umap[umap["epoch"] == umap["epoch"].max()]
    x, y = at["x"].to_numpy(float), at["y"].to_numpy(float)
    xs, ys = star(float(np.median(x)), float(np.median(y)), 0.8 * float(np.std(x)))
    ours, inside = _timed(lambda: in_polygon(x, y, xs, ys))
    theirs, naive = _timed(lambda: naive_in_polygon(x, y, xs, ys))
    box, _ = _timed(lambda: in_box(x, y, [-2, 4], [-3, 3]))
    limit, _ = _timed(lambda: float(x.sum() + y.sum()))
    same = "the same points" if np.array_equal(inside, naive) else "DIFFERENT points"
    print(
        f"  lasso of {STAR} vertices over {len(x):,} points ({inside.sum():,} inside): "
        f"{ours:.3f} s; one pass per edge {theirs:.2f} s ({theirs / ours:.0f}x; {same}); "
        f"a box {box:.3f} s; one read of the coordinates {limit:.4f} s"
    )


# -------------------------------------------------------------------- 4. the browser
EVERY_POINT_APP = """
import sys

import streamlit as st

from memdash.analysis.store import Run
from memdash.analysis.tables.examples import example_table
from memdash.dashboard.charts import scatter, selected_example_ids


@st.cache_resource
def points(path):
    run = Run.open(path)
    table = example_table(run)
    umap = run.read_derived("umap/out.parquet")
    at = umap[umap["epoch"] == umap["epoch"].max()].reset_index(drop=True)
    for column in ("kind", "label", "true_label"):
        at[column] = table[column].to_numpy()[at["example_id"]]
    return at


at = points(sys.argv[1])
event = st.plotly_chart(
    scatter(at, x="x", y="y", color="kind"),
    on_select="rerun",
    selection_mode=("box", "lasso", "points"),
    key="map",
)
ids = selected_example_ids(event)
if ids:
    st.markdown(f"**{len(ids):,} selected examples**")
    st.dataframe(at[at["example_id"].isin(ids)])
"""
BROWSER_WAIT_MS = 120_000  # a step that takes longer is reported as not done


def _serve(command: list[str], port: int) -> subprocess.Popen:
    import urllib.request

    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return server


def _draw_and_lasso(page, url: str, ready: list[str]) -> str:
    """Open `url` (the server already up) and wait for the `ready` selectors, reload it
    (warm caches), then draw a lasso with the mouse and wait for the list; in words."""

    def opened() -> float:
        start = time.perf_counter()
        for selector in ready:
            page.wait_for_selector(selector, state="attached", timeout=BROWSER_WAIT_MS)
        return time.perf_counter() - start

    try:
        page.goto(url)
        cold = opened()
        page.reload()
        warm = opened()
    except Exception:  # a timeout
        return f"not drawn within {BROWSER_WAIT_MS / 1000:.0f} s"
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    cx, cy = area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.5
    xs, ys = star(cx, cy, area["height"] * 0.3, n=60)
    page.mouse.move(xs[0], ys[0])
    page.mouse.down()
    for px, py in zip(xs[1:] + xs[:1], ys[1:] + ys[:1], strict=True):
        page.mouse.move(px, py)
    start = time.perf_counter()
    page.mouse.up()
    try:
        page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=BROWSER_WAIT_MS)
    except Exception:  # a timeout
        return (
            f"drawn {cold:.1f} s (fresh server), {warm:.1f} s (reloaded); a lasso's list not "
            f"shown within {BROWSER_WAIT_MS / 1000:.0f} s"
        )
    listed = time.perf_counter() - start
    count = page.get_by_text("selected examples").first.inner_text().split(" selected")[0]
    return (
        f"drawn {cold:.1f} s (fresh server), {warm:.1f} s (reloaded); a lasso with the mouse "
        f"listed {count} examples {listed:.1f} s after release"
    )


def browser(path: Path, *, every_point: bool = True) -> None:
    """The Embeddings page of a small run (what does not grow with the run), of the
    million-example run, and (`every_point`) one WebGL trace of every point, side by side."""
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM, FLAGS, dashboard_command

    small = the_run(SMALL)
    app = CACHE / "every_point_app.py"
    app.write_text(EVERY_POINT_APP)
    streamlit = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless=true"]
    density = [".js-plotly-plot .imagelayer image", ".js-plotly-plot .gl-container canvas"]
    setups = {
        f"the Embeddings page of {SMALL:,} examples (every point a point)": (
            lambda port: dashboard_command(small.parent, port),
            f"/embeddings?run={small.name}",
            [".js-plotly-plot .gl-container canvas"],
        ),
        f"the Embeddings page of {path.name} (density + sample)": (
            lambda port: dashboard_command(path.parent, port),
            f"/embeddings?run={path.name}",
            density,
        ),
    }
    if every_point:
        setups["one WebGL trace of every point (the alternative)"] = (
            lambda port: [*streamlit, f"--server.port={port}", "--", str(path)],
            "/",
            [".js-plotly-plot .gl-container canvas"],
        )
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for name, (command, where, ready) in setups.items():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            server = _serve(command(port), port)
            try:
                page = chromium.new_page(viewport={"width": 1440, "height": 1000})
                said = _draw_and_lasso(page, f"http://127.0.0.1:{port}{where}", ready)
                page.close()
            finally:
                server.terminate()
                server.wait(timeout=30)
            load = os.getloadavg()[0]
            print(f"  {name}: {said} (load average {load:.1f} on {os.cpu_count()} cores)")
        chromium.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples in the run")
    parser.add_argument("--browser", action="store_true", help="also time it in Chromium")
    parser.add_argument(
        "--no-every-point",
        action="store_true",
        help="in Chromium, skip one WebGL trace of every point (minutes of software WebGL)",
    )
    parser.add_argument("--server-page", help=argparse.SUPPRESS)  # one fresh process's part
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server_page:
        print("RESULT", json.dumps(server_times(args.run, args.server_page)))
        return
    path = the_run(args.n)
    print(f"1. The pages on {args.n:,} examples, server side (AppTest, fresh process)")
    server(path)
    print("2. The map's figure, built and serialized as st.plotly_chart does")
    charts_side_by_side(path)
    print("3. A lasso's examples")
    selection_side_by_side(path)
    if args.browser:
        print("4. In Chromium (headless, software WebGL)")
        browser(path, every_point=not args.no_every_point)


if __name__ == "__main__":
    main()
