"""The proxies' scoreboard (issue #26), timed on the sample run.

1. `tables.proxies.compute_proxies` on sample_runs/digits_mlp_noise20: every proxy the run has
   (23), Spearman with a 1,000-resample bootstrap interval, both AUROCs and the precision in
   the top 5%; median of 3. Goal: under 5 s.
2. Its bootstrap against the straightforward one (scipy's spearmanr on each resample), per
   proxy, side by side on the same resamples.

Run: .venv/bin/python benchmarks/proxies.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from memdash.analysis.measures.proxy_scoreboard import orient, spearman_interval
from memdash.analysis.store import Run
from memdash.analysis.tables.proxies import compute_proxies, proxy_values

SAMPLE = Path(__file__).resolve().parents[1] / "sample_runs" / "digits_mlp_noise20"
N_BOOT = 1000


def main() -> None:
    run = Run.open(SAMPLE)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        board = compute_proxies(run, n_boot=N_BOOT)
        times.append(time.perf_counter() - start)
    print(f"1. the scoreboard of {run.name}: {len(board)} proxies, {N_BOOT} resamples each")
    print(f"   {statistics.median(times):.2f} s (goal < 5 s)")
    table, _ = proxy_values(run)
    mem = table["mem_score"].to_numpy(np.float64)
    x = orient("confidence", table["confidence"].to_numpy())
    both = np.isfinite(x) & np.isfinite(mem)
    x, y = x[both], mem[both]
    start = time.perf_counter()
    spearman_interval(x, y, n_boot=N_BOOT, seed=0)
    ours = time.perf_counter() - start
    draws = np.random.default_rng(0).integers(0, len(x), (N_BOOT, len(x)))
    start = time.perf_counter()
    naive = [spearmanr(x[d], y[d]).statistic for d in draws]
    plain = time.perf_counter() - start
    print(f"2. one proxy's bootstrap ({len(x):,} examples, {N_BOOT} resamples)")
    print(
        f"   ranks from draw counts {ours:.3f} s, spearmanr per resample {plain:.3f} s: "
        f"{plain / ours:.1f}x faster (median rho {np.median(naive):.3f})"
    )


if __name__ == "__main__":
    main()
