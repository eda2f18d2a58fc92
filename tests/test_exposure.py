import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from memdash.analysis.measures.exposure import (
    SPACES,
    exposure_extrapolation,
    exposure_interpolation,
    reference_exposure,
    skewnorm_fit,
)
from memdash.analysis.measures.skewnorm import is_capped, is_floored, skewnorm_logcdf
from memdash.analysis.steps.exposure import EXPOSURE_FIT_COLUMNS, compute_exposure
from memdash.analysis.store import Run


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


def test_the_log_loss_space_is_the_same_fit_on_logarithms_with_zero_at_the_float32_floor():
    refs = np.random.default_rng(4).gamma(2.0, 3.0, size=400)
    canaries = np.array([1e-12, 0.0, 2.0])
    out = exposure_extrapolation(canaries, refs, space="log_loss")
    floor = np.finfo(np.float32).smallest_subnormal
    expect = exposure_extrapolation(np.log([1e-12, floor, 2.0]), np.log(refs))
    np.testing.assert_allclose(out, expect)
    assert out[1] > out[0] > out[2]  # a loss of 0 scores as the smallest float32 loss


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
        (
            lambda: exposure_extrapolation([1.0], [1.0, 2.0, 3.0], space="logit"),
            "choose one of loss, log_loss",
        ),
    ],
)
def test_bad_references_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_skewnorm_logcdf_in_the_far_tail_matches_the_normal_tail():
    from memdash.analysis.measures.exposure import skewnorm_logcdf

    # a = 0 is the normal distribution, whose log CDF scipy computes stably
    x = np.array([-3.0, -40.0, -60.0])
    np.testing.assert_allclose(skewnorm_logcdf(x, 0.0, 0.0, 1.0), stats.norm.logcdf(x), rtol=1e-6)
    # a > 0: finite and decreasing where scipy's own logcdf gives -inf
    far = skewnorm_logcdf(np.array([-30.0, -40.0]), 2.0, 0.0, 1.0)
    assert np.isneginf(stats.skewnorm.logcdf(-30.0, 2.0))
    assert np.isfinite(far).all() and far[1] < far[0]


def test_skewnorm_logcdf_far_tail_follows_the_mills_ratio():
    from memdash.analysis.measures.exposure import skewnorm_logcdf

    # for a > 0 and z -> -inf: CDF(z) ~ pdf(z) / (z (1 + a^2)) in magnitude
    a, z = 3.0, -200.0
    expect = stats.skewnorm.logpdf(z, a) - np.log(-z * (1 + a**2))
    assert skewnorm_logcdf(np.array([z]), a, 0.0, 1.0)[0] == pytest.approx(expect, rel=1e-4)


# --- on the shipped sample suite (regenerated with exact losses) ---------------------------

SAMPLES = Path(__file__).resolve().parents[1] / "sample_runs"
DIGITS = [
    "digits_mlp_noise20",
    "digits_mlp_noise20_tied",
    "digits_mlp_noise20_dropout",
    "digits_mlp_clean",
    "digits_mlp_random_labels",
]
MNIST1D = "mnist1d_cnn_noise10_canaries"
OLD_FALLBACK_BITS = 0.32574806  # what the quadrature fallback wrote into hundreds of rows


def suite_exposure(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    run = Run.open(SAMPLES / name)
    return run.read_derived("exposure.parquet"), run.read_derived("exposure_fits.parquet")


@pytest.mark.parametrize("name", DIGITS)
def test_suite_log_loss_extrapolation_rises_with_repetitions_at_the_last_epoch(name):
    table, _ = suite_exposure(name)
    last = table[(table["epoch"] == table["epoch"].max()) & (table["kind"] == "canary")]
    means = last.groupby("repeats")["exposure_extrapolation_log"].mean()
    assert list(means.index) == [1, 10, 50]
    assert means[1] < means[10] < means[50]


def test_suite_mnist1d_canaries_are_saturated_at_the_last_epoch_but_ordered_after_one():
    """After 60 epochs every MNIST-1D canary is memorized to a loss near 1e-10 whatever its
    repetitions (no monotone score of the loss can rise there: interpolation does not
    either); after one epoch exposure rises with repetitions, as the paper finds."""
    table, _ = suite_exposure(MNIST1D)
    canaries = table[table["kind"] == "canary"]
    last = canaries[canaries["epoch"] == canaries["epoch"].max()]
    assert (last.groupby("repeats")["loss"].median() < 1e-7).all()
    first = canaries[canaries["epoch"] == 1].groupby("repeats")["exposure_interpolation"].mean()
    assert first[1] < first[10] < first[50]


@pytest.mark.parametrize("name", [*DIGITS, MNIST1D])
def test_suite_has_no_fallback_rows_and_records_every_fit(name):
    table, fits = suite_exposure(name)
    # the fallback fired on losses above a floored fit's cliff (a healthy epoch's reference
    # of the dropout run sits at 0.325748 bits by coincidence)
    floored = table[table["fit_floored"]]
    assert not np.isclose(floored["exposure_extrapolation"], OLD_FALLBACK_BITS, atol=1e-7).any()
    epochs = sorted(table["epoch"].unique())
    for space in ("loss", "log_loss"):
        assert sorted(fits[fits["space"] == space]["epoch"]) == epochs
    # the log-loss fits never sit on a floor
    assert not fits[fits["space"] == "log_loss"]["floored"].any()


def test_suite_floored_loss_fits_are_flagged_where_the_references_hit_zero():
    """digits_mlp_noise20 (trained again for the proxies): 35 of 61 epochs' loss-space fits
    are floored (shape >= 1e6); the rows of those epochs carry the flag."""
    table, fits = suite_exposure("digits_mlp_noise20")
    loss_fits = fits[fits["space"] == "loss"]
    assert int(loss_fits["floored"].sum()) == 35
    assert (loss_fits[loss_fits["floored"]]["shape"] > 1e6).all()
    flagged = table.groupby("epoch")["fit_floored"].first()
    assert flagged[loss_fits[loss_fits["floored"]]["epoch"]].all()


@pytest.mark.parametrize("name", [*DIGITS, MNIST1D])
def test_suite_canaries_below_every_reference_pass_the_ceiling_minus_one_bit(name):
    table, _ = suite_exposure(name)
    lowest = table[table["kind"] == "reference"].groupby("epoch")["loss"].min()
    canaries = table[table["kind"] == "canary"].join(lowest.rename("lowest"), on="epoch")
    below = canaries[canaries["loss"] < canaries["lowest"]]
    assert len(below) > 0
    assert (below["exposure_extrapolation_log"] >= below["ceiling"] - 1).all()


class _StubRun:
    """What the exposure step reads of a run: the examples and the eval losses per epoch."""

    def __init__(self, losses: np.ndarray, canaries: int) -> None:
        n = losses.shape[1]
        self.losses = losses
        canary = np.arange(n) < canaries
        self.table = pd.DataFrame(
            {
                "is_canary": canary,
                "split": np.where(canary, "train", "reference"),
                "canary_repeats": np.where(canary, 10, 0),
            }
        )

    def examples(self) -> pd.DataFrame:
        return self.table

    def trace_grids(self, source, columns, *, first_epoch=1):
        assert source == "eval" and tuple(columns) == ("loss",) and first_epoch == 0
        return np.arange(len(self.losses)), {"loss": self.losses}


def test_the_step_records_both_flags_per_epoch_and_space():
    """Epoch 0: references gamma-distributed (a healthy fit in both spaces); epoch 1: their
    log-losses have a hard upper edge at 4.4 (a half-normal below it, like MNIST-1D's at epoch
    60): the log-loss fit is capped. Every row's flags are the measure's on that epoch's
    references."""
    refs = np.stack(
        [
            np.random.default_rng(0).gamma(2.0, 3.0, size=200),
            np.exp(4.4 - 4.6 * np.abs(np.random.default_rng(1).normal(size=200))),
        ]
    )
    losses = np.concatenate([np.full((2, 3), 1e-3), refs], axis=1)
    fits = compute_exposure(_StubRun(losses, canaries=3))["exposure_fits.parquet"]
    assert tuple(fits.columns) == EXPOSURE_FIT_COLUMNS
    assert fits["capped"].dtype == bool and fits["floored"].dtype == bool
    by = fits.set_index(["epoch", "space"])
    assert not by.loc[0, ["floored", "capped"]].to_numpy().any()
    assert by.loc[(1, "log_loss"), "capped"] and not by.loc[(1, "log_loss"), "floored"]
    assert by.loc[(1, "log_loss"), "shape"] < -1e3
    for (epoch, space), fit in by.iterrows():
        x = SPACES[space](refs[epoch])
        params = (fit["shape"], fit["loc"], fit["scale"])
        assert fit["floored"] == is_floored(x, *params)
        assert fit["capped"] == is_capped(x, *params)


def _suite_fits() -> pd.DataFrame:
    """Every shipped fit of the sample suite's classifiers with its flags recomputed from the
    stored parameters and that epoch's references (the shipped tables may predate `capped`);
    the language model's fits are to sampled secrets' log-perplexities (tests/test_text_run)."""
    rows = []
    for path in sorted(SAMPLES.glob("*/derived/exposure_fits.parquet")):
        run = Run.open(path.parents[1])
        if run.is_text:
            continue
        table, fits = suite_exposure(run.path.name)
        refs = table[table["kind"] == "reference"]
        for fit in fits.itertuples():
            x = SPACES[fit.space](refs[refs["epoch"] == fit.epoch]["loss"].to_numpy())
            params = (fit.shape, fit.loc, fit.scale)
            ref_cdf = math.exp(skewnorm_logcdf(np.array([x.min()]), *params)[0]) * len(x)
            rows.append(
                (run.path.name, fit.epoch, fit.space, fit.shape, fit.floored)
                + (is_floored(x, *params), is_capped(x, *params), ref_cdf)
            )
    columns = ["run", "epoch", "space", "shape", "stored", "floored", "capped", "r_cdf"]
    return pd.DataFrame(rows, columns=columns)


def test_suite_flags_the_degenerate_fits_on_both_sides():
    """The stored floored flags are the measure's; the capped fits are log-loss fits with a
    cliff at the references' largest log-loss: MNIST-1D's epochs 59 and 60 (the digits run
    trained again for the proxies has none), one of the random-label run, and the DP
    run's from epoch 6 on (its canaries never learned, the references' log-losses pile up
    at their top); the log-loss fits of MNIST-1D's epochs 28 to 58 (shapes -53 to -113) have
    no cliff."""
    fits = _suite_fits()
    assert len(fits) == 7 * 2 * 61
    assert (fits["stored"] == fits["floored"]).all()
    assert not (fits["floored"] & fits["capped"]).any()
    capped = fits[fits["capped"]]
    assert sorted(zip(capped["run"], capped["epoch"], strict=True)) == [
        *(("digits_mlp_noise20_dp", epoch) for epoch in range(6, 61)),
        ("digits_mlp_random_labels", 53),
        ("mnist1d_cnn_noise10_canaries", 59),
        ("mnist1d_cnn_noise10_canaries", 60),
    ]
    assert (capped["space"] == "log_loss").all() and (capped["shape"] < -8e6).all()
    mnist = fits[(fits["run"] == MNIST1D) & (fits["space"] == "log_loss")].set_index("epoch")
    assert (mnist.loc[28:58, "shape"] < -50).all() and not mnist.loc[28:58, "capped"].any()


def _stated(text: str, what: str) -> tuple[float, float]:
    """The range a statement gives as '<what> ... shapes from LO to HI'."""
    number = r"(-?\d[\d.]*(?:e[+-]?\d+)?)"
    found = re.search(rf"{what}[^.;]*?shapes (?:of|from) {number} to {number}", text)
    assert found, f"no shape range stated for {what!r}"
    return float(found[1]), float(found[2])


def test_the_stated_shape_ranges_are_the_suites():
    """docs/run-format.md and `is_floored` state the flagged and unflagged fits' shapes on the
    sample suite; rebuilding the suite must update them, or this fails."""
    from memdash.analysis.measures import skewnorm

    fits = _suite_fits()
    docs = (SAMPLES.parent / "docs" / "run-format.md").read_text()
    docs = " ".join(docs.split())  # the statement may wrap
    doc_string = " ".join(skewnorm.is_floored.__doc__.split())
    unflagged = fits[~fits["floored"] & ~fits["capped"]]
    observed = {
        "floored": fits[fits["floored"]]["shape"],
        "capped": fits[fits["capped"]]["shape"],
        "unflagged": unflagged["shape"],
    }
    for what, shapes in observed.items():
        for text in (docs, doc_string):
            low, high = _stated(text, what)
            assert low == pytest.approx(shapes.min(), rel=0.05), (what, shapes.min())
            assert high == pytest.approx(shapes.max(), rel=0.05), (what, shapes.max())
    # and the smallest reference's mass that the docstring gives
    loss = fits[fits["space"] == "loss"]
    assert loss[loss["floored"]]["r_cdf"].max() < 4.5e-4
    assert loss[~loss["floored"]]["r_cdf"].min() > 0.24


@pytest.mark.slow
def test_analyze_brings_a_shipped_run_up_to_the_fits_with_both_flags(tmp_path):
    """A run analyzed before `capped` existed is stale for the exposure step (its version
    went up): after `analyze` its fits carry the flag, and MNIST-1D's capped epochs are 59
    and 60; the other columns are unchanged."""
    from memdash.analysis.steps.pipeline import analyze

    copy = shutil.copytree(SAMPLES / MNIST1D, tmp_path / MNIST1D)
    before = Run.open(copy).read_derived("exposure_fits.parquet")
    analyze(copy, only=["exposure"])
    fits = Run.open(copy).read_derived("exposure_fits.parquet")
    assert tuple(fits.columns) == EXPOSURE_FIT_COLUMNS
    assert fits.loc[fits["capped"], "epoch"].tolist() == [59, 60]
    pd.testing.assert_frame_equal(fits[list(before.columns)], before)
