"""Seeded corruptions of a training set: label noise, random labels, random inputs, canaries.

References
----------
Arpit et al. 2017, "A Closer Look at Memorization in Deep Networks".
Zhang et al. 2017, "Understanding Deep Learning Requires Rethinking Generalization".
Carlini et al. 2019, "The Secret Sharer" (canaries and reference canaries).

Every corrupted example keeps its true label, so every score can be judged
against the ground truth. Unlike the original localization code, symmetric
noise draws the new label uniformly from *all* C-1 other classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from memdash.analysis.record.dataset import Dataset, example_sources
from memdash.analysis.store.inputs import ExampleSources

# independent random streams derived from the run's seed
_NOISE_STREAM, _CANARY_STREAM = 1, 2


@dataclass(frozen=True)
class Prepared:
    """The examples of a run, ready to train on.

    Attributes
    ----------
    inputs : float32, shape (N, *input_shape); row i is example i
    examples : DataFrame in the run-store layout of examples.parquet
    train_ids : int64, shape (M,); the training examples presented each epoch,
        a canary repeated r times appears r times
    n_classes : number of classes
    sources : where each example's input came from (a dataset of files), or None
    """

    inputs: np.ndarray
    examples: pd.DataFrame
    train_ids: np.ndarray
    n_classes: int
    sources: ExampleSources | None = None


def symmetric_noise(
    labels: np.ndarray, *, rate: float, n_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly round(rate * N) labels, each to a uniform draw from the C-1 other classes.

    Returns
    -------
    noisy : int64, shape (N,), the labels to train with
    flipped : bool, shape (N,), True where the label was changed
    """
    n = len(labels)
    chosen = rng.choice(n, size=round(rate * n), replace=False)
    noisy = labels.astype(np.int64).copy()
    noisy[chosen] = (noisy[chosen] + rng.integers(1, n_classes, size=len(chosen))) % n_classes
    flipped = np.zeros(n, dtype=bool)
    flipped[chosen] = True
    return noisy, flipped


def random_labels(
    labels: np.ndarray, *, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the labels of round(rate * N) examples among themselves (rate 1 = all).

    The class balance is kept. A shuffled label that lands on its own true
    class is not counted as flipped.
    """
    n = len(labels)
    chosen = rng.choice(n, size=round(rate * n), replace=False)
    shuffled = labels.astype(np.int64).copy()
    shuffled[chosen] = shuffled[rng.permutation(chosen)]
    return shuffled, shuffled != labels


def random_inputs(
    x: np.ndarray, *, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replace round(rate * N) inputs by Gaussian noise of the set's mean and std."""
    n = len(x)
    chosen = rng.choice(n, size=round(rate * n), replace=False)
    out = x.copy()
    noise = rng.standard_normal((len(chosen), *x.shape[1:]))
    out[chosen] = (x.mean() + x.std() * noise).astype(x.dtype)
    replaced = np.zeros(n, dtype=bool)
    replaced[chosen] = True
    return out, replaced


def make_canaries(
    n: int, *, like: np.ndarray, n_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n canaries: inputs uniform over the value range of `like`, labels uniform."""
    low, high = float(like.min()), float(like.max())
    x = rng.uniform(low, high, size=(n, *like.shape[1:])).astype(np.float32)
    return x, rng.integers(0, n_classes, size=n).astype(np.int64)


def prepare(
    data: Dataset,
    *,
    corruption: str = "symmetric",
    noise: float = 0.0,
    canaries: int = 0,
    canary_repeats: tuple[int, ...] = (1, 10, 50),
    reference_canaries: int = 500,
    seed: int = 0,
) -> Prepared:
    """Corrupt the training set and lay out every example of the run.

    Example ids: the training examples first, then the trained canaries
    (`canaries` for each repeat count), then the test examples, then the
    reference canaries (split ``reference``: drawn like the canaries, never
    trained on).
    """
    rng = np.random.default_rng([seed, _NOISE_STREAM])
    x_train, y_true = data.x_train, data.y_train
    label, kind = y_true.copy(), np.full(len(y_true), "none", dtype=object)
    if noise > 0:
        if corruption == "symmetric":
            label, hit = symmetric_noise(y_true, rate=noise, n_classes=data.n_classes, rng=rng)
        elif corruption == "random_labels":
            label, hit = random_labels(y_true, rate=noise, rng=rng)
        elif corruption == "random_inputs":
            x_train, hit = random_inputs(x_train, rate=noise, rng=rng)
        else:
            raise ValueError(
                f"unknown corruption {corruption!r}; valid: symmetric, random_labels, random_inputs"
            )
        kind[hit] = corruption
    parts = [
        _block(x_train, label, y_true, "train", kind != "none", kind, 0),
    ]
    train_ids = [np.arange(len(y_true))]
    if canaries:
        crng = np.random.default_rng([seed, _CANARY_STREAM])
        start = len(y_true)
        for repeats in canary_repeats:
            cx, cy = make_canaries(canaries, like=data.x_train, n_classes=data.n_classes, rng=crng)
            parts.append(_block(cx, cy, cy, "train", False, "canary", repeats))
            train_ids.append(np.repeat(np.arange(start, start + canaries), repeats))
            start += canaries
    parts.append(_block(data.x_test, data.y_test, data.y_test, "test", False, "none", 0))
    if canaries:
        rx, ry = make_canaries(
            reference_canaries, like=data.x_train, n_classes=data.n_classes, rng=crng
        )
        parts.append(_block(rx, ry, ry, "reference", False, "canary", 0))
    inputs = np.concatenate([p[0] for p in parts]).astype(np.float32)
    examples = pd.concat([p[1] for p in parts], ignore_index=True)
    examples.insert(0, "example_id", np.arange(len(examples), dtype=np.int64))
    ids = np.concatenate(train_ids).astype(np.int64)
    return Prepared(inputs, examples, ids, data.n_classes, example_sources(data, examples))


def _block(x, label, true_label, split, noisy, kind, repeats) -> tuple[np.ndarray, pd.DataFrame]:
    n = len(label)
    frame = pd.DataFrame(
        {
            "split": np.full(n, split, dtype=object),
            "label": np.asarray(label, dtype=np.int64),
            "true_label": np.asarray(true_label, dtype=np.int64),
            "is_noisy": np.broadcast_to(np.asarray(noisy, dtype=bool), (n,)).copy(),
            "is_canary": np.full(n, kind == "canary", dtype=bool),
            "canary_repeats": np.full(n, repeats, dtype=np.int64),
            "corruption": np.broadcast_to(np.asarray(kind, dtype=object), (n,)).copy(),
        }
    )
    return x, frame
