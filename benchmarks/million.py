"""A million-example benchmark (issue #27): a synthetic run of 1,000,000 examples x 20 epochs
written with memdash's own writer, then every analysis step and page read timed and measured
in memory, each in a fresh process, beside the issue's goals.

The run (written once under benchmarks/.cache/million/, reused while complete):
- shaped as benchmarks/scale.py's runs: 10 classes, a sixth of the examples held out, 10% of
  the training labels flipped; an eval trace part per epoch 0..E and a minibatch part per
  epoch 1..E (statistics drawn by `examples_million._part`: clean examples learned early,
  flipped ones late or never, 80% of the held-out ones right);
- inputs stored as the store's uint8 thumbnails (`input_form="thumbnail"`) of 3 x 32 x 32
  images, as ImageNet 32x32 (1.28 M images) is: 3 KiB an example, 2.9 GiB in all (float32
  inputs would be 11.4 GiB);
- embeddings of one layer, 64 wide, float16, at epochs 0 and E. 64 because it is the width
  benchmarks/umap_scale.py measured the sampled UMAP at (so the two figures compare) and the
  width Cohen et al. reduce a layer to before their k-NN; a 128-wide layer doubles the bytes
  and the k-NN's distance work. Each class is a Gaussian of low intrinsic dimension (its
  mean, spread along its own 8-D subspace, plus isotropic noise 0.1): weakly separated at
  epoch 0, well separated at E, where a flipped example the network has memorized sits in
  its given label's cluster and one it has not in its true label's. The layer is named
  ``out`` because `pages_million.server_times` reads derived/umap/out.parquet.

Each figure in a fresh process: wall seconds; CPU seconds (every thread, user and system:
what the machine's load does not change; of the two pages, their first draw, warm rerun,
lasso and box together); peak resident memory VmHWM, memory-mapped files included, and its
increase over the process's memory after its imports (`PRELOAD`):
info          `memdash info RUN`: the run validated (every trace part read)
scores        `memdash analyze RUN --only scores --force`
knn           `memdash analyze RUN --only knn --force` (--knn auto: IVF at this size)
umap          `memdash analyze RUN --only umap --force` (fit on --umap-sample 50,000, the
              rest placed by transform), the same layer at its two epochs
curves        the accuracy curves of the Runs, Compare and Forgetting pages, both sources
              (`scale.run_step("curves")`)
trajectory    one example's eval trajectory (`examples_million.run_step("trajectory")`)
first page    the Examples page's data functions on its first visit (columns, facets, the
              first 100 rows and their count, the gallery's 12; `examples_million`)
page (AppTest) the whole Examples page rendered by Streamlit's AppTest
embeddings    the Embeddings page with every point through AppTest: first draw (cold), a
              warm rerun, a lasso and a box to their lists (`pages_million.server_times`)
data map      the same for the Forgetting page's data map
sql           `memdash sql` of one query joining the eval trace (N x (E+1) rows) to the
              examples: accuracy per epoch of flipped and clean training examples

The machine is shared (2 cores): `uptime` is printed at the start and the end, and the
load average beside every figure.

Measured here (docs/scale.md, "1,000,000 x 20, measured"; 2 shared cores at a load of 9-13):
the run written in 86 s (3.6 GiB: thumbnails 2.9, trace 0.4, embeddings 0.2); info 10.5 s;
scores 18 s, peak 1.9 GiB; knn (IVF) 976 s, peak 3.05 GiB; umap 1,280 s, peak 2.4 GiB;
analyze 37.9 min (goal 30: missed at this load), 3.05 GiB (goal 12: met); the Examples
page's first page 2.9-3.0 s (1.0 CPU s; goal 2); the Embeddings page's first draw 6.1 s
(goal 5), its lasso's list 0.9-1.3 s (goal 2: met). Again at a load of 1-6: scores 9.1 s,
knn 497 s, umap 399 s: analyze 15.1 min (goal 30: met), 3.05 GiB; the Examples page's first
page 1.09 s (goal 2: met); the Embeddings page's first draw 2.14 s (goal 5: met), a lasso's
list 0.31 s.

Run: .venv/bin/python benchmarks/million.py [--n 1000000] [--epochs 20] [--steps a,b,...]
     [--rebuild]   (at the defaults about 41 minutes at that load, 1.5 of them writing the
     run the first time; --n 20000 takes about 2.5 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _benchmark(name: str):
    """benchmarks/NAME.py of this checkout as a module (site-packages may hold a package
    named `benchmarks`, so not by `import benchmarks.NAME`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


scale = _benchmark("scale")  # its run's steps and the memory of this process
examples_million = _benchmark("examples_million")  # the Examples page and a trajectory
pages_million = _benchmark("pages_million")  # the Embeddings page and the data map

CACHE = REPO / "benchmarks" / ".cache" / "million"
LAYER, DIM, LATENT, NOISE = "out", 64, 8, 0.1
IMAGE = (3, 32, 32)  # stored as uint8 thumbnails
ANALYSIS = ("scores", "knn", "umap")
PAGES = ("curves", "trajectory", "first page", "page (AppTest)", "embeddings", "data map")
STEPS = ("info", *ANALYSIS, *PAGES, "sql")
GIB = 1024  # MiB
GOALS = {  # issue #27, for 1,000,000 x 20
    "analyze_s": 30 * 60,
    "analyze_mib": 12 * GIB,
    "first draw (cold)": 5.0,
    "lasso list": 2.0,
    "first page": 2.0,
}
SQL = (
    "SELECT t.epoch, e.is_noisy, count(*) AS n, avg(t.correct::INT) AS accuracy "
    "FROM trace t JOIN examples e USING (run, example_id) WHERE e.split = 'train' "
    "GROUP BY ALL ORDER BY ALL"
)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _tree() -> str:
    """The commit measured, and the files of analysis/ and dashboard/ changed beside it."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(
        [*git, "status", "--short", "analysis", "dashboard"], capture_output=True, text=True
    ).stdout.split("\n")
    listed = ", ".join(line[3:] for line in changed if line.strip())
    return f"commit {head.stdout.strip()}; uncommitted in analysis/, dashboard/: {listed or 'none'}"


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# ----------------------------------------------------------------- the run
def _embedding(rng, epoch: int, epochs: int, cluster, centres, bases):
    """(N, DIM) float16: each point its cluster's mean (weak at epoch 0) plus its own place
    along the cluster's LATENT-D subspace, plus isotropic noise."""
    import numpy as np

    separation = 0.4 if epoch == 0 else 1.0 + 2.0 * epoch / epochs
    X = NOISE * rng.standard_normal((len(cluster), DIM), dtype=np.float32)
    for c in range(len(centres)):
        rows = np.flatnonzero(cluster == c)
        latent = rng.standard_normal((len(rows), LATENT), dtype=np.float32)
        X[rows] += separation * centres[c] + latent @ bases[c].T
    return X.astype(np.float16)


def _thumbnail_source(path: Path, n: int, rng):
    """A uint8 (n, *IMAGE) array on disk (random pixels), filled a chunk at a time, so that
    the writer's thumbnails are the only copy in memory."""
    import numpy as np

    source = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, *IMAGE))
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        source[start:stop] = rng.integers(0, 256, (stop - start, *IMAGE), dtype=np.uint8)
    source.flush()
    return source


def make_run(path: Path, n: int, epochs: int) -> None:
    """Write the synthetic run of the module docstring; `run.json` says complete last."""
    import numpy as np
    import pandas as pd

    from memdash.analysis.store import RunWriter
    from memdash.analysis.store.derived import replace_derived

    rng = np.random.default_rng(0)
    examples = scale.synthetic_examples(n, rng)  # the same draws as before, in order
    n_test = n // 6
    split, noisy = examples["split"].to_numpy(), examples["is_noisy"].to_numpy()
    label, true = examples["label"].to_numpy(), examples["true_label"].to_numpy()
    config = {
        "data": {"dataset": "synthetic", "n_examples": n, "shape": list(IMAGE)},
        "train": {"epochs": epochs},
        "record": {"record_train": True, "embed_layers": [LAYER], "embed_epochs": [0, epochs]},
    }
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = path.parent / "pixels.tmp.npy"
    inputs = _thumbnail_source(pixels, n, rng)
    writer = RunWriter.create(
        path,
        config=config,
        examples=examples,
        inputs=inputs,
        n_classes=10,
        layers=[LAYER],
        input_form="thumbnail",
    )
    del inputs
    pixels.unlink()
    # clean examples learned in the first third, flipped ones from a quarter on (a fifth
    # never), held-out ones right from a quarter on (80%) or never
    learned = np.where(noisy, rng.integers(epochs // 4, epochs + 1, n), 0)
    learned[noisy & (rng.random(n) < 0.2)] = 10**9
    clean = (split == "train") & ~noisy
    learned[clean] = rng.integers(1, max(2, epochs // 3), int(clean.sum()))
    learned[split == "test"] = np.where(rng.random(n_test) < 0.8, max(1, epochs // 4), 10**9)
    train_ids = np.flatnonzero(split == "train")
    all_ids = np.arange(n)
    centres = rng.normal(size=(10, DIM)).astype(np.float32)
    bases = np.linalg.qr(rng.normal(size=(10, DIM, LATENT)))[0].astype(np.float32)
    for epoch in range(epochs + 1):
        part = examples_million._part
        writer.write_trace("eval", epoch, part(rng, "eval", epoch, all_ids, learned, label))
        if epoch:
            writer.write_trace("train", epoch, part(rng, "train", epoch, train_ids, learned, label))
        if epoch in (0, epochs):
            cluster = np.where(learned <= epoch, label, true)  # memorized: the given label's
            X = _embedding(rng, epoch, epochs, cluster, centres, bases)
            writer.write_embedding(epoch, LAYER, X)
        writer.commit_epoch(epoch)
    writer.finish("complete")
    # a held-out estimate as `memdash estimate` leaves it, so that the Examples page sorts
    # and draws its gallery by mem_score as on an estimated run (examples_million's)
    mem = np.where(noisy, rng.uniform(0.3, 1.0, n), rng.uniform(-0.1, 0.3, n))
    mem[split == "test"] = np.nan  # never trained on: no estimate
    heldout = pd.DataFrame({"example_id": np.arange(n), "mem_score": mem})
    replace_derived(path, "heldout", {"heldout.parquet": heldout}, {"synthetic": True})


def the_run(n: int, epochs: int, *, rebuild: bool = False) -> Path:
    """The cached run of `n` x `epochs`, written unless present and complete."""
    from memdash.analysis.store import Run

    path = CACHE / f"n{n}_e{epochs}" / f"million_{n}x{epochs}"
    if not rebuild and (path / "run.json").is_file():
        run = Run.open(path)
        if run.status == "complete" and run.epochs_completed == epochs:
            print(f"run {path.relative_to(REPO)} present and complete: reused")
            return path
    start = time.perf_counter()
    make_run(path, n, epochs)
    print(f"run {path.relative_to(REPO)} written in {time.perf_counter() - start:.0f} s")
    return path


def disk(path: Path) -> str:
    """MiB on disk of the run's parts, in words."""

    def size(p: Path) -> float:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        return sum(f.stat().st_size for f in files) / 2**20

    parts = ("trace.parquet", "embeddings", "inputs_thumbnail.npy", "examples.parquet", "derived")
    sizes = {part: size(path / part) for part in parts if (path / part).exists()}
    listed = ", ".join(f"{part} {mib:,.0f}" for part, mib in sizes.items())
    return f"{size(path):,.0f} MiB: {listed}"


# ---------------------------------------------------------------- the steps
def _command(args: list[str]) -> dict:
    """`memdash ARGS` in this process (its output printed above the result)."""
    from memdash.analysis.cli import app

    base = scale._memory_mib("VmRSS")
    start = time.perf_counter()
    try:
        app(args, standalone_mode=False)
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": scale._memory_mib("VmHWM"), "base_mib": base,
            "exit": code}  # fmt: skip


# what each step imports, loaded before its clocks start (imports are not the step's)
PRELOAD = {
    "info": ("memdash.analysis.store",),
    **dict.fromkeys(ANALYSIS, ("faiss", "umap", "memdash.analysis.steps.pipeline")),
    "sql": ("duckdb", "memdash.analysis.tables.sql"),
    "curves": ("pyarrow.dataset", "memdash.analysis.steps.pipeline", "memdash.analysis.tables"),
    **dict.fromkeys(
        ("trajectory", "first page", "page (AppTest)"),
        ("streamlit.testing.v1", "memdash.dashboard.app_pages.examples", "memdash.dashboard.data"),
    ),
    **dict.fromkeys(
        ("embeddings", "data map"),
        (
            "streamlit.testing.v1",
            "memdash.dashboard.app_pages.embeddings",
            "memdash.dashboard.app_pages.forgetting",
        ),
    ),  # fmt: skip
}


def _cpu_s() -> float:
    """CPU seconds of this process so far, every thread, user and system."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_step(step: str, path: Path) -> dict:
    """One step in this (fresh) process: its wall and CPU seconds and the process's peak
    memory. CPU seconds do not depend on the machine's load as wall seconds do."""
    import importlib

    if step not in STEPS:
        raise SystemExit(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    for module in PRELOAD[step]:
        importlib.import_module(module)
    cpu = _cpu_s()
    out = _measure(step, path)
    return {**out, "cpu_s": _cpu_s() - cpu}


def _measure(step: str, path: Path) -> dict:
    if step == "info":
        return _command(["info", str(path)])
    if step in ANALYSIS:
        return _command(["analyze", str(path), "--only", step, "--force"])
    if step == "sql":
        return _command(["sql", SQL, str(path.parent), "--max-rows", "100"])
    if step == "curves":
        return scale.run_step("curves", path)
    if step in ("trajectory", "first page", "page (AppTest)"):
        return examples_million.run_step(step, path)
    base = scale._memory_mib("VmRSS")  # the Embeddings page or the data map
    page = "embeddings" if step == "embeddings" else "forgetting"
    out = pages_million.server_times(str(path), page)
    return {**out, "seconds": out["first draw (cold)"], "base_mib": base,
            "peak_mib": scale._memory_mib("VmHWM")}  # fmt: skip


def child(step: str, path: Path) -> tuple[dict | None, str]:
    """`step` in a fresh process: its figures (None when it failed) and its output."""
    done = subprocess.run(
        [sys.executable, __file__, "--step", step, "--run", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        return None, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


def _against(value: float, goal: float | None, unit: str = "s") -> str:
    if goal is None:
        return ""
    return f"(goal < {goal:g} {unit}: {'met' if value < goal else 'MISSED'})"


def report(step: str, r: dict, output: str, n: int) -> None:
    """The step's line (and, for some, its details) in the table."""
    grew = r["peak_mib"] - r["base_mib"]
    goal = GOALS["first page"] if step in ("first page", "page (AppTest)") else None
    if step == "embeddings":
        goal = GOALS["first draw (cold)"]
    print(
        f"  {step:15s} {r['seconds']:8.2f} s ({r['cpu_s']:7.1f} CPU s)  peak "
        f"{r['peak_mib']:7,.0f} MiB (+{grew:6,.0f})  load {r['load']:14s} "
        f"{_against(r['seconds'], goal)}",
        flush=True,
    )
    if "exit" in r and r["exit"]:
        print(f"  {'':15s} exit code {r['exit']}: {output.strip().splitlines()[-1:]}")
    if step in ("embeddings", "data map"):
        for kind in ("lasso", "box"):
            goal = GOALS["lasso list"] if step == "embeddings" else None
            print(
                f"  {'':15s} {kind} to its list of {r[f'{kind} selected']} examples "
                f"{r[f'{kind} list']:5.2f} s {_against(r[f'{kind} list'], goal)}"
            )
        print(f"  {'':15s} warm rerun {r['warm rerun']:.2f} s, the figure {r['figure MB']:.1f} MB")
    if step in ("first page", "page (AppTest)", "trajectory"):
        keep = ("rows", "total", "gallery", "row_groups", "epochs", "exception")
        print(f"  {'':15s} { ({k: r[k] for k in keep if k in r}) }")
    if step == "sql":
        lines = [line for line in output.splitlines() if line.strip()]
        print("\n".join(f"  {'':15s} | {line}" for line in lines[:8]))
        if len(lines) > 8:
            print(f"  {'':15s} | ... ({len(lines)} lines)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples in the run")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the run")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps")
    parser.add_argument("--rebuild", action="store_true", help="write the run again")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # a child process's one step
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child process: one step, its figures as JSON on the last line
        print(json.dumps(run_step(args.step, Path(args.run))))
        return
    steps = args.steps.split(",")
    unknown = sorted(set(steps) - set(STEPS))
    if unknown or args.n < 1_000 or args.epochs < 4:
        parser.error(
            f"steps are {', '.join(STEPS)} (got unknown {unknown}); --n >= 1000, --epochs >= 4"
        )
    print(f"start {_uptime()}")
    print(f"code: {_tree()}")
    print(f"free disk: {shutil.disk_usage(REPO).free / 2**30:.0f} GiB; {os.cpu_count()} cores")
    path = the_run(args.n, args.epochs, rebuild=args.rebuild)
    rows = args.n * (args.epochs + 1)
    print(f"{args.n:,} examples x {args.epochs} epochs ({rows:,} eval rows); {disk(path)}")
    print("each step a fresh process; peak = VmHWM (+ over the process after its imports)")
    got = {}
    for step in (s for s in STEPS if s in steps):
        load = _load()
        r, output = child(step, path)
        if r is None:
            error = output[output.rfind("Traceback") :] if "Traceback" in output else output
            print(f"  {step:15s} FAILED (load {load}):\n{error[-3000:]}", flush=True)
            continue
        r["load"] = f"{load}>{_load()}"
        got[step] = r
        report(step, r, output, args.n)
    done = [s for s in ANALYSIS if s in got]
    if done:
        seconds = sum(got[s]["seconds"] for s in done)
        cpu = sum(got[s]["cpu_s"] for s in done)
        peak = max(got[s]["peak_mib"] for s in done)
        print(
            f"memdash analyze ({' + '.join(done)}, one process each): {seconds / 60:.1f} min "
            f"({cpu / 60:.1f} CPU min) "
            f"{_against(seconds / 60, GOALS['analyze_s'] / 60, 'min')}, largest peak "
            f"{peak / GIB:.2f} GiB {_against(peak / GIB, GOALS['analyze_mib'] / GIB, 'GiB')}"
        )
    print(f"run on disk after the steps: {disk(path)}")
    print(f"end {_uptime()}")


if __name__ == "__main__":
    main()
