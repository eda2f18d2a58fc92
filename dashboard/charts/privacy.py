"""Membership inference: the attacks' ROC curves on log-log axes, their power against the
number of reference models, the per-example check of LiRA's Gaussian assumption, and one
example's confidence under the models that trained on it and those that held it out (with
the fitted Gaussians)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin, share_histogram
from memdash.dashboard.charts.distributions import shared_bins
from memdash.dashboard.labels import attack_name, label
from memdash.dashboard.palette import ATTACK_COLORS, MEMBER_COLORS


def roc_curves(curves: pd.DataFrame, *, fpr: float | None = None) -> go.Figure:
    """Membership-inference ROCs (``attack``, ``fpr``, ``tpr``) on log-log axes, as Carlini
    et al. plot them (the low-FPR corner is what matters), with chance (TPR = FPR) dotted
    and, given `fpr`, a line at the false-positive rate the attacker accepts."""
    fig = go.Figure()
    low = float(curves["fpr"].min()) if len(curves) else 1e-5
    fig.add_trace(
        go.Scatter(
            x=[low, 1],
            y=[low, 1],
            mode="lines",
            name="chance",
            line={"dash": "dot", "color": "#7F7F7F"},
        )
    )
    for attack, rows in curves.groupby("attack", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["fpr"],
                y=rows["tpr"].clip(lower=low),  # a TPR of 0 has no place on a log axis
                mode="lines",
                name=attack_name(str(attack)),
                line={"color": ATTACK_COLORS.get(str(attack)), "shape": "hv"},
            )
        )
    if fpr is not None:
        fig.add_vline(x=fpr, line={"dash": "dash", "color": "#7F7F7F"})
    decades = {"type": "log", "range": [np.log10(low), 0], "dtick": 1, "exponentformat": "power"}
    fig.update_xaxes(title=label("fpr"), **decades)
    fig.update_yaxes(title=label("tpr"), **decades)
    fig.update_layout(
        title="membership inference ROC (log-log)",
        height=440,
        margin=margin(),
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def member_histograms(
    phi_in: np.ndarray,
    phi_out: np.ndarray,
    *,
    threshold: float | None = None,
    title: str = "",
    fit: bool = False,
) -> go.Figure:
    """One example's confidence phi under the models that trained on it and those that held
    it out (shares of each, shared bins), with the attacker's threshold if given; with
    `fit`, a Gaussian fitted to every model's value on each side (`gaussian_fit`: mean and
    sample std, two values or more; not LiRA's own fit, which leaves the target out and pools
    the variance with few models) drawn as a dashed curve in its side's colour, scaled to the
    histogram (percent per bin)."""
    values = np.r_[phi_in, phi_out]
    bins = shared_bins(values, integer=False, n=30)
    fig = go.Figure()
    for name, part in (("held it out", phi_out), ("trained on it", phi_in)):
        fig.add_trace(
            share_histogram(
                part,
                name=f"models that {name}" if name == "held it out" else f"models {name}",
                bins=bins,
                color=MEMBER_COLORS[name],
            )
        )
    if fit:
        for name, part in (("held it out", phi_out), ("trained on it", phi_in)):
            curve = _gaussian_curve(np.asarray(part, dtype=float), bins=bins)
            if curve is not None:
                fig.add_trace(curve.update(line={"color": MEMBER_COLORS[name], "dash": "dash"}))
    if threshold is not None:
        fig.add_vline(x=threshold, line={"dash": "dash", "color": "#000000"})
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title="confidence phi = log(p / (1 - p)) of the label",
        yaxis_title="% of the models",
        height=320,
        margin=margin(),
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def gaussian_fit(values: np.ndarray) -> tuple[float, float] | None:
    """The mean and sample standard deviation (ddof=1) of `values` (n,), or None with fewer
    than two values or no spread."""
    if len(values) < 2:
        return None
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    return (mean, std) if std > 0 else None


def _gaussian_curve(values: np.ndarray, *, bins: dict[str, float], points: int = 200):
    """The Gaussian fitted to `values` as a line in percent per bin of `bins` (the density
    times the bin width times 100, the scale of a share histogram), or None (`gaussian_fit`)."""
    fitted = gaussian_fit(values)
    if fitted is None:
        return None
    mean, std = fitted
    lo = min(bins["start"], mean - 4 * std)
    hi = max(bins["end"], mean + 4 * std)
    x = np.linspace(lo, hi, points)
    density = np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    return go.Scatter(
        x=x,
        y=density * bins["size"] * 100,
        mode="lines",
        name=f"Gaussian fit: mean {mean:.2f}, std {std:.2f}",
    )


# --- attack power against the number of reference models --------------------------------------

BUDGET_METRICS = ("tpr_at_0.1%", "tpr_at_1%", "auc")
# what an attack that guesses scores on each metric
CHANCE = {"tpr_at_0.1%": 0.001, "tpr_at_1%": 0.01, "auc": 0.5}


def budget_summary(budget: pd.DataFrame, *, metric: str) -> pd.DataFrame:
    """`metric` of each attack against the number of reference models, over the draws of
    derived/membership_budget.parquet (``attack``, ``models``, ``draw`` and the metric):
    one row per (attack, models) with ``mean``, ``min``, ``max`` and ``draws``, attacks
    in `ATTACK_NAMES` order, models ascending."""
    if metric not in BUDGET_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(BUDGET_METRICS)}")
    missing = [c for c in ("attack", "models", metric) if c not in budget.columns]
    if missing:
        raise ValueError(f"the budget table lacks the column(s) {', '.join(missing)}")
    rows = budget.dropna(subset=[metric])
    summary = (
        rows.groupby(["attack", "models"])[metric]
        .agg(mean="mean", min="min", max="max", draws="count")
        .reset_index()
    )
    order = {name: i for i, name in enumerate(ATTACK_COLORS)}
    rank = summary["attack"].map(order).fillna(len(order))
    return summary.assign(_rank=rank).sort_values(["_rank", "models"]).drop(columns="_rank")


def budget_chart(summary: pd.DataFrame, *, metric: str) -> go.Figure:
    """Each attack's mean `metric` over the draws against the number of reference models
    (a `budget_summary`), on a log x-axis with a tick at each number drawn, the min-max over
    the draws as a band in the attack's colour, and chance dotted."""
    fig = go.Figure()
    for attack, rows in summary.groupby("attack", sort=False):
        color = ATTACK_COLORS.get(str(attack), "#7F7F7F")
        fig.add_trace(
            go.Scatter(
                x=np.r_[rows["models"], rows["models"][::-1]],
                y=np.r_[rows["max"], rows["min"][::-1]],
                mode="lines",
                fill="toself",
                fillcolor=_translucent(color),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=str(attack),
                name=f"{attack_name(str(attack))}, min to max over draws",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=rows["models"],
                y=rows["mean"],
                mode="lines+markers",
                name=attack_name(str(attack)),
                legendgroup=str(attack),
                line={"color": color},
                customdata=rows[["min", "max", "draws"]].to_numpy(),
                hovertemplate="%{x} models: mean %{y:.4f} (min %{customdata[0]:.4f}, max "
                "%{customdata[1]:.4f}, %{customdata[2]} draws)<extra>%{fullData.name}</extra>",
            )
        )
    fig.add_hline(
        y=CHANCE[metric],
        line={"dash": "dot", "color": "#7F7F7F"},
        annotation_text="chance",
        annotation_position="bottom right",
    )
    ticks = sorted(int(m) for m in summary["models"].unique())
    fig.update_xaxes(
        type="log", title=label("models"), tickvals=ticks, ticktext=list(map(str, ticks))
    )
    fig.update_yaxes(title=label(metric), tickformat=".2f" if metric == "auc" else ".1%")
    fig.update_layout(
        title=f"{label(metric)} against the number of reference models (mean, min-max band)",
        height=420,
        margin=margin(),
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def budget_leaders(summary: pd.DataFrame, *, models: tuple[int, ...] = (1, 2, 4)) -> pd.DataFrame:
    """At each number of reference models in `models` that `summary` (a `budget_summary`)
    holds, the attack with the highest mean and the runner-up: ``models``, ``leader``,
    ``leader_mean``, ``runner_up``, ``runner_up_mean`` (NaN and None without one)."""
    rows = []
    for count in models:
        at = summary[summary["models"] == count].sort_values("mean", ascending=False)
        if at.empty:
            continue
        second = at.iloc[1] if len(at) > 1 else None
        rows.append(
            {
                "models": count,
                "leader": at.iloc[0]["attack"],
                "leader_mean": float(at.iloc[0]["mean"]),
                "runner_up": None if second is None else second["attack"],
                "runner_up_mean": np.nan if second is None else float(second["mean"]),
            }
        )
    columns = ["models", "leader", "leader_mean", "runner_up", "runner_up_mean"]
    return pd.DataFrame(rows, columns=columns)


def _translucent(color: str, alpha: float = 0.15) -> str:
    """A ``#RRGGBB`` colour as ``rgba(r, g, b, alpha)``."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


# --- LiRA's Gaussian assumption, per example ----------------------------------------------------

NORMALITY_SIDES = {"shapiro_in_p": "trained on it", "shapiro_out_p": "held it out"}
P_FLOOR = 1e-12  # smaller p-values are drawn at the floor (the left edge)


def tested_both(membership: pd.DataFrame) -> pd.DataFrame:
    """The examples with a p-value on both sides (NaN: fewer than three models on a side, as
    for a test example no model trained on), the ones the check speaks of."""
    return membership.dropna(subset=list(NORMALITY_SIDES))


def normality_histograms(membership: pd.DataFrame, *, alpha: float) -> go.Figure:
    """The Shapiro-Wilk p-values (``shapiro_in_p``, ``shapiro_out_p``) of the examples tested
    on both sides (`tested_both`), as shares of them, on log10 bins of one decade each with
    an edge at `alpha` (p below `P_FLOOR` at the floor), the side's member colour, and
    `alpha` dashed: left of it the test rejects a Gaussian."""
    floor, cut = np.log10(P_FLOOR), np.log10(alpha)
    # decades with an edge at alpha, so that no bar holds rejected and kept p-values both
    bins = {"start": cut - np.ceil(cut - floor), "end": cut + np.ceil(-cut), "size": 1.0}
    fig = go.Figure()
    both = tested_both(membership)
    for side, name in NORMALITY_SIDES.items():
        p = both[side].to_numpy(dtype=float)
        logs = np.log10(np.clip(p, P_FLOOR, 1.0))
        who = f"models that {name}" if name == "held it out" else f"models {name}"
        fig.add_trace(share_histogram(logs, name=who, bins=bins, color=MEMBER_COLORS[name]))
    fig.add_vline(
        x=cut,
        line={"dash": "dash", "color": "#000000"},
        annotation_text=f"alpha {alpha:g}",
        annotation_position="top",
    )
    ticks = list(range(int(floor), 1, 2))
    fig.update_xaxes(
        title="Shapiro-Wilk p-value of the example's confidences (log scale)",
        tickvals=ticks,
        ticktext=[f"≤1e{t}" if t == floor else ("1" if t == 0 else f"1e{t}") for t in ticks],
    )
    fig.update_layout(
        barmode="group",
        bargap=0.15,
        title="is phi Gaussian over the models? one p-value per example and side",
        yaxis_title="% of the examples tested",
        height=360,
        margin=margin(),
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


# --- the empirical epsilon against the accountant's ---------------------------------------------


def epsilon_chart(bounds: pd.DataFrame, *, accountant: float | None = None) -> go.Figure:
    """Each attack's empirical lower bound on epsilon (``attack``, ``epsilon_lower``) as a
    horizontal bar in its colour, with the DP accountant's epsilon (an upper bound) as a
    dashed line: a bar past it is a contradiction."""
    names = [attack_name(str(a)) for a in bounds["attack"]]
    fig = go.Figure(
        go.Bar(
            x=bounds["epsilon_lower"],
            y=names,
            orientation="h",
            marker={"color": [ATTACK_COLORS.get(str(a), "#7F7F7F") for a in bounds["attack"]]},
            text=[f"{v:.2f}" for v in bounds["epsilon_lower"]],
            textposition="outside",
            showlegend=False,
        )
    )
    if accountant is not None:
        fig.add_vline(
            x=accountant,
            line={"dash": "dash", "color": "#000000"},
            annotation_text=f"{label('dp_epsilon')}: {accountant:.2f}",
            annotation_position="top left",  # its text ends at the line, inside the plot
        )
    top = max([accountant or 0.0, *bounds["epsilon_lower"].tolist()])
    fig.update_xaxes(title=label("epsilon_lower"), range=[0, 1.15 * top if top > 0 else 1])
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        title="what each attack proves against what the accountant allows",
        height=80 + 45 * len(bounds),
        margin=margin(top=60),
    )
    return fig
