"""Approximate k-NN (FAISS IndexIVFFlat) against exact, at 200,000 examples: recall, Cohen et
al.'s agreement metrics, time, and the size where `--knn auto` switches to IVF.

The embeddings are synthetic, shaped as a layer's embeddings of a 10-class run: 200,000
examples (a sixth held out, as benchmarks/scale.py), 128-D, 20% of the training labels flipped.
Each class is a Gaussian of low intrinsic dimension (a 16-D latent with a decaying spectrum
mapped into 128-D, plus isotropic noise 0.1), as a trained network's late-layer
representations are (Ansuini et al. 2019 measure intrinsic dimensions of 10-40); a flipped
example keeps its true class's embedding. The network's predictions: the given label for 98%
of clean training examples (else another class), for 60% of flipped ones (else the true
class), the true class for 85% of test examples (else another class). `--isotropic` adds
the worst case, each class an isotropic 128-D Gaussian (no low-dimensional structure), for
its recall only.

Printed, each beside its goal, measured in one process side by side:
- recall@30 of IVF (the defaults: lists round(2 sqrt(n_train)), 16 probes) against exact on a
  seeded sample of 2,000 queries, leave-one-out as the step (goal >= 0.95), and at other
  probe counts (the choice of the default);
- P_SAME, MA and MD per split and subset from IVF and from exact (goal |diff| <= 0.005),
  and the knn step's own estimate of the recall (500 seeded training examples);
- the seconds of the exact and the IVF `knn_predict` (k-means, filling the lists, the search)
  and their ratio;
- the crossover: exact and IVF at growing training-set sizes (seeded subsamples of the same
  embeddings), the first size where IVF is faster, for l1, l2 and cosine
  (`ivf.AUTO_EXACT_BELOW`).

Run: .venv/bin/python benchmarks/knn_ivf.py [--n 200000] [--skip-crossover]
     [--isotropic]  (about 55 minutes on this project's shared 2-core machine at a load of
     6-9: the exact all-against-all search at 200,000 is 42 of them)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from memdash.analysis.measures.ivf import (
    AUTO_EXACT_BELOW,
    DEFAULT_PROBES,
    LISTS_PER_ROOT,
    MIN_POINTS_PER_LIST,
    default_lists,
    recall_at_k,
)
from memdash.analysis.measures.knn_recall import sample_recall
from memdash.analysis.measures.neighbors import FaissKNN, agreement, knn_predict

CLASSES, DIM, LATENT, FLIP, K, SEED = 10, 128, 16, 0.2, 30, 0


def embeddings(n: int, *, isotropic: bool = False, seed: int = SEED) -> dict[str, np.ndarray]:
    """A synthetic run's layer: X (n, 128) float32, split, labels, true labels, the network's
    predictions (see the module docstring)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, CLASSES, n)
    means = rng.normal(0, 1.0, (CLASSES, DIM)).astype(np.float32)
    if isotropic:
        X = means[true] + rng.normal(0, 0.6, (n, DIM)).astype(np.float32)
    else:
        scales = np.geomspace(1.0, 0.1, LATENT).astype(np.float32)  # a decaying spectrum
        bases = rng.normal(0, 1 / np.sqrt(LATENT), (CLASSES, LATENT, DIM)).astype(np.float32)
        X = np.empty((n, DIM), np.float32)
        for c in range(CLASSES):  # 10 matrix products, one per class
            rows = np.flatnonzero(true == c)
            z = rng.normal(size=(len(rows), LATENT)).astype(np.float32) * scales
            X[rows] = means[c] + z @ (bases[c] * 1.5)
        X += rng.normal(0, 0.1, (n, DIM)).astype(np.float32)
    train = rng.random(n) >= 1 / 6
    flipped = train & (rng.random(n) < FLIP)
    other = (true + rng.integers(1, CLASSES, n)) % CLASSES  # uniformly one of the others
    labels = np.where(flipped, other, true)
    keep = rng.random(n)
    dnn = np.where(flipped, np.where(keep < 0.6, labels, true), labels)
    dnn = np.where(train & ~flipped & (keep >= 0.98), other, dnn)
    dnn = np.where(~train, np.where(keep < 0.85, true, other), dnn)
    return {"X": X, "train": train, "label": labels, "true": true, "flipped": flipped, "dnn": dnn}


def sample_neighbours(knn: FaissKNN, X: np.ndarray, queries: np.ndarray, train_row: np.ndarray):
    """Each query's k nearest training rows, itself left out (the step's leave-one-out):
    k+1 searched, the query's own row dropped (else the farthest)."""
    _, ind = knn.kneighbors(X[queries], K + 1)
    own = ind == train_row[queries][:, None]
    own[~own.any(axis=1), -1] = True
    return ind[~own].reshape(len(queries), K)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_recall(
    data: dict, queries: np.ndarray, *, rules: tuple[int, ...], probes: tuple[int, ...], label: str
) -> None:
    """Recall@30 on the queries for lists = rule * sqrt(n_train) and each probe count, with the
    fit's seconds and the search's, and the whole step's estimate (fit + every example's
    search at the queries' rate) beside exact's."""
    X, train = data["X"], data["train"]
    train_ids = np.flatnonzero(train)
    n = len(train_ids)
    train_row = np.full(len(X), -1)
    train_row[train_ids] = np.arange(n)
    exact = FaissKNN(K, metric="l1").fit(X[train_ids])
    truth, t_exact = timed(lambda: sample_neighbours(exact, X, queries, train_row))
    scale = len(X) / len(queries)
    print(
        f"recall@{K}, {label}: {len(queries):,} seeded queries, {n:,} training points; exact "
        f"search of the queries {t_exact:.2f} s (the step's estimate {t_exact * scale:.0f} s)"
    )
    for rule in rules:
        lists = max(1, min(round(rule * np.sqrt(n)), n // MIN_POINTS_PER_LIST))
        ivf, t_fit = timed(
            lambda lists=lists: FaissKNN(
                K, metric="l1", method="ivf", n_lists=lists, n_probes=lists
            ).fit(X[train_ids])
        )
        print(f"  {rule} sqrt(n) = {lists} lists: k-means and filling the lists {t_fit:.1f} s")
        for p in (p for p in probes if p <= lists):
            ivf.index_.nprobe = ivf.n_probes_ = p
            found, t = timed(lambda ivf=ivf: sample_neighbours(ivf, X, queries, train_row))
            default = (rule, p) == (LISTS_PER_ROOT, DEFAULT_PROBES)
            print(
                f"  {p:>6} probes: recall {recall_at_k(found, truth):.4f}"
                f"{'  (goal >= 0.95: the defaults)' if default else ''}; search {t:.2f} s "
                f"({t_exact / t:.1f} x faster than exact), the step's estimate "
                f"{t_fit + t * scale:.0f} s"
            )


def bench_agreement(data: dict) -> None:
    X, train, labels = data["X"], data["train"], data["label"]
    args = (X, train, labels, CLASSES)
    (ivf_pred, ivf_ids, _), t_ivf = timed(lambda: knn_predict(*args, method="ivf"))
    (exact_pred, exact_ids, _), t_exact = timed(lambda: knn_predict(*args, method="exact"))
    n_train = int(train.sum())
    print(
        f"knn_predict (l1, k = {K}, leave-one-out) over {len(X):,} examples, {n_train:,} "
        f"training: exact {t_exact:.1f} s, IVF ({default_lists(n_train)} lists, "
        f"{DEFAULT_PROBES} probes) {t_ivf:.1f} s: {t_exact / t_ivf:.1f} x faster"
    )
    rng = np.random.default_rng(SEED + 1)
    sample = np.sort(rng.choice(len(X), 2000, replace=False))
    print(
        f"  recall@{K} of these runs on 2,000 seeded queries: "
        f"{recall_at_k(ivf_ids[sample], exact_ids[sample]):.4f} (goal >= 0.95); over every "
        f"example {recall_at_k(ivf_ids, exact_ids):.4f}; predictions equal for "
        f"{np.mean(ivf_pred == exact_pred):.4%}"
    )
    estimate, t_recall = timed(lambda: sample_recall(X, train, ivf_ids))
    print(
        f"  the knn step's own recall estimate (500 seeded training examples, "
        f"`knn_recall.sample_recall`, {t_recall:.1f} s): {estimate:.4f}"
    )
    worst = 0.0
    subsets = {"all": np.ones(len(X), bool), "clean": ~data["flipped"], "flipped": data["flipped"]}
    print("  split  subset        n  metric     exact      IVF     |diff|  (goal <= 0.005)")
    for split, in_split in (("train", train), ("test", ~train)):
        for subset, in_subset in subsets.items():
            sel = in_split & in_subset
            if not sel.any():
                continue
            a = agreement(exact_pred[sel], data["dnn"][sel], labels[sel])
            b = agreement(ivf_pred[sel], data["dnn"][sel], labels[sel])
            for metric in ("p_same", "ma", "md"):
                diff = abs(a[metric] - b[metric])
                worst = max(worst, diff)
                print(
                    f"  {split:<6} {subset:<8} {sel.sum():>7,}  {metric:<7} {a[metric]:8.4f} "
                    f"{b[metric]:8.4f}  {diff:8.4f}"
                )
    print(f"  largest |diff| of P_SAME, MA, MD: {worst:.4f} (goal <= 0.005)")


def bench_crossover(data: dict, sizes: tuple[int, ...], metric: str) -> None:
    """Exact and IVF `knn_predict` at growing sizes, each timed twice in alternation (the
    faster of the two kept: the machine is shared), and the first size where IVF wins."""
    X = data["X"]
    rng = np.random.default_rng(SEED + 2)
    print(
        f"crossover ({metric}): knn_predict of a training set alone, leave-one-out, exact "
        f"and IVF (default lists, {DEFAULT_PROBES} probes), the faster of two runs each; "
        f"auto switches at {AUTO_EXACT_BELOW[metric]:,}"
    )
    first = None
    for n in sizes:
        rows = np.sort(rng.choice(len(X), n, replace=False))
        args = (X[rows], np.ones(n, bool), data["label"][rows], CLASSES)
        times: dict[str, list[float]] = {"exact": [], "ivf": []}
        ids: dict[str, np.ndarray] = {}
        for _ in range(2):
            for method in times:
                out, t = timed(
                    lambda args=args, method=method: knn_predict(
                        *args, metric=metric, method=method
                    )
                )
                times[method].append(t)
                ids[method] = out[1]
        t_exact, t_ivf = min(times["exact"]), min(times["ivf"])
        if first is None and t_ivf < t_exact:
            first = n
        print(
            f"  {n:>7,} points: exact {t_exact:6.2f} s, IVF {t_ivf:6.2f} s "
            f"({t_exact / t_ivf:5.2f} x), recall@{K} {recall_at_k(ids['ivf'], ids['exact']):.4f}"
        )
    print(f"  IVF is first faster at {first:,} points" if first else "  IVF never faster here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="examples (a sixth held out)")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--probes", default="8,12,16,32,64", help="probe counts for recall")
    parser.add_argument("--rules", default="2,4", help="lists = RULE * sqrt(n) for recall")
    parser.add_argument("--sizes", default="2500,5000,7500,10000,15000,20000,30000")
    parser.add_argument("--skip-crossover", action="store_true")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--isotropic", action="store_true", help="also the isotropic recall")
    args = parser.parse_args()
    import faiss

    print(f"FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    probes = tuple(int(p) for p in args.probes.split(","))
    rules = tuple(int(r) for r in args.rules.split(","))
    data, t_gen = timed(lambda: embeddings(args.n))
    print(f"{args.n:,} synthetic embeddings, {DIM}-D, in {t_gen:.1f} s")
    queries = np.sort(np.random.default_rng(SEED).choice(args.n, args.queries, replace=False))
    bench_recall(data, queries, rules=rules, probes=probes, label="low-dimensional classes")
    if args.isotropic:
        iso = embeddings(args.n, isotropic=True)
        bench_recall(
            iso, queries, rules=rules, probes=probes, label="isotropic classes (worst case)"
        )
        del iso
    if not args.skip_agreement:
        bench_agreement(data)
    if not args.skip_crossover:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        for metric in ("l1", "l2", "cosine"):
            bench_crossover(data, sizes, metric)


if __name__ == "__main__":
    main()
