import math

import numpy as np
import pytest
from scipy import stats

from analysis.exposure import (
    exposure_extrapolation,
    exposure_interpolation,
    reference_exposure,
    skewnorm_fit,
)


def test_interpolation_by_hand():
    refs = np.array([4.0, 1.0, 3.0, 2.0])  # R = 4, ceiling log2(4) = 2 bits
    out = exposure_interpolation([0.5, 2.0, 10.0, np.nan], refs)
    # ranks: 1 + #refs <= loss = 1, 3, 5
    np.testing.assert_allclose(out[:3], [2.0, 2 - math.log2(3), 2 - math.log2(5)])
    assert np.isnan(out[3])


def test_references_against_the_others_average_log2_e():
    refs = np.random.default_rng(0).gamma(2.0, size=1000)
    out = reference_exposure(refs)
    r = len(refs)
    # without ties the ranks among the other R-1 are 1..R: mean = log2(R-1) - log2(R!)/R
    exact = math.log2(r - 1) - math.lgamma(r + 1) / math.log(2) / r
    assert out.mean() == pytest.approx(exact)
    assert out.mean() == pytest.approx(math.log2(math.e), abs=0.01)
    # the smallest reference ranks 1 among the others
    assert out[refs.argmin()] == pytest.approx(math.log2(r - 1))


def test_extrapolation_of_normal_references():
    refs = np.random.default_rng(1).normal(5.0, 1.0, size=20_000)
    five_percent = 5.0 + stats.norm.ppf(0.05)
    out = exposure_extrapolation([five_percent, 5.0], refs)
    np.testing.assert_allclose(out, [-math.log2(0.05), 1.0], atol=0.05)


def test_extrapolation_passes_the_ceiling_and_stays_finite():
    refs = np.random.default_rng(2).normal(5.0, 1.0, size=500)
    deep = exposure_extrapolation([-30.0], refs)[0]
    interp = exposure_interpolation([-30.0], refs)[0]
    assert interp == pytest.approx(math.log2(500))  # the ceiling
    assert np.isfinite(deep) and deep > 50


def test_skewnorm_fit_recovers_a_skewed_distribution():
    refs = stats.skewnorm.rvs(4.0, loc=1.0, scale=2.0, size=20_000, random_state=3)
    a, loc, scale = skewnorm_fit(refs)
    assert a == pytest.approx(4.0, rel=0.15)
    assert loc == pytest.approx(1.0, abs=0.05) and scale == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: skewnorm_fit(np.ones(10)), "all equal"),
        (lambda: exposure_extrapolation([1.0], [1.0, 2.0]), "at least 3"),
        (lambda: exposure_interpolation([1.0], []), "at least 1"),
        (lambda: reference_exposure([1.0, np.nan, 2.0]), "NaN"),
    ],
)
def test_bad_references_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_skewnorm_logcdf_in_the_far_tail_matches_the_normal_tail():
    from analysis.exposure import skewnorm_logcdf

    # a = 0 is the normal distribution, whose log CDF scipy computes stably
    x = np.array([-3.0, -40.0, -60.0])
    np.testing.assert_allclose(skewnorm_logcdf(x, 0.0, 0.0, 1.0), stats.norm.logcdf(x), rtol=1e-6)
    # a > 0: finite and decreasing where scipy's own logcdf gives -inf
    far = skewnorm_logcdf(np.array([-30.0, -40.0]), 2.0, 0.0, 1.0)
    assert np.isneginf(stats.skewnorm.logcdf(-30.0, 2.0))
    assert np.isfinite(far).all() and far[1] < far[0]


def test_skewnorm_logcdf_far_tail_follows_the_mills_ratio():
    from analysis.exposure import skewnorm_logcdf

    # for a > 0 and z -> -inf: CDF(z) ~ pdf(z) / (z (1 + a^2)) in magnitude
    a, z = 3.0, -200.0
    expect = stats.skewnorm.logpdf(z, a) - np.log(-z * (1 + a**2))
    assert skewnorm_logcdf(np.array([z]), a, 0.0, 1.0)[0] == pytest.approx(expect, rel=1e-4)
