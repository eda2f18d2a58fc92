"""One example under membership inference, for the shared example detail: its confidence phi
under the estimate's models that trained on it and those that held it out, with a Gaussian
fitted to every model's phi on each side and, where the estimate has them, the Shapiro-Wilk
p-values of each side (Carlini et al. 2022)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from memdash.dashboard import charts, data
from memdash.dashboard.labels import audit_direction_text

SIDES = {"shapiro_in_p": "trained on it", "shapiro_out_p": "held it out"}


def membership_panel(path: Path, example_id: int, column, *, key: str) -> None:
    """In `column`: the example's phi by side with the fitted Gaussians and a caption of
    the fits (and p-values); nothing when the run's estimate has no attack (fewer than six
    models) or the example is out of its range."""
    members = data.derived(path, "membership.parquet")
    curves = data.derived(path, "membership_roc.parquet")
    if members is None or curves is None or curves.empty:
        return
    phi, member = data.confidences(path)
    if not 0 <= example_id < phi.shape[1]:
        return
    inside = phi[member[:, example_id], example_id].astype(float)
    out = phi[~member[:, example_id], example_id].astype(float)
    column.plotly_chart(
        charts.member_histograms(
            inside, out, fit=True, title=f"example {example_id} under the estimate's models"
        ),
        width="stretch",
        key=f"{key}_members",
    )
    row = members[members["example_id"] == example_id]
    column.caption(
        member_caption(inside, out, row.iloc[0] if len(row) else None, alpha=_alpha(path))
    )


def _alpha(path: Path) -> float:
    check = data.manifest(path).get("heldout", {}).get("membership", {}).get("gaussian", {})
    return float(check.get("alpha", 0.05))


def member_caption(
    inside: np.ndarray, out: np.ndarray, row: pd.Series | None, *, alpha: float
) -> str:
    """The caption under an example's histograms: each side's count and fitted Gaussian (the
    same `charts.gaussian_fit` the curves draw), and its Shapiro-Wilk p-value and verdict
    at `alpha` where `row` (its membership.parquet row) has one."""
    parts = []
    for values, (column, side) in zip((inside, out), SIDES.items(), strict=True):
        who = f"{len(values)} models that {side}" if side == "held it out" else None
        who = who or f"{len(values)} models {side}"
        fitted = charts.gaussian_fit(values)
        text = who + (f": mean {fitted[0]:.2f}, std {fitted[1]:.2f}" if fitted else "")
        p = None if row is None else row.get(column)
        if p is not None and pd.notna(p):
            verdict = "rejected" if p < alpha else "not rejected"
            text += f", Shapiro-Wilk p = {p:.2g} (Gaussian {verdict} at alpha {alpha:g})"
        parts.append(text)
    caption = "Confidence phi of the label; " + "; ".join(parts) + "."
    if row is not None and "shapiro_in_p" in row.index:
        caption += f" Shapiro-Wilk p: {audit_direction_text('shapiro_in_p')}."
    return caption + (
        " Dashed: Gaussians fitted to every model's phi on each side (mean, standard "
        "deviation), the shape online LiRA assumes; its own fit leaves out the model it attacks."
    )
