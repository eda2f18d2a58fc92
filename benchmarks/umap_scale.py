"""UMAP beyond memory and patience (issue 27): a full fit against a fit on a seeded sample with
the other points placed by the fitted model's transform, side by side, and the sampled path at
a million points.

The data: a seeded Gaussian mixture in 64-D, float32, as a layer's embedding would be: 20
components whose centres are drawn at a spread of 3 around the origin, each spread along
its own random 8-D subspace (unit variance there) with a little isotropic noise (0.1), so a
point's neighbours lie along a structure, not in noise.

1. At 100,000 points, `umap_2d` fitted on every point, then on a seeded sample of 20,000
   (`projection.sample_rows`) with the other 80,000 placed by `transform`, then the same
   with `memdash analyze`'s default sample (`AnalysisConfig().umap_sample`): the seconds of
   each and their ratio to the full fit, and each layout's
   ``sklearn.manifold.trustworthiness`` (n_neighbors 15) on the same seeded 5,000 points
   (and on 5,000 drawn among the transformed points alone). Each fit runs in a fresh
   process, the full fit first.
2. At 1,000,000 points, `aligned_projections` at two epochs (the second the first plus a
   little noise: a layer that moved) with `memdash analyze`'s default sample
   (`AnalysisConfig().umap_sample`), as the umap step runs it on a million-example run: the
   seconds of each epoch, and the process's peak resident memory (``resource.getrusage``'s
   ``ru_maxrss``) beside its memory once the data was drawn; the last epoch's
   trustworthiness on a seeded 5,000 points. In a fresh process.

Goals (issue 27): the whole of `memdash analyze` at 1,000,000 x 20 (scores, approximate k-NN,
sampled-then-transformed UMAP of one layer at two epochs) under 30 minutes and 12 GiB; this
step's share is printed against them. The trustworthiness has no goal in the issue: it is
printed beside the full fit's.

The machine is shared (2 cores): the load average is printed before and after each part.
numba compiles umap-learn on a process's first fit (memdash caches it on disk after the
first run): a small warm-up fit runs before each timed part.

Measured here (2 shared cores, load average 2-8 during the run): at 100,000 points the full
fit 161 s, a 20,000 sample 68 s (2.4x faster), the default 50,000 sample 117 s (1.4x);
trustworthiness 0.9852, 0.9845 and 0.9849 (transformed points alone 0.9841, 0.9846); peak
0.86-0.91 GiB. At 1,000,000 points two aligned epochs with the 50,000 sample took 674 s (362 s
and 312 s), peak 2.18 GiB (1.29 GiB once drawn), trustworthiness 0.9844. One epoch's parts,
measured apart at load 7: the sample's fit 72 s, the inverted file 3 s and its search of
950,000 points 66 s; the rest (umap-learn's transform: graph and 30 epochs of layout on one
thread) about 200 s.

Run: .venv/bin/python benchmarks/umap_scale.py [--part all|compare|million] [--n 100000]
     [--fit 20000] [--million 1000000] [--trust 5000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

DIM, COMPONENTS, SPREAD, LATENT, NOISE = 64, 20, 3.0, 8, 0.1


def mixture(n: int, *, seed: int = 0) -> np.ndarray:
    """n points of a seeded Gaussian mixture in DIM-D (low-rank components), float32."""
    rng = np.random.default_rng(seed)
    centres = (SPREAD * rng.normal(size=(COMPONENTS, DIM))).astype(np.float32)
    bases = np.linalg.qr(rng.normal(size=(COMPONENTS, DIM, LATENT)))[0].astype(np.float32)
    component = rng.integers(0, COMPONENTS, size=n)
    X = NOISE * rng.standard_normal(size=(n, DIM), dtype=np.float32)
    for c in range(COMPONENTS):
        rows = np.flatnonzero(component == c)
        latent = rng.standard_normal(size=(len(rows), LATENT), dtype=np.float32)
        X[rows] += centres[c] + latent @ bases[c].T
    return X


def peak_gib() -> float:
    """The process's peak resident memory so far, GiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def warm_up() -> None:
    """Compile (or load from numba's cache) umap-learn's fit and transform."""
    from memdash.analysis.measures.projection import sample_rows, umap_2d

    X = mixture(600, seed=9)
    umap_2d(X, fit_rows=sample_rows(600, 300, seed=0))


def compare(n: int, fit: int, trust_n: int, how: str) -> None:
    """One of part 1's fits (`how`: full or sampled), timed, with its trustworthiness."""
    from sklearn.manifold import trustworthiness

    from memdash.analysis.measures.projection import sample_rows, umap_2d

    warm_up()
    X = mixture(n)
    rows = sample_rows(n, fit, seed=0) if how == "sampled" else None
    start = time.perf_counter()
    Y = umap_2d(X, random_state=0, fit_rows=rows)
    seconds = time.perf_counter() - start
    picked = np.random.default_rng(1).choice(n, trust_n, replace=False)
    trust = trustworthiness(X[picked], Y[picked], n_neighbors=15)
    placed = "-"
    if rows is not None:  # the trustworthiness of the transformed points alone
        rest = np.setdiff1d(np.arange(n), rows)
        some = np.random.default_rng(2).choice(rest, trust_n, replace=False)
        placed = f"{trustworthiness(X[some], Y[some], n_neighbors=15):.4f}"
    print(f"RESULT {how} {seconds:.1f} {trust:.4f} {placed} {peak_gib():.2f}")


def million(n: int, sample: int, trust_n: int) -> None:
    """Part 2: two aligned epochs at n points, the default sample; seconds and memory."""
    from sklearn.manifold import trustworthiness

    from memdash.analysis.measures.projection import aligned_projections

    warm_up()
    X = mixture(n)
    later = X + np.random.default_rng(3).normal(scale=0.1, size=X.shape).astype(np.float32)
    drawn = peak_gib()
    times = [time.perf_counter()]
    out = aligned_projections(
        {0: X, 1: later},
        random_state=0,
        sample=sample,
        progress=lambda epoch: times.append(time.perf_counter()),
    )
    assert all(np.isfinite(Y).all() and Y.shape == (n, 2) for Y in out.values())
    per_epoch, peak = np.diff(times), peak_gib()
    picked = np.random.default_rng(1).choice(n, trust_n, replace=False)
    trust = trustworthiness(later[picked], out[1][picked], n_neighbors=15)
    print(
        f"RESULT million {times[-1] - times[0]:.1f} {per_epoch[0]:.1f} {per_epoch[1]:.1f} "
        f"{drawn:.2f} {peak:.2f} {trust:.4f}"
    )


def fresh(*args: str) -> list[str]:
    """Run this script's `args` in a fresh process; its RESULT line's fields."""
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return line.split()[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "compare", "million"), default="all")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--fit", type=int, default=20_000, help="and memdash's default")
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=None, help="default: memdash's")
    parser.add_argument("--trust", type=int, default=5_000)
    parser.add_argument("--child", choices=("full", "sampled", "million"), default=None)
    args = parser.parse_args()
    from memdash.analysis.record.config import AnalysisConfig

    sample = AnalysisConfig().umap_sample if args.sample is None else args.sample
    if args.child == "million":
        return million(args.million, sample, args.trust)
    if args.child is not None:
        return compare(args.n, args.fit, args.trust, args.child)

    if args.part in ("all", "compare"):
        print(f"1. {args.n:,} points in {DIM}-D, {COMPONENTS} Gaussian components ({load()})")
        common = ["--n", str(args.n), "--trust", str(args.trust)]
        fits = {args.n: fresh("--child", "full", *common)}
        for fit in dict.fromkeys((args.fit, sample)):
            fits[fit] = fresh("--child", "sampled", "--fit", str(fit), *common)
        head = ["full fit"] + [f"sample {fit:,}" for fit in list(fits)[1:]]
        print(f"   {'':34s}" + "".join(f"{h:>16s}" for h in head))
        full_s = float(fits[args.n][0])
        rows = [
            ("seconds", [f[0] for f in fits.values()]),
            ("time ratio (full / this)", [f"{full_s / float(f[0]):.1f}x" for f in fits.values()]),
            (f"trustworthiness ({args.trust:,} points)", [f[1] for f in fits.values()]),
            ("... of transformed points alone", [f[2] for f in fits.values()]),
            ("peak memory, GiB", [f[3] for f in fits.values()]),
        ]
        for name, values in rows:
            print(f"   {name:34s}" + "".join(f"{v:>16s}" for v in values))
        print(f"   ({load()})")
    if args.part in ("all", "million"):
        print(f"2. {args.million:,} points, two aligned epochs, sample {sample:,} ({load()})")
        million_args = ["--million", str(args.million), "--sample", str(sample)]
        fields = fresh("--child", "million", *million_args, "--trust", str(args.trust))
        total, first, second, drawn, peak, trust = map(float, fields)
        print(
            f"   seconds: {total:.0f} in all; the last epoch {first:.0f}, the earlier {second:.0f}"
        )
        print(f"   peak memory {peak:.2f} GiB ({drawn:.2f} GiB once the two epochs were drawn)")
        print(f"   trustworthiness of the last epoch ({args.trust:,} points): {trust:.4f}")
        print(f"   goal: all of memdash analyze < 1800 s, < 12 GiB; this step {total / 18:.0f}%")
        print(f"   of the time, {peak / 12 * 100:.0f}% of the memory ({load()})")


if __name__ == "__main__":
    main()
