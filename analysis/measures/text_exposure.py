"""Exposure of a secret among every candidate of its format (Carlini et al. 2019, "The Secret
Sharer", in its own setting: a language model and a randomness space R of secrets).

Px(r) is the log-perplexity (bits) of candidate r after the format's prefix; lower = more
likely. rank(r) = 1 + #{r' in R : Px(r') < Px(r)} and exposure = log2|R| - log2 rank, from 0
(the least likely candidate) to log2|R| (the most likely one); higher = more memorized. A
secret the model never saw has a uniformly random rank, so its expected exposure is about
log2(e) = 1.44 bits.
"""

from __future__ import annotations

import numpy as np


def rank_exposure(px_all: np.ndarray, px_canary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank and exposure of canaries among all candidates.

    Parameters
    ----------
    px_all : shape (R,): Px in bits of every candidate of the randomness space
    px_canary : shape (k,): Px of the canaries (usually among `px_all`)

    Returns
    -------
    rank : int64, shape (k,): 1 + #{r : px_all[r] < px_canary} (ties share the best rank)
    exposure : float64, shape (k,): log2(R) - log2(rank), in bits; 0 .. log2(R), higher =
        more memorized

    Examples
    --------
    >>> rank_exposure(np.array([3.0, 1.0, 2.0, 4.0]), np.array([1.0, 3.0]))
    (array([1, 3]), array([2.       , 0.4150375]))
    """
    px_all = np.asarray(px_all, dtype=np.float64)
    px_canary = np.asarray(px_canary, dtype=np.float64)
    if px_all.ndim != 1 or len(px_all) == 0:
        raise ValueError(f"px_all must be a non-empty 1-D array, got shape {px_all.shape}")
    if not (np.isfinite(px_all).all() and np.isfinite(px_canary).all()):
        raise ValueError("log-perplexities must be finite (NaN or inf found)")
    rank = np.searchsorted(np.sort(px_all), px_canary, side="left").astype(np.int64) + 1
    return rank, exposure_of_rank(rank, len(px_all))


def exposure_of_rank(rank: np.ndarray, space_size: int) -> np.ndarray:
    """Exposure in bits of secrets of the given ranks (1 = the most likely) among
    `space_size` candidates: log2|R| - log2 rank, float64 of the shape of `rank`."""
    return np.log2(space_size) - np.log2(np.asarray(rank, dtype=np.float64))
