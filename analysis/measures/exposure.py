"""Exposure of canaries (Carlini et al. 2019, "The Secret Sharer").

A canary is a random input with a random label, inserted r times into the
training set; reference canaries come from the same distribution and are
never trained on. The canary's loss stands in for its log-perplexity.
Exposure (in bits; higher = more memorized) says how far the canary's loss
has fallen below the references':

* interpolation: rank = 1 + #references with loss <= the canary's, and
  exposure = log2(#references) - log2(rank), at most log2(#references)
  (the ceiling);
* extrapolation: fit a skew-normal to the references' losses, and
  exposure = -log2(CDF(canary loss)), which can pass the ceiling. The CDF is
  exact over its whole range (`memdash.analysis.measures.skewnorm`); a fit that degenerates
  onto the references' loss floor is flagged (`ReferenceFit.floored`), since
  its extrapolation below the floor measures the fit's cliff rather than the
  references, and so is one that degenerates onto a cliff at their largest
  value (`ReferenceFit.capped`), a half-normal below it;
* extrapolation in log-loss (memdash's tail model, not the paper's): the same
  skew-normal fitted to log(loss). A trained network's losses pile up at a
  floor near 0, which the loss-space fit turns into a cliff; their logarithms
  have no floor, and on the sample suite no log-space fit of any epoch sits on
  one while every canary below every reference scores at least the ceiling
  minus 1 bit. Six of the suite's 366 log-space fits are capped instead (a cliff at
  the references' largest log-loss: MNIST-1D epochs 59 and 60, digits epoch 57
  and three epochs of the random-label run). Losses of exactly 0 (below
  float32's smallest number) count as that smallest number, so their exposure
  is a lower bound.

An untrained canary's expected exposure is about log2(e) = 1.44 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memdash.analysis.measures.skewnorm import (
    is_capped,
    is_floored,
    skewnorm_fit,
    skewnorm_logcdf,
)

__all__ = [
    "ReferenceFit",
    "SPACES",
    "exposure_extrapolation",
    "exposure_interpolation",
    "extrapolated_exposure",
    "fit_references",
    "log_loss",
    "reference_exposure",
    "skewnorm_fit",
    "skewnorm_logcdf",
]


def _references(reference_loss: np.ndarray, minimum: int) -> np.ndarray:
    ref = np.asarray(reference_loss, dtype=float)
    if ref.ndim != 1 or len(ref) < minimum:
        raise ValueError(
            f"need at least {minimum} reference losses in a 1-D array, got shape {ref.shape}"
        )
    if not np.isfinite(ref).all():
        raise ValueError("reference losses contain NaN or infinite values")
    return ref


def exposure_interpolation(canary_loss: np.ndarray, reference_loss: np.ndarray) -> np.ndarray:
    """Exposure by rank among the references.

    Parameters
    ----------
    canary_loss : shape (M,), NaN for a missing loss (gives NaN)
    reference_loss : shape (R,), the never-trained references' losses

    Returns
    -------
    float, shape (M,), in [0, log2(R)]; higher = more memorized
    """
    ref = np.sort(_references(reference_loss, 1))
    loss = np.asarray(canary_loss, dtype=float)
    rank = 1 + np.searchsorted(ref, loss, side="right")
    return np.where(np.isnan(loss), np.nan, np.log2(len(ref)) - np.log2(rank))


@dataclass(frozen=True)
class ReferenceFit:
    """The skew-normal fitted to one epoch's reference losses."""

    shape: float  # a; 0 is a normal distribution
    loc: float
    scale: float
    n_references: int
    floored: bool  # a cliff at the references' smallest value (skewnorm.is_floored)
    capped: bool  # a cliff at their largest value (skewnorm.is_capped)


def fit_references(reference_loss: np.ndarray) -> ReferenceFit:
    """Maximum-likelihood skew-normal of the references' losses, with its two flags of a
    degenerate fit (a cliff at the smallest or at the largest reference).

    Parameters
    ----------
    reference_loss : shape (R,), R >= 3, finite, not all equal
    """
    ref = np.asarray(reference_loss, dtype=float)
    a, loc, scale = skewnorm_fit(ref)
    flags = is_floored(ref, a, loc, scale), is_capped(ref, a, loc, scale)
    return ReferenceFit(a, loc, scale, len(ref), *flags)


def extrapolated_exposure(canary_loss: np.ndarray, fit: ReferenceFit) -> np.ndarray:
    """-log2 CDF(canary loss) under a fitted skew-normal: exposure in bits, >= 0.

    Parameters
    ----------
    canary_loss : shape (M,), NaN for a missing loss (gives NaN)
    fit : the references' fit (`fit_references`)

    Returns
    -------
    float, shape (M,); higher = more memorized; finite however far below the
    references the loss lies
    """
    loss = np.asarray(canary_loss, dtype=float)
    return -skewnorm_logcdf(loss, fit.shape, fit.loc, fit.scale) / np.log(2)


SMALLEST_LOSS = float(np.finfo(np.float32).smallest_subnormal)


def log_loss(loss: np.ndarray) -> np.ndarray:
    """log(loss), a loss of 0 counted as float32's smallest positive number (NaN stays NaN).

    Returns
    -------
    float, shape of `loss`
    """
    return np.log(np.maximum(np.asarray(loss, dtype=float), SMALLEST_LOSS))


def _identity(loss: np.ndarray) -> np.ndarray:
    return np.asarray(loss, dtype=float)


# what the skew-normal is fitted to: the losses (the paper's), or their logarithms (memdash's
# tail model for losses that pile up at a floor; see the module docstring)
SPACES = {"loss": _identity, "log_loss": log_loss}


def exposure_extrapolation(
    canary_loss: np.ndarray, reference_loss: np.ndarray, *, space: str = "loss"
) -> np.ndarray:
    """Exposure from a skew-normal fitted to the references: -log2 CDF(canary's value).

    Parameters
    ----------
    canary_loss : shape (M,), NaN for a missing loss (gives NaN)
    reference_loss : shape (R,), R >= 3
    space : ``loss`` (the paper's fit) or ``log_loss`` (the fit to log(loss))

    Returns
    -------
    float, shape (M,), >= 0; higher = more memorized
    """
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; choose one of {', '.join(SPACES)}")
    transform = SPACES[space]
    return extrapolated_exposure(transform(canary_loss), fit_references(transform(reference_loss)))


def reference_exposure(reference_loss: np.ndarray) -> np.ndarray:
    """Each reference's interpolated exposure against the *other* references.

    The baseline of an untrained canary: it averages about log2(e) = 1.44 bits
    (exactly log2(R-1) - log2(R!)/R without ties).

    Returns
    -------
    float, shape (R,)
    """
    ref = _references(reference_loss, 2)
    order = np.sort(ref)
    # references with loss <= own, minus itself
    below = np.searchsorted(order, ref, side="right") - 1
    return np.log2(len(ref) - 1) - np.log2(1 + below)
