"""The first chart, cold (issue #28): memdash's first charts against a minimal Streamlit app's.

Each measurement starts a fresh server process and opens a fresh Chromium context, and
times the seconds from starting the server to the first Plotly chart drawn in the page
(polling `/_stcore/health`, then opening the page). The targets alternate, repetition by
repetition, so that the machine's load falls on all of them alike:

- the minimal app (first_chart_apps/minimal.py): one Plotly chart of three points,
  `python -m streamlit run` with the same server options as `memdash dashboard`, as are the
  floors;
- Streamlit alone with the Runs page's elements (first_chart_apps/runs_elements.py: its
  sidebar, widgets, table and chart, none of memdash's work), the floor under the Runs
  page's figure: what Streamlit spends serving, sending and drawing those elements. The
  floors, like the minimal app, run under plain `streamlit run` and so pay Streamlit's scan
  of the installed distributions for custom components (0.16-0.18 s), which memdash's
  launcher skips: memdash's own share is that much more than its ratio to its floor says;
- memdash's Runs page on sample_runs/ (`memdash dashboard sample_runs`, then `/runs`);
- Streamlit alone with the elements of that link's page (first_chart_apps/link_elements.py),
  its floor;
- a deep link to one example, `/examples?run=digits_mlp_noise20&example=5`, until that
  example's detail chart is drawn;
- the Embeddings page of the 100,000-example synthetic run that benchmarks/dashboard.py
  makes under benchmarks/.cache/big/ (made here too when it is missing).

Medians are printed with their ratio to the minimal app's median, beside the goals (and the
Runs page and the link against their floors: memdash's own work):
at most 1.25x for the Runs page and the deep link, at most 1.5x for the Embeddings page,
and split three ways: the server answering (up), the page opened until the browser receives
the chart's message (sent: Streamlit's page loading, then the app's script until it sends the
chart), and from that message to the chart drawn (drawn: the browser alone, its Plotly
module and every element the page sent).
`--plain` adds the Runs page and the deep link under plain `python -m streamlit run` of the
app (MEMDASH_ROOTS set), to the same alternation: the difference is `memdash dashboard`'s own
start (its command line parsed, then Streamlit's in the same process) and its launcher's
work (memdash.dashboard.serve: the preloading thread, the component scan skipped).

`--umap` measures instead what `make install`'s compilation of umap-learn's numba code costs
and saves, each step a fresh process with its own numba cache folder: the Makefile's
WARM_UMAP (a tiny projection) on an empty cache, then the same on the cache it filled, and
`aligned_projections` of 10,000 points over 2 epochs (fitted on 5,000, the rest placed by
transform) in a fresh process against a second call in that process (warm), once on an
empty cache and once on the cache WARM_UMAP filled. Wall and CPU seconds are printed: on a
machine shared with other work the CPU seconds are the steadier figure.

Run: .venv/bin/python benchmarks/first_chart.py [--repeats 3] [--skip-big] [--plain] [--umap]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # `dashboard` is the app package, not this script

from memdash.analysis.cli.dashboard import streamlit_command  # noqa: E402
from tests.test_browser import CHROMIUM, FLAGS, dashboard_command  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache"
SAMPLES = REPO / "sample_runs"
WAIT_MS = 300_000  # the longest a chart may take before the measurement is called failed
# the Streamlit apps measured beside memdash's pages: the minimal app, and the floors
APPS = REPO / "benchmarks" / "first_chart_apps"
PLOT = ".js-plotly-plot .scatterlayer"
EXAMPLE_5 = ".js-plotly-plot .gtitle:has-text('example 5')"
DENSITY = ".js-plotly-plot .imagelayer image, .js-plotly-plot .gl-container canvas"


@dataclass(frozen=True)
class Target:
    """One thing to time: the server's command (given a port), the page's path and the
    selector that is there once its first chart is drawn."""

    name: str
    command: Callable[[int], list[str]]
    path: str
    selector: str
    goal: float | None  # the largest ratio to the minimal app's median allowed
    env: tuple[tuple[str, str], ...] = ()  # set for the server besides this environment
    marker: bytes = b'"layout"'  # in the websocket message that carries the chart (its spec)


def app_command(name: str) -> Callable[[int], list[str]]:
    """The command serving the Streamlit app APPS/`name` as `memdash dashboard` serves its own
    (the same server options)."""

    def command(port: int) -> list[str]:
        return streamlit_command(APPS / name, port=port, host="127.0.0.1")

    return command


def measure(browser, target: Target) -> tuple[float, float, float, float]:
    """Seconds from starting the server to the chart drawn, from opening the page to the
    chart drawn, from starting the server to its answering (the page is opened then), and
    from opening the page to the browser receiving the chart (the first websocket message
    holding `target.marker`): the server's share, the rest is the browser's."""
    port = served.free_port()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    received: list[float] = []

    def frame(payload: bytes | str) -> None:
        data = payload if isinstance(payload, bytes) else payload.encode()
        if not received and target.marker in data:
            received.append(time.perf_counter())

    page.on("websocket", lambda socket: socket.on("framereceived", frame))
    start = time.perf_counter()
    log = (CACHE / "server.log").open("w")  # what the server said, for a failed start
    server = subprocess.Popen(
        target.command(port),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, **dict(target.env)),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            served.wait_until_up(url, server, lambda: (CACHE / "server.log").read_text()[-2000:])
        except RuntimeError as err:
            raise RuntimeError(f"{target.name}: {err}") from None
        opened = time.perf_counter()
        page.goto(f"{url}/{target.path}")
        page.wait_for_selector(target.selector, timeout=WAIT_MS)
        drawn = time.perf_counter()
        sent = (received or [float("nan")])[0] - opened
        return drawn - start, drawn - opened, opened - start, sent
    finally:
        context.close()
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _dashboard_benchmark():
    """benchmarks/dashboard.py, loaded by its path (`benchmarks` is another package's name)."""
    spec = importlib.util.spec_from_file_location(
        "bench_dashboard", REPO / "benchmarks/dashboard.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# its server helpers: a free port, and the wait for the server to answer
served = _dashboard_benchmark()


def big_root() -> Path:
    """benchmarks/dashboard.py's 100,000-example run (made and analyzed once)."""
    return served.big_run()


def plain_streamlit_command(port: int) -> list[str]:
    """memdash's app under `python -m streamlit run`, as `memdash dashboard` serves it but
    without its command line in front (the roots in MEMDASH_ROOTS)."""
    return streamlit_command(REPO / "dashboard" / "app.py", port=port, host="127.0.0.1")


def targets(*, big: bool, plain: bool) -> list[Target]:
    found = [
        Target("minimal app (one Plotly chart)", app_command("minimal.py"), "", PLOT, None),
        Target(
            "  Streamlit alone, the Runs page's elements",
            app_command("runs_elements.py"),
            "",  # its default page, Runs
            PLOT,
            None,
        ),
        Target(
            "memdash Runs page (sample_runs)",
            lambda port: dashboard_command(SAMPLES, port),
            "runs",
            PLOT,
            1.25,
        ),
        Target(
            "  Streamlit alone, the link's elements",
            app_command("link_elements.py"),
            "",  # its default page, Examples
            EXAMPLE_5,
            None,
            marker=b"example 5",
        ),
        Target(
            "memdash deep link to an example",
            lambda port: dashboard_command(SAMPLES, port),
            "examples?run=digits_mlp_noise20&example=5",
            EXAMPLE_5,
            1.25,
            marker=b"example 5",
        ),
    ]
    if plain:
        env = (("MEMDASH_ROOTS", str(SAMPLES)),)
        found += [
            Target(
                "  Runs page, plain streamlit run", plain_streamlit_command, "runs", PLOT, None, env
            ),
            Target(
                "  deep link, plain streamlit run",
                plain_streamlit_command,
                "examples?run=digits_mlp_noise20&example=5",
                EXAMPLE_5,
                None,
                env,
                marker=b"example 5",
            ),
        ]
    if big:
        root = big_root()
        found.append(
            Target(
                "memdash Embeddings page, 100,000 examples",
                lambda port: dashboard_command(root, port),
                "embeddings?run=synthetic_100k",
                DENSITY,
                1.5,
            )
        )
    return found


UMAP_CHILD = r"""
import json, sys, time
import numpy as np
from memdash.analysis.measures.projection import aligned_projections
start, cpu = time.perf_counter(), time.process_time()
x = np.random.default_rng(0).normal(size=(10_000, 32)).astype(np.float32)
embeddings = {0: x, 1: 2 * x + 1}
aligned_projections(embeddings, sample=5_000)
fresh, fresh_cpu = time.perf_counter() - start, time.process_time() - cpu
start, cpu = time.perf_counter(), time.process_time()
aligned_projections(embeddings, sample=5_000)
warm, warm_cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"fresh": fresh, "warm": warm, "fresh_cpu": fresh_cpu, "warm_cpu": warm_cpu}))
"""


def warm_umap_code() -> str:
    """The Makefile's WARM_UMAP: the Python that `make install` runs once."""
    text = (REPO / "Makefile").read_text().replace("\\\n\t", " ")
    line = next(x for x in text.splitlines() if x.startswith("WARM_UMAP :="))
    return line.split(":=", 1)[1].strip()


def child(code: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of `python -c code` in a fresh process, and its last line."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, (done.stdout.strip().splitlines() or [""])[-1]


def bench_umap() -> None:
    import json
    import tempfile

    code = warm_umap_code()
    with tempfile.TemporaryDirectory() as tmp:
        caches = {name: Path(tmp) / name for name in ("warmed", "empty")}
        envs = {name: dict(os.environ, NUMBA_CACHE_DIR=str(path)) for name, path in caches.items()}
        for path in caches.values():
            path.mkdir()
        wall, cpu, _ = child(code, envs["warmed"])
        print(f"  make install's WARM_UMAP, empty numba cache: {wall:.1f} s ({cpu:.1f} s CPU)")
        again, again_cpu, _ = child(code, envs["warmed"])
        print(f"  the same again, on the cache it filled: {again:.1f} s ({again_cpu:.1f} s CPU)")
        for name, said in (("empty", "empty cache"), ("warmed", "cache filled by WARM_UMAP")):
            wall, cpu, line = child(UMAP_CHILD, envs[name])
            times = json.loads(line)
            print(
                f"  10,000 points x 2 epochs, fresh process, {said}: {times['fresh']:.1f} s "
                f"against {times['warm']:.1f} s warm: {times['fresh'] / times['warm']:.2f}x; "
                f"CPU {times['fresh_cpu']:.1f} s against {times['warm_cpu']:.1f} s: "
                f"{times['fresh_cpu'] / times['warm_cpu']:.2f}x (goal: after make install, "
                f"a filled cache's figure; the process: {wall:.1f} s, {cpu:.1f} s CPU)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each target")
    parser.add_argument("--skip-big", action="store_true", help="leave out the 100,000 run")
    parser.add_argument("--umap", action="store_true", help="only the numba cache of UMAP")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="also the Runs page and the deep link under plain `streamlit run` (no warming)",
    )
    args = parser.parse_args()
    if args.umap:
        print(f"UMAP's numba cache ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
        bench_umap()
        return
    from playwright.sync_api import sync_playwright

    chosen = targets(big=not args.skip_big, plain=args.plain)
    times: dict[str, list[tuple[float, float, float, float]]] = {t.name: [] for t in chosen}
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for round_ in range(args.repeats):
                for target in chosen:
                    total, after_open, up, sent = measure(browser, target)
                    times[target.name].append((total, after_open, up, sent))
                    print(
                        f"  round {round_ + 1} {target.name}: {total:.2f} s "
                        f"(server up {up:.2f} s, {after_open:.2f} s after opening the page, "
                        f"the chart received {sent:.2f} s after opening)",
                        flush=True,
                    )
        finally:
            browser.close()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    base = statistics.median(t[0] for t in times[chosen[0].name])
    print(
        "Medians, seconds from starting the server to the first chart drawn (up: the server "
        "answers; sent: the page opened, the chart's message received; drawn: the browser's "
        "part, from that message to the chart drawn):"
    )
    for target in chosen:
        columns = zip(*times[target.name], strict=True)
        total, opened, up, sent = (statistics.median(column) for column in columns)
        ratio = total / base
        goal = "" if target.goal is None else f"  (goal <= {target.goal:.2f}x)"
        verdict = "" if target.goal is None else ("  met" if ratio <= target.goal else "  NOT met")
        print(
            f"  {target.name:44s} {total:5.2f} s (up {up:4.2f}, sent {sent:4.2f}, drawn "
            f"{opened - sent:4.2f}) {ratio:5.2f}x{goal}{verdict}"
        )
    medians = {name: statistics.median(t[0] for t in found) for name, found in times.items()}
    for what, (floor, page) in (("The Runs page", chosen[1:3]), ("The link", chosen[3:5])):
        print(
            f"{what} against Streamlit alone with its elements: "
            f"{medians[page.name] / medians[floor.name]:.2f}x (memdash's own work; that floor "
            f"is {medians[floor.name] / base:.2f}x the minimal app)"
        )


if __name__ == "__main__":
    main()
