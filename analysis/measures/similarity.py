"""How alike two networks' representations of the same examples are: linear CKA and SVCCA.

References
----------
Kornblith, Norouzi, Lee and Hinton 2019, "Similarity of Neural Network Representations
Revisited": linear centred kernel alignment. For X (N x p) and Y (N x q), the
representations of the same N examples with their columns centred,

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F),

in [0, 1], higher = more alike; invariant to orthogonal transforms and isotropic scaling
of either side, not to other invertible linear maps. Computed here in feature space
(p x p, q x q and q x p products), never as the N x N Gram matrices of the kernel form,
which it equals exactly.
Raghu, Gilmer, Yosinski and Sohl-Dickstein 2017, "SVCCA: Singular Vector Canonical
Correlation Analysis for Deep Learning Dynamics and Interpretability": reduce each side to
the singular directions that keep 99% of its variance, then average the canonical
correlations between the two subspaces; in [0, 1], higher = more alike. Its CCA step is
invariant to every invertible linear map (so SVCCA is too when all directions are kept);
the reduction drops the low-variance directions that are mostly noise. It is the second
measure because the
question of "Neural Network Memorization Dissection" (do true-label networks find the same
representation and random-label ones different ones?) is about shared subspaces up to any
linear re-mixing of units, which CKA's orthogonal invariance does not cover; SVCCA is also
the measure that line of work (Morcos et al. 2018, Raghu et al. 2017) started from.
"""

from __future__ import annotations

import numpy as np

MEASURES = ("cka", "svcca")


def _as_float64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"a representation must be (N, D) with N >= 2, got {x.shape}")
    return x


def _centred_gram_terms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the column means, X^T X of the centred X) of a float64 X, without a centred copy:
    X_c^T X_c = X^T X - N mu mu^T."""
    mean = x.mean(0)
    return mean, x.T @ x - len(x) * np.outer(mean, mean)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between two representations of the same examples (Kornblith et al. 2019).

    Parameters
    ----------
    x, y : (N, p) and (N, q), row i of each the same example

    Returns
    -------
    float in [0, 1], higher = more alike; NaN when either side is constant.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same examples: {len(x)} and {len(y)} rows")
    return float(cka_matrix([x], [y])[0, 0])


def cka_matrix(xs: list[np.ndarray], ys: list[np.ndarray]) -> np.ndarray:
    """Linear CKA between every representation in `xs` and every one in `ys` (say, every
    layer of one network against every layer of another): (len(xs), len(ys)).

    Each side's centred X^T X is formed once; each pair then needs one q x p product. All in
    float64 (stored float16 or float32 embeddings are converted once).
    """
    xs, ys = [_as_float64(x) for x in xs], [_as_float64(y) for y in ys]
    terms_x = [_centred_gram_terms(x) for x in xs]
    terms_y = [_centred_gram_terms(y) for y in ys]
    out = np.empty((len(xs), len(ys)))
    for i, (x, (mx, gx)) in enumerate(zip(xs, terms_x, strict=True)):
        norm_x = np.linalg.norm(gx)
        for j, (y, (my, gy)) in enumerate(zip(ys, terms_y, strict=True)):
            if len(x) != len(y):
                raise ValueError(f"representations of different examples: {len(x)}, {len(y)}")
            cross = (np.asarray(y).T @ np.asarray(x)).astype(np.float64) - len(x) * np.outer(my, mx)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i, j] = np.sum(cross * cross) / (norm_x * np.linalg.norm(gy))
    return out


def cka_kernel(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA from the N x N Gram matrices (the definition as HSIC of centred linear
    kernels): the reference `linear_cka` is tested against, O(N^2) memory."""
    n = len(x)
    h = np.eye(n) - 1.0 / n
    k = h @ (np.asarray(x, np.float64) @ np.asarray(x, np.float64).T) @ h
    l_ = h @ (np.asarray(y, np.float64) @ np.asarray(y, np.float64).T) @ h
    return float(np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_)))


def svd_reduce(x: np.ndarray, keep: float = 0.99) -> np.ndarray:
    """The centred representation projected on its top singular directions that together
    hold `keep` of its variance: (N, k)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(share, keep) + 1)
    return u[:, :k] * s[:k]


def canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The canonical correlations between two centred representations, largest first:
    the singular values of Q_x^T Q_y for orthonormal bases Q of their column spaces."""
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    return np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)


def svcca(x: np.ndarray, y: np.ndarray, *, keep: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): the mean canonical correlation between the two sides'
    `keep`-variance singular subspaces. In [0, 1], higher = more alike."""
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same examples: {len(x)} and {len(y)} rows")
    return float(canonical_correlations(svd_reduce(x, keep), svd_reduce(y, keep)).mean())
