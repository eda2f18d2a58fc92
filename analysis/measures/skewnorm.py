"""The skew-normal for extrapolated exposure (Carlini et al. 2019, "The Secret Sharer").

Exposure by extrapolation fits a skew-normal to the reference canaries'
losses and reads -log2 CDF at a canary's loss. The losses of a trained
network pile up at a floor near 0, so the maximum-likelihood fit often
degenerates into a half-normal sitting on that floor (its shape runs to
+infinity: 1e6 and more, location at the smallest loss); fitted to their
logarithms, a few epochs' references degenerate the other way, onto a cliff at
their largest value (shape to -infinity). Two things follow, and this module
handles both:

* the CDF must stay exact where ``Phi(z) - 2 T(z, a)`` cancels (a canary just
  above a floored location) and where it underflows (far below it):
  `skewnorm_logcdf` is exact there to about 1e-12 relative, checked against
  50-digit quadrature for shapes up to 1e9;
* a degenerate fit is a property of the data, not a number to trust blindly:
  `is_floored` (the cliff at the smallest reference) and `is_capped` (at the
  largest) detect it, and the exposure step records both per epoch.

The standard skew-normal with shape a has density 2 phi(z) Phi(a z) and
CDF F(z) = Phi(z) - 2 T(z, a), with Owen's T function.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
# Gauss-Legendre rule, 16 nodes on each piece of [0, 64] (the scaled tail, see _rising_logcdf)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_V_EDGES = np.array([0.0, 0.05, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
_V_LO, _V_HI = _V_EDGES[:-1, None], _V_EDGES[1:, None]
_V = ((_V_HI - _V_LO) / 2 * _NODES + (_V_HI + _V_LO) / 2).ravel()
_V_WEIGHTS = ((_V_HI - _V_LO) / 2 * _WEIGHTS).ravel()
# breakpoints, in units of 1/a, where Phi(a t) rises from 1/2 to 1 (see _near_zero_logcdf)
_T_EDGES = np.array([0.0, 0.25, 1.0, 4.0, 16.0, 64.0])
# Phi(z) - 2 T(z, a) is used where it keeps at least 13 of its 16 digits
_CANCELLATION = 1e-3
_SMALLEST = 1e-300


def _log_density(t: np.ndarray, a: float) -> np.ndarray:
    """log of the standard skew-normal density, log 2 + log phi(t) + log Phi(a t)."""
    return np.log(2.0) - 0.5 * t * t - _LOG_SQRT_2PI + special.log_ndtr(a * t)


def _rising_logcdf(z: np.ndarray, a: float) -> np.ndarray:
    """log F(z) where the log-density g still rises at z (z <= 0 for a > 0; the far tail).

    g is concave, so with s = g'(z) > 0 and t = z - v/s the integrand
    exp(g(t) - g(z)) is at most exp(-v):
    log F(z) = g(z) - log s + log of its integral over v >= 0, a number in
    (0, 1] taken with a fixed Gauss-Legendre rule (exp(-64) is below double
    precision). Nothing here cancels or underflows.
    """
    # s = -z + a phi(a z) / Phi(a z), the ratio through erfcx so that it never overflows
    s = -z + a * np.sqrt(2 / np.pi) / special.erfcx(-a * z / np.sqrt(2))
    g = _log_density(z, a)
    t = z[:, None] - _V[None, :] / s[:, None]
    ratio = np.exp(_log_density(t, a) - g[:, None])
    return g - np.log(s) + np.log(ratio @ _V_WEIGHTS)


def _near_zero_logcdf(z: np.ndarray, a: float) -> np.ndarray:
    """log F(z) for a > 0 and z > 0 where Phi(z) - 2 T(z, a) cancels (z small, a large).

    F(z) = F(0) + the integral of the density from 0 to z: F(0) = arctan(1/a)/pi
    exactly, and the integral (positive) by Gauss-Legendre between breakpoints
    at multiples of 1/a, where Phi(a t) rises, and z.
    """
    edges = np.minimum(_T_EDGES[None, :] / a, z[:, None])
    edges = np.concatenate([edges, z[:, None]], axis=1)
    lo, hi = edges[:, :-1, None], edges[:, 1:, None]
    t = (hi - lo) / 2 * _NODES + (hi + lo) / 2
    part = (np.exp(_log_density(t, a)) * ((hi - lo) / 2 * _WEIGHTS)).sum(axis=(1, 2))
    return np.log(np.arctan(1.0 / a) / np.pi + part)


def standard_logcdf(z: np.ndarray, a: float) -> np.ndarray:
    """log CDF of the standard skew-normal (location 0, scale 1) with shape `a`.

    ``Phi(z) - 2 T(z, a)`` (scipy's Owen's T) where it does not cancel or
    underflow; elsewhere a cancellation-free integral in log space (never a
    fallback constant); above the median, log1p of minus the survival function,
    which is the mirror image's CDF, F(-z; -a). Exact to about 1e-12 relative in the log-CDF for any
    z and |a| up to 1e9 and beyond.

    Parameters
    ----------
    z : shape (M,), standardized points (NaN gives NaN)
    a : the shape; 0 is the normal distribution

    Returns
    -------
    float, shape (M,), <= 0
    """
    z = np.atleast_1d(np.asarray(z, dtype=float))
    if a == 0:
        return special.log_ndtr(z)
    out = np.full(z.shape, np.nan)
    with np.errstate(all="ignore"):
        phi = special.ndtr(z)
        cdf = phi - 2 * special.owens_t(z, a)
    upper = cdf > 0.5  # log F = log1p(-S), the survival S(z; a) = F(-z; -a) (mirror image)
    if upper.any():
        out[upper] = np.log1p(-np.exp(standard_logcdf(-z[upper], -a)))
    direct = ~upper & (cdf > _CANCELLATION * phi) & (cdf > _SMALLEST)
    out[direct] = np.log(cdf[direct])
    rest = ~upper & ~direct & ~np.isnan(z)
    out[rest & np.isneginf(z)] = -np.inf
    rest &= np.isfinite(z)
    rising = rest & ((z <= 0) | (a < 0))
    with np.errstate(under="ignore"):
        out[rising] = _rising_logcdf(z[rising], a)
        near_zero = rest & ~rising
        out[near_zero] = _near_zero_logcdf(z[near_zero], a)
    return out


def skewnorm_logcdf(x: np.ndarray, a: float, loc: float, scale: float) -> np.ndarray:
    """log CDF of the skew-normal with shape `a`, location `loc`, scale `scale` at `x`.

    See `standard_logcdf`; ``scale`` must be positive.

    Returns
    -------
    float, shape of `x`, <= 0
    """
    if not scale > 0:
        raise ValueError(f"the skew-normal's scale must be positive, got {scale}")
    x = np.asarray(x, dtype=float)
    return standard_logcdf(((x - loc) / scale).ravel(), a).reshape(x.shape)


def skewnorm_fit(reference_loss: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood skew-normal (shape a, loc, scale) of the references' losses.

    Parameters
    ----------
    reference_loss : shape (R,), R >= 3, finite and not all equal
    """
    ref = np.asarray(reference_loss, dtype=float)
    if ref.ndim != 1 or len(ref) < 3:
        raise ValueError(f"need at least 3 reference losses in a 1-D array, got shape {ref.shape}")
    if not np.isfinite(ref).all():
        raise ValueError("reference losses contain NaN or infinite values")
    if np.ptp(ref) == 0:
        raise ValueError("reference losses are all equal; a skew-normal cannot be fitted")
    a, loc, scale = stats.skewnorm.fit(ref)
    return float(a), float(loc), float(scale)


FLOOR_MASS = 0.01
FLOOR_SHAPE = 100.0


def is_floored(reference_loss: np.ndarray, a: float, loc: float, scale: float) -> bool:
    """Whether a fitted skew-normal sits on the references' floor (a degenerate fit).

    The smallest of R draws has CDF about 1/R. A fit on a floor puts a cliff at
    the smallest reference value: its shape runs to extremes (``a >= FLOOR_SHAPE``)
    and it gives that value a CDF below ``FLOOR_MASS / R``. (The CDF test alone
    would also flag a healthy fit whose sample holds one low outlier.)
    Extrapolated exposure below such a floor is a property of the cliff, not of
    the references: report it as such. `is_capped` is the mirror image.

    Measured on the sample suite as shipped (exposure_fits.parquet of its seven
    runs with canaries, 61 epochs in two spaces; tests/test_exposure.py checks
    these figures against it): floored fits, all in the loss space, have shapes from 3.9e6 to 1.0e9
    and R * CDF(smallest) below 4.5e-4; capped fits, all in the log-loss space,
    have shapes from -2.2e8 to -9.0e6; unflagged fits have shapes from -143 to
    49, and those in the loss space R * CDF(smallest) above 0.24.
    """
    if a < FLOOR_SHAPE:
        return False
    ref = np.asarray(reference_loss, dtype=float)
    low = skewnorm_logcdf(np.array([ref.min()]), a, loc, scale)[0]
    return bool(low + np.log(len(ref)) < np.log(FLOOR_MASS))


def is_capped(reference_loss: np.ndarray, a: float, loc: float, scale: float) -> bool:
    """Whether a fitted skew-normal sits on a cliff at the references' largest value.

    The mirror image of `is_floored` (a skew-normal of -x has shape -a and
    location -loc): the shape runs to minus infinity (``a <= -FLOOR_SHAPE``)
    and the fit gives the largest reference a survival function
    ``1 - CDF`` below ``FLOOR_MASS / R``. The fit is then a half-normal below
    that value, and extrapolated exposure is that half-normal's left tail, not
    a skew of the references: report it as such.
    """
    ref = np.asarray(reference_loss, dtype=float)
    return is_floored(-ref, -a, -loc, scale)
