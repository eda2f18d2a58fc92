"""The skew-normal log-CDF against 20-digit quadrature, and the floored-fit flag."""

import itertools
import math

import mpmath as mp
import numpy as np
import pytest
from scipy import stats

from memdash.analysis.measures.skewnorm import (
    is_floored,
    skewnorm_fit,
    skewnorm_logcdf,
    standard_logcdf,
)

SHAPES = [0.0, 1e-3, 0.5, 3.0, 100.0, 1e4, 1e7, 1e9, -1.0, -10.0, -1e9]


def reference_logcdf(z: float, a: float) -> float:
    """log F(z) by the definition, the integral over u >= 0 of 2 phi(z - u) Phi(a (z - u)),
    with mpmath's tanh-sinh quadrature between decade breakpoints (independent of the
    implementation's substitution and of Owen's T)."""
    with mp.workdps(20):
        z, a = mp.mpf(z), mp.mpf(a)

        def density(u):
            return 2 * mp.npdf(z - u) * mp.ncdf(a * (z - u))

        cuts = [mp.mpf(0)] + [mp.mpf(10) ** k for k in range(-30, 4)]
        if z > 0:  # the density's cliff at t = 0 sits at u = z
            cuts += [z] + [z + s * mp.mpf(10) ** k for k in range(-30, 1) for s in (-1, 1)]
        cuts = sorted({c for c in cuts if c >= 0}) + [mp.inf]
        total = mp.fsum(mp.quad(density, [lo, hi]) for lo, hi in itertools.pairwise(cuts))
        return float(mp.log(total))


def grid(a: float) -> list[float]:
    """From the far left tail (log CDF down to -1e21) through the mode and past it."""
    zs = {-60.0, -10.0, -1.0, 0.0, 0.3, 2.0}
    if a != 0:
        zs |= {s * k / abs(a) for k in (0.1, 1, 10, 100) for s in (-1, 1)} | {1e-12, 1e-6}
    return sorted(zs)


@pytest.mark.slow
@pytest.mark.parametrize("a", SHAPES)
def test_log_cdf_matches_high_precision_quadrature(a):
    zs = grid(a)
    ours = standard_logcdf(np.array(zs), a)
    for z, got in zip(zs, ours, strict=True):
        want = reference_logcdf(z, a)
        relative = abs(got - want) / abs(want) if want else abs(got)
        bits = abs(got - want) / math.log(2)
        assert relative < 1e-6 or bits < 0.01, (a, z, got, want)


def test_the_issue_reproduction_gives_the_true_bits():
    """Shape 1e8 at 1e-5, 1e-7 and 0 (loc 0, scale 10): 20.26, 26.79, 28.23 bits (50-digit
    mpmath); the old quadrature fallback gave 0.3257 for the first."""
    bits = -skewnorm_logcdf(np.array([1e-5, 1e-7, 0.0]), 1e8, 0.0, 10.0) / math.log(2)
    np.testing.assert_allclose(bits, [20.26, 26.79, 28.23], atol=0.005)


def test_log_cdf_agrees_with_scipy_where_scipy_is_exact():
    z = np.linspace(-3, 3, 13)
    for a in (-4.0, 0.0, 0.7, 4.0):
        np.testing.assert_allclose(standard_logcdf(z, a), stats.skewnorm.logcdf(z, a), rtol=1e-7)


def test_log_cdf_edges_and_shapes():
    out = standard_logcdf(np.array([np.nan, -np.inf, np.inf]), 5.0)
    assert np.isnan(out[0]) and out[1] == -np.inf and out[2] == 0.0
    assert skewnorm_logcdf(np.zeros((2, 3)), 2.0, 0.0, 1.0).shape == (2, 3)
    # F(0) = arctan(1/a) / pi for a > 0
    assert standard_logcdf(np.array([0.0]), 1e6)[0] == pytest.approx(
        math.log(math.atan(1e-6) / math.pi), rel=1e-12
    )
    with pytest.raises(ValueError, match="scale must be positive"):
        skewnorm_logcdf(np.zeros(1), 1.0, 0.0, 0.0)


def test_a_fit_on_a_loss_floor_is_flagged_and_a_healthy_one_is_not():
    rng = np.random.default_rng(0)
    # like the sample runs' late epochs: many references at exactly 0 loss, the rest spread out
    floored = np.concatenate([np.zeros(60), rng.gamma(2.0, 8.0, size=440)])
    a, loc, scale = skewnorm_fit(floored)
    assert a > 1e3 and is_floored(floored, a, loc, scale)
    # a healthy fit whose sample holds one low outlier (its minimum has CDF 1e-5): not floored
    healthy = stats.skewnorm.rvs(3.0, loc=2.0, scale=4.0, size=500, random_state=1)
    a, loc, scale = skewnorm_fit(healthy)
    assert skewnorm_logcdf(healthy.min(), a, loc, scale) + math.log(500) < math.log(0.01)
    assert not is_floored(healthy, a, loc, scale)
