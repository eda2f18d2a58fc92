"""The skew-normal log-CDF against 20-digit quadrature, and the flags of degenerate fits (a
cliff at the references' smallest value, floored, or at their largest, capped)."""

import itertools
import math

import mpmath as mp
import numpy as np
import pytest
from scipy import stats

from memdash.analysis.measures.skewnorm import (
    is_capped,
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
    assert not is_capped(floored, a, loc, scale)
    # a healthy fit whose sample holds one low outlier (its minimum has CDF 1e-5): not floored
    healthy = stats.skewnorm.rvs(3.0, loc=2.0, scale=4.0, size=500, random_state=1)
    a, loc, scale = skewnorm_fit(healthy)
    assert skewnorm_logcdf(healthy.min(), a, loc, scale) + math.log(500) < math.log(0.01)
    assert not is_floored(healthy, a, loc, scale)
    assert not is_capped(healthy, a, loc, scale)


def test_a_fit_with_a_cliff_at_the_references_largest_value_is_capped():
    """The mirror image of a floored fit: like the log-losses of MNIST-1D's references at
    epoch 60 (a fit of shape -2.2e7, location 4.40, scale 4.64), a sample with a hard upper
    edge makes the maximum-likelihood shape run to minus infinity."""
    edged = 4.4 - 4.6 * np.abs(np.random.default_rng(1).normal(size=500))
    a, loc, scale = skewnorm_fit(edged)
    assert a < -1e3 and is_capped(edged, a, loc, scale)
    assert not is_floored(edged, a, loc, scale)
    # a pile of references at the largest value, the floored sample's mirror image
    piled = -np.concatenate([np.zeros(60), np.random.default_rng(0).gamma(2.0, 8.0, size=440)])
    a, loc, scale = skewnorm_fit(piled)
    assert a < -1e3 and is_capped(piled, a, loc, scale)
    # a healthy negatively skewed fit is neither
    healthy = stats.skewnorm.rvs(-3.0, loc=2.0, scale=4.0, size=500, random_state=1)
    a, loc, scale = skewnorm_fit(healthy)
    assert -10 < a < 0 and not is_capped(healthy, a, loc, scale)
    assert not is_floored(healthy, a, loc, scale)


def test_the_capped_flag_by_hand():
    """Shape -1e8, location 0, scale 1: above z = 0 the density is below 2 phi(z) Phi(-1e8 z),
    so the survival function at 0 is arctan(1e-8) / pi = 3.2e-9 (R * SF = 1.6e-6 for R = 500)
    and at -1 it is 1 - 2 Phi(-1) = 0.683 (R * SF = 341)."""
    below = np.linspace(-3.0, 0.0, 500)  # R = 500, the largest at the location
    assert 1 - math.exp(standard_logcdf(np.array([0.0]), -1e8)[0]) == pytest.approx(
        math.atan(1e-8) / math.pi, rel=1e-6
    )
    assert is_capped(below, -1e8, 0.0, 1.0)
    # the same shape with the largest reference one scale below the location: no cliff there
    assert not is_capped(below - 1.0, -1e8, 0.0, 1.0)
    # a moderate shape is not capped even where its survival at the largest is tiny
    # (R * SF(0.1) < 1e-4 for shape -50: a high outlier in a healthy fit)
    upper = skewnorm_logcdf(np.array([-0.1]), 50.0, 0.0, 1.0)[0]  # SF(0.1; -50) = F(-0.1; 50)
    assert upper + math.log(500) < math.log(1e-4)
    assert not is_capped(below + 0.1, -50.0, 0.0, 1.0)
    # the mirror image of a floored fit is capped, and the reverse
    rng = np.random.default_rng(0)
    floored = np.concatenate([np.zeros(60), rng.gamma(2.0, 8.0, size=440)])
    a, loc, scale = skewnorm_fit(floored)
    assert is_capped(-floored, -a, -loc, scale) and not is_floored(-floored, -a, -loc, scale)
