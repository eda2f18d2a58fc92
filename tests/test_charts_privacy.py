"""The privacy audit's charts: attack power against the number of reference models, the
per-example Gaussian check, and one example's confidences with the fitted Gaussians."""

import math

import numpy as np
import pandas as pd
import pytest

from memdash.dashboard.charts import (
    budget_chart,
    budget_leaders,
    budget_summary,
    epsilon_chart,
    gaussian_fit,
    member_histograms,
    normality_histograms,
    roc_curves,
)
from memdash.dashboard.palette import ATTACK_COLORS, MEMBER_COLORS


def _budget() -> pd.DataFrame:
    """Two attacks, 1 and 4 reference models, two draws each."""
    return pd.DataFrame(
        {
            "attack": ["rmia"] * 4 + ["offline"] * 4,
            "models": [1, 1, 4, 4] * 2,
            "draw": [0, 1] * 4,
            "auc": [0.6, 0.7, 0.8, 0.9, 0.5, 0.55, 0.7, 0.9],
            "tpr_at_0.1%": [0.02, 0.04, 0.1, 0.2, 0.0, 0.01, 0.1, 0.3],
            "tpr_at_1%": [0.1, 0.2, 0.3, 0.4, 0.05, 0.05, 0.3, 0.5],
            "pairs": [100] * 8,
        }
    )


def test_budget_summary_gives_the_mean_and_spread_over_draws_in_attack_order():
    summary = budget_summary(_budget(), metric="tpr_at_0.1%")
    # offline LiRA comes before RMIA (ATTACK_COLORS order), models ascending
    assert list(summary["attack"]) == ["offline", "offline", "rmia", "rmia"]
    assert list(summary["models"]) == [1, 4, 1, 4]
    rmia_1 = summary.iloc[2]
    assert rmia_1["mean"] == pytest.approx(0.03)  # (0.02 + 0.04) / 2
    assert (rmia_1["min"], rmia_1["max"], rmia_1["draws"]) == (0.02, 0.04, 2)


def test_budget_summary_refuses_an_unknown_metric_or_a_missing_column():
    with pytest.raises(ValueError, match="unknown metric 'tpr'; valid: tpr_at_0.1%"):
        budget_summary(_budget(), metric="tpr")
    with pytest.raises(ValueError, match="lacks the column"):
        budget_summary(_budget().drop(columns="models"), metric="auc")


def test_budget_chart_is_log_in_models_with_a_band_per_attack_in_its_colour():
    fig = budget_chart(budget_summary(_budget(), metric="auc"), metric="auc")
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 4]
    band, line = fig.data[2], fig.data[3]  # RMIA's, after offline LiRA's
    assert line.name == "online RMIA" and line.line.color == ATTACK_COLORS["rmia"]
    assert list(line.x) == [1, 4] and list(line.y) == pytest.approx([0.65, 0.85])
    # the band goes out along the max and back along the min
    assert list(band.x) == [1, 4, 4, 1] and list(band.y) == [0.7, 0.9, 0.8, 0.6]
    assert band.fill == "toself" and not band.showlegend
    assert band.fillcolor == "rgba(51, 34, 136, 0.15)"  # #332288, translucent
    assert fig.layout.shapes[0].y0 == 0.5  # chance AUC
    assert fig.layout.yaxis.title.text == "AUC"


def test_budget_leaders_name_the_best_attack_at_few_models():
    summary = budget_summary(_budget(), metric="tpr_at_1%")
    leaders = budget_leaders(summary, models=(1, 2, 4))
    assert list(leaders["models"]) == [1, 4]  # no draw at 2 models
    first = leaders.iloc[0]
    assert (first["leader"], first["runner_up"]) == ("rmia", "offline")
    assert first["leader_mean"] == pytest.approx(0.15)  # RMIA (0.1 + 0.2) / 2
    assert first["runner_up_mean"] == pytest.approx(0.05)
    assert leaders.iloc[1]["leader"] == "offline"  # 0.4 against RMIA's 0.35


def _membership() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "example_id": [0, 1, 2, 3],
            "shapiro_in_p": [0.5, 0.01, 1e-20, np.nan],
            "shapiro_out_p": [0.9, 0.8, 0.04, 0.2],
        }
    )


def test_normality_histograms_bin_log_p_by_decade_with_alpha_marked():
    fig = normality_histograms(_membership(), alpha=0.05)
    inside, out = fig.data
    assert inside.name == "models trained on it" and out.name == "models that held it out"
    assert inside.marker.color == MEMBER_COLORS["trained on it"]
    # 1e-20 sits at the floor, 1e-12; the p-values drawn as log10
    assert list(inside.x) == pytest.approx([math.log10(0.5), -2.0, -12.0])
    assert len(out.x) == 3  # example 3, without an IN p-value, is left out
    assert inside.xbins.size == 1.0 and inside.histnorm == "percent"
    # decades with an edge at alpha: from log10(0.05) - 11 (below the floor) to 1 above it
    start, end = math.log10(0.05) - 11, math.log10(0.05) + 2
    assert (inside.xbins.start, inside.xbins.end) == pytest.approx((start, end))
    assert fig.layout.shapes[0].x0 == pytest.approx(math.log10(0.05))
    assert fig.layout.xaxis.ticktext[0] == "≤1e-12" and fig.layout.xaxis.ticktext[-1] == "1"


def test_gaussian_fit_is_mean_and_sample_std():
    assert gaussian_fit(np.array([1.0, 2.0, 3.0])) == (2.0, 1.0)
    assert gaussian_fit(np.array([1.0])) is None
    assert gaussian_fit(np.array([2.0, 2.0])) is None  # no spread, no curve


def test_member_histograms_draw_each_sides_gaussian_scaled_to_the_bins():
    phi_in, phi_out = np.array([3.0, 4.0, 5.0]), np.array([-1.0, 0.0, 1.0])
    fig = member_histograms(phi_in, phi_out, fit=True)
    out, inside, out_fit, in_fit = fig.data
    assert out_fit.name == "Gaussian fit: mean 0.00, std 1.00"
    assert in_fit.name == "Gaussian fit: mean 4.00, std 1.00"
    assert in_fit.line.color == MEMBER_COLORS["trained on it"] and in_fit.line.dash == "dash"
    # its peak: the density at the mean (1 / sqrt(2 pi)) x the bin width (6 / 30) x 100
    assert max(in_fit.y) == pytest.approx(100 * 0.2 / math.sqrt(2 * math.pi), rel=1e-3)
    assert not fig.layout.shapes  # no threshold asked for


def test_roc_curves_name_the_rmia_attacks_in_their_colours():
    curves = pd.DataFrame(
        {
            "attack": ["rmia"] * 2 + ["rmia_offline"] * 2,
            "fpr": [1e-3, 1.0] * 2,
            "tpr": [0.1, 1.0, 0.05, 1.0],
        }
    )
    _, rmia, rmia_offline = roc_curves(curves).data
    assert rmia.name == "online RMIA" and rmia.line.color == ATTACK_COLORS["rmia"]
    assert rmia_offline.name == "offline RMIA"
    assert rmia_offline.line.color == ATTACK_COLORS["rmia_offline"]


def test_epsilon_chart_sets_each_bound_in_its_colour_against_the_accountant():
    bounds = pd.DataFrame({"attack": ["online", "rmia"], "epsilon_lower": [1.5, 3.0]})
    fig = epsilon_chart(bounds, accountant=2.0)
    bars = fig.data[0]
    assert list(bars.y) == ["online LiRA", "online RMIA"] and list(bars.x) == [1.5, 3.0]
    assert list(bars.marker.color) == [ATTACK_COLORS["online"], ATTACK_COLORS["rmia"]]
    assert fig.layout.shapes[0].x0 == 2.0  # the accountant's epsilon, dashed
    assert list(fig.layout.xaxis.range) == pytest.approx([0, 3.45])  # room past the longest
    assert not epsilon_chart(bounds).layout.shapes  # no accountant, no line
