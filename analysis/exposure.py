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
  exposure = -log2(CDF(canary loss)), which can pass the ceiling.

An untrained canary's expected exposure is about log2(e) = 1.44 bits.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import integrate, stats


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


def skewnorm_fit(reference_loss: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood skew-normal (shape a, loc, scale) of the references' losses."""
    ref = _references(reference_loss, 3)
    if np.ptp(ref) == 0:
        raise ValueError("reference losses are all equal; a skew-normal cannot be fitted")
    a, loc, scale = stats.skewnorm.fit(ref)
    return float(a), float(loc), float(scale)


def exposure_extrapolation(canary_loss: np.ndarray, reference_loss: np.ndarray) -> np.ndarray:
    """Exposure from a skew-normal fitted to the references: -log2 CDF(canary loss).

    Computed through the log-CDF, so a loss far below every reference still
    gives a finite number of bits.

    Parameters
    ----------
    canary_loss : shape (M,), NaN for a missing loss (gives NaN)
    reference_loss : shape (R,), R >= 3

    Returns
    -------
    float, shape (M,), >= 0; higher = more memorized
    """
    a, loc, scale = skewnorm_fit(reference_loss)
    loss = np.asarray(canary_loss, dtype=float)
    return -skewnorm_logcdf(loss, a, loc, scale) / np.log(2)


def skewnorm_logcdf(x: np.ndarray, a: float, loc: float, scale: float) -> np.ndarray:
    """log CDF of a skew-normal, finite far into the left tail.

    scipy's ``skewnorm.logcdf`` is the log of the CDF, which underflows to
    -inf below about 1e-308; there the tail integral is taken relative to the
    density at x and in units of its decay length 1/s (s = d log pdf / dx):
    log CDF(x) = log pdf(x) - log s + log of the integral over v >= 0 of
    pdf(x - v/s) / pdf(x), an integrand that falls off like exp(-v) (its
    integral tends to 1, the value used where it is too steep to integrate).
    """
    x = np.asarray(x, dtype=float)
    out = np.asarray(stats.skewnorm.logcdf(x, a, loc, scale), dtype=float)
    for i in zip(*np.nonzero(np.isneginf(out)), strict=True):
        at = float(x[i])
        z = (at - loc) / scale
        slope = (-z + a * np.exp(stats.norm.logpdf(a * z) - stats.norm.logcdf(a * z))) / scale
        slope = max(slope, 1 / scale)
        log_at = stats.skewnorm.logpdf(at, a, loc, scale)

        def ratio(v: float, at: float = at, slope: float = slope, log_at: float = log_at) -> float:
            return np.exp(stats.skewnorm.logpdf(at - v / slope, a, loc, scale) - log_at)

        with np.errstate(over="ignore", under="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)  # checked below
            tail, _ = integrate.quad(ratio, 0, np.inf)
        if not (np.isfinite(tail) and tail > 0):
            tail = 1.0  # too steep to integrate: the limit, log CDF ~ log pdf - log s
        out[i] = log_at - np.log(slope) + np.log(tail)
    return out


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
