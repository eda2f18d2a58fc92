"""Memory, disk and time of a run at CIFAR-10 scale, the figures behind docs/scale.md.

For each size N x E (examples x epochs) a synthetic run is written once under
benchmarks/.cache/scale/ with memdash's RunWriter, shaped as a CIFAR-10 run:
inputs of 3 x 32 x 32 float32, 10 classes, 10% flipped labels, a sixth held
out; an eval trace part per epoch 0..E and a minibatch part per epoch 1..E
(statistics drawn at random, so Parquet compresses them no better than real
ones); embeddings of one 256-wide layer (float16) at epochs 0 and E.

Then each step runs in a fresh process, which reports its wall time and its
peak resident memory (VmHWM, memory-mapped files included) beside its
resident memory after its imports. The analysis steps write their results,
so the pages find the run analyzed:

write        an epoch's two trace parts written and committed (the recorder's
             background work per epoch; the eval pass itself is one forward
             pass of the model over N examples)
validate     `memdash info`: open the run, check every file the epochs promise
scores       `memdash analyze` step scores: both sources read into (E, N)
             matrices, forgetting, data maps, AUM
knn          step knn: FAISS k = 30 (L1) at both recorded epochs
umap         step umap: aligned UMAP projections at both recorded epochs
exposure     step exposure (no canaries here: it reads the examples and stops)
curves       the accuracy curves of the Runs, Compare and Forgetting pages:
             two trace columns as (E, N) grids read part by part, grouped
             by kind; "curves (long)" reads the whole trace first, as before
grids        the Examples page's trajectories: five columns of the eval trace
             as (E, N) matrices, read once and kept (`Run.trace_grids`, part by
             part); "grids (long)" reads the whole long trace first, as
             memdash did before (not in the default steps)
one example  one example's eval trajectory read with predicate pushdown (a
             filter on example_id, statistics of each part's row groups)
pages        every page's first run (cold caches) and a warm rerun, through
             Streamlit's AppTest, in one process as one session would

Run: .venv/bin/python benchmarks/scale.py [--sizes 12500x200,50000x100,50000x200]
     [--steps write,validate,...]   (about 15 minutes for the default sizes)
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
CACHE = REPO / "benchmarks" / ".cache" / "scale"
ANALYSIS = ("scores", "knn", "umap", "exposure")
STEPS = ("write", "validate", *ANALYSIS, "curves", "grids", "one example", "pages")
EXTRA_STEPS = ("grids (long)", "curves (long)")
PAGES = (
    "runs",
    "examples",
    "forgetting",
    "embeddings",
    "knn",
    "compare",
    "sensitivity",
    "findings",
)
EMBED_DIM = 256


def _memory_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak) of this process, in MiB. Not ru_maxrss: Linux
    carries that over from the parent across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


# ----------------------------------------------------------------- the run
def _epoch_tables(rng, epoch: int, n: int, learned, labels, train_ids):
    """Random but plausible statistics of one epoch: an example is right once learned."""
    import numpy as np
    import pyarrow as pa

    def table(source: str, ids):
        k = len(ids)
        right = learned[ids] <= epoch
        loss = np.where(right, rng.exponential(0.05, k), rng.exponential(2.0, k) + 0.7)
        margin = np.where(right, rng.exponential(3.0, k), -rng.exponential(3.0, k))
        pred = np.where(right, labels[ids], (labels[ids] + 1 + rng.integers(0, 9, k)) % 10)
        return pa.table(
            {
                "source": pa.array([source] * k),
                "epoch": np.full(k, epoch, np.int32),
                "example_id": ids.astype(np.int64),
                "loss": loss.astype(np.float32),
                "prob_label": np.exp(-loss).astype(np.float32),
                "margin": margin.astype(np.float32),
                "pred": pred.astype(np.int32),
                "correct": right,
            }
        )

    return table("eval", np.arange(n)), (table("train", train_ids) if epoch else None)


def synthetic_examples(n: int, rng):
    """The example table of the synthetic runs: 10 classes, the last sixth held out, 10% of
    the training labels flipped to another class (drawn from `rng`, in this order)."""
    import numpy as np
    import pandas as pd

    n_test = n // 6
    split = np.where(np.arange(n) < n - n_test, "train", "test").astype(object)
    true = rng.integers(0, 10, n)
    noisy = (split == "train") & (rng.random(n) < 0.1)
    label = np.where(noisy, (true + 1 + rng.integers(0, 9, n)) % 10, true)
    return pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "split": split,
            "label": label,
            "true_label": true,
            "is_noisy": noisy,
            "is_canary": np.zeros(n, bool),
        }
    )


def make_run(path: Path, n: int, epochs: int) -> float:
    """Write the synthetic run; returns the median seconds to write and commit one epoch."""
    import numpy as np

    from memdash.analysis.store import RunWriter

    rng = np.random.default_rng(0)
    examples = synthetic_examples(n, rng)
    n_test = n // 6
    split, noisy = examples["split"].to_numpy(), examples["is_noisy"].to_numpy()
    label = examples["label"].to_numpy()
    inputs = rng.random((n, 3, 32, 32), dtype=np.float32)
    config = {
        "data": {"dataset": "synthetic", "n_examples": n, "shape": [3, 32, 32]},
        "train": {"epochs": epochs},
        "record": {"record_train": True, "embed_layers": ["fc"], "embed_epochs": [0, epochs]},
    }
    if path.exists():
        shutil.rmtree(path)
    writer = RunWriter.create(
        path, config=config, examples=examples, inputs=inputs, n_classes=10, layers=["fc"]
    )
    # clean examples are learned early, flipped ones late (memorized), test ones partly never
    learned = np.where(noisy, rng.integers(epochs // 4, epochs + 1, n), rng.integers(1, 30, n))
    learned[split == "test"] = np.where(rng.random(n_test) < 0.8, 20, 10**9)
    train_ids = np.flatnonzero(split == "train")
    centres = rng.normal(size=(10, EMBED_DIM)).astype(np.float32)
    seconds = []
    for epoch in range(epochs + 1):
        eval_t, train_t = _epoch_tables(rng, epoch, n, learned, label, train_ids)
        start = time.perf_counter()
        writer.write_trace("eval", epoch, eval_t)
        if train_t is not None:
            writer.write_trace("train", epoch, train_t)
        if epoch in (0, epochs):
            spread = 3.0 if epoch == 0 else 0.5
            emb = centres[label] + spread * rng.normal(size=(n, EMBED_DIM)).astype(np.float32)
            writer.write_embedding(epoch, "fc", emb.astype(np.float16))
        writer.commit_epoch(epoch)
        seconds.append(time.perf_counter() - start)
    writer.finish("complete")
    return float(np.median(seconds))


def disk(path: Path) -> dict[str, float]:
    """MiB on disk of the run's parts."""

    def size(p: Path) -> float:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        return sum(f.stat().st_size for f in files) / 2**20

    return {
        part: round(size(path / part), 1)
        for part in ("trace.parquet", "embeddings", "inputs.npy", "examples.parquet")
    }


# ---------------------------------------------------------------- the steps
def run_step(step: str, path: Path) -> dict:
    """One step in this process: its seconds and the process's peak memory."""
    import numpy as np  # noqa: F401  (imports counted in the baseline, not the step)
    import pyarrow.dataset as ds

    from memdash.analysis.measures.curves import accuracy_curves
    from memdash.analysis.measures.dynamics import trace_matrices
    from memdash.analysis.steps.pipeline import analyze
    from memdash.analysis.store import Run
    from memdash.analysis.tables.curves import run_accuracy_curves

    run = Run.open(path)
    extra: dict = {}
    if step == "pages":
        import importlib.util

        os.environ["MEMDASH_ROOTS"] = str(path.parent)
        import streamlit  # noqa: F401
    base = _memory_mib("VmRSS")
    start = time.perf_counter()
    if step == "validate":
        run.validate()
    elif step in ANALYSIS:  # memdash analyze --only STEP --force: computed and written
        analyze(path, only=[step], force=True)
    elif step == "curves":  # as the pages read them: (E, N) grids, part by part
        for source in ("eval", "train"):
            run_accuracy_curves(run, source)
    elif step == "curves (long)":  # the whole long trace read at once, as before
        for source in ("eval", "train"):
            trace = run.trace(source, columns=["epoch", "example_id", "correct", "loss"])
            accuracy_curves(trace, run.examples(["split", "is_noisy", "is_canary"]))
    elif step == "grids":
        columns = ["correct", "loss", "prob_label", "margin", "pred"]
        run.trace_grids("eval", columns, first_epoch=0)
    elif step == "grids (long)":  # the same through the whole long trace, as before
        columns = ["correct", "loss", "prob_label", "margin", "pred"]
        trace = run.trace("eval", columns=["epoch", "example_id", *columns])
        trace_matrices(trace, run.n_examples(), columns, first_epoch=0)
    elif step == "one example":
        parts = sorted(run.trace_parts("eval").values())
        table = ds.dataset([str(p) for p in parts], format="parquet").to_table(
            filter=ds.field("example_id") == run.n_examples() // 2
        )
        extra["rows"] = table.num_rows
    elif step == "pages":
        spec = importlib.util.spec_from_file_location(
            "bench_dashboard", REPO / "benchmarks" / "dashboard.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.reruns(path.parent, PAGES)
    else:
        raise SystemExit(f"unknown step {step!r}; steps: {', '.join(STEPS + EXTRA_STEPS)}")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": _memory_mib("VmHWM"), "base_mib": base, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12500x200,50000x100,50000x200")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child process: one step, its figures as JSON on the last line
        print(json.dumps(run_step(args.step, Path(args.run))))
        return
    steps = args.steps.split(",")
    for size in args.sizes.split(","):
        n, e = (int(v) for v in size.split("x"))
        path = CACHE / f"n{n}_e{e}" / f"synthetic_{n}x{e}"
        start = time.perf_counter()
        per_epoch = make_run(path, n, e)
        print(f"\n{n:,} examples x {e} epochs ({n * (e + 1):,} eval rows)")
        print(f"  made in {time.perf_counter() - start:.0f} s; disk MiB {disk(path)}")
        if "write" in steps:
            print(f"  {'write':12s} {per_epoch:8.3f} s an epoch (two parts, committed)")
        for step in steps:
            if step == "write":
                continue
            child = subprocess.run(
                [sys.executable, __file__, "--step", step, "--run", str(path)],
                capture_output=True,
                text=True,
            )
            if child.returncode:
                print(f"  {step:12s} FAILED: {child.stderr.strip().splitlines()[-1:]}")
                continue
            if step == "pages":
                print("\n".join("  " + line for line in child.stdout.splitlines()[:-1]))
            r = json.loads(child.stdout.strip().splitlines()[-1])
            rows = f", {r['rows']} rows" if "rows" in r else ""
            print(
                f"  {step:12s} {r['seconds']:8.2f} s, peak {r['peak_mib']:7.0f} MiB "
                f"(+{r['peak_mib'] - r['base_mib']:.0f} over the imports){rows}",
                flush=True,
            )


if __name__ == "__main__":
    main()
