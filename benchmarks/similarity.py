"""Linear CKA at scale (issue 14): two layers of N = 50,000 examples x D = 512 features,
`memdash.analysis.measures.similarity.cka_matrix` against the matrix products it needs (X^T X,
Y^T Y and Y^T X in float64), side by side in one process, the median of the rounds after
a warm-up. Goal: CKA within 1.5 x the products.

Run: .venv/bin/python benchmarks/similarity.py [--n 50000] [--d 512] [--rounds 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from analytics import timed  # the benchmarks' timer: median after a warm-up

from memdash.analysis.measures.similarity import cka_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # stored embeddings are float32 (or float16): CKA converts them once
    x = rng.normal(size=(args.n, args.d)).astype(np.float32)
    y = (x @ rng.normal(size=(args.d, args.d)).astype(np.float32)).clip(min=0)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)

    def products() -> None:
        x64.T @ x64, y64.T @ y64, y64.T @ x64

    cka_s = timed(lambda: cka_matrix([x], [y]), args.rounds)
    products_s = timed(products, args.rounds)
    print(f"linear CKA, N = {args.n:,}, D = {args.d}: {cka_s:.2f} s")
    print(f"its three float64 products:          {products_s:.2f} s")
    print(f"ratio {cka_s / products_s:.2f} x (goal <= 1.5 x)")


if __name__ == "__main__":
    main()
