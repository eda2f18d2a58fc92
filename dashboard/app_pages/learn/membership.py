"""The Learn lesson "Membership inference": for a memorized flipped example and a typical
clean one, the confidence of the models that trained on it against those that held it out,
and how many memberships an attacker catches at a chosen false-positive rate (Carlini et al.
2022)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import estimated_table, intro, need_roles, show

SLUG = "membership"
TITLE = "Membership inference"

FPR_CHOICES = (0.001, 0.01, 0.1)


def render() -> None:
    intro(
        TITLE,
        "An attacker holds a trained model and one example, and asks: *was this example in "
        "the training set?* The attacker looks at how confident the model is in the "
        "example's label, phi = log(p / (1 - p)), and compares it with what models that "
        "did not train on it say, trained by the attacker on similar data (here: the other "
        "models of the estimate). A typical example gets about the same confidence either "
        "way: its membership stays hidden. A memorized one is confidently right only in the "
        "models that trained on it: its membership leaks. The attacker must accept some "
        "false alarms (members called where there were none); the fewer, the stronger the "
        "claim.",
        "Are the examples a network memorizes the ones whose presence in its training data "
        "can be told from the network?",
        "Carlini et al. 2022, Membership inference attacks from first principles",
    )
    paths = need_roles("noise")
    if paths is None:
        return
    path = paths["noise"]
    table = estimated_table(path, "vulnerability")
    if table is None:
        return
    alpha = st.select_slider(
        "False positives the attacker accepts",
        FPR_CHOICES,
        value=0.01,
        format_func=_percent,
        key="learn_membership_fpr",
    )
    phi, member = data.confidences(path)
    thresholds, exposed = _exposed_at(phi, member, alpha)
    columns = st.columns(2)
    for column, (kind, example_id) in zip(columns, _two_examples(table).items(), strict=True):
        threshold = float(thresholds[example_id])
        show(
            charts.member_histograms(
                phi[member[:, example_id], example_id],
                phi[~member[:, example_id], example_id],
                threshold=threshold,
                title=f"a {kind} example (#{example_id})",
            ),
            f"learn_membership_{kind}",
            column,
        )
        column.caption(
            f"Called a member above the dashed line (phi {threshold:.1f}), where "
            f"{_percent(alpha)} of the models that held it out lie: "
            f"**{exposed[example_id]:.0%}** of the models that trained on it are caught."
        )
    table = table.assign(exposed=exposed[table["example_id"].to_numpy()])
    share = table.groupby("kind")["exposed"].mean()
    st.markdown(
        f"With {_percent(alpha)} false positives per example, the attacker catches **"
        f"{share.get('flipped', float('nan')):.0%}** of the memberships of flipped examples on "
        f"average, and **{share.get('clean', float('nan')):.0%}** of those of clean ones. The "
        "Privacy page draws the full attacks (online and offline LiRA) on log-log axes."
    )


def _percent(share: float) -> str:
    """0.001 -> "0.1%", 0.01 -> "1%"."""
    return f"{share:.1%}".replace(".0%", "%")


def _exposed_at(phi: np.ndarray, member: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Per example, the (1 - alpha) quantile of phi over the models that held it out (the
    attacker's threshold), and the share of the models that trained on it whose phi exceeds
    it: (N,) each, NaN where either side is empty."""
    out = np.where(member, np.nan, phi)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: never held out
        threshold = np.nanquantile(out, 1 - alpha, axis=0)
        caught = (phi > threshold) & member
        return threshold, caught.sum(0) / member.sum(0)


def _two_examples(table: pd.DataFrame) -> dict[str, int]:
    """The most memorized flipped example and a typical clean one (median mem_score)."""
    flipped = table[table["kind"] == "flipped"].dropna(subset=["mem_score"])
    clean = table[table["kind"] == "clean"].dropna(subset=["mem_score"])
    typical = (clean["mem_score"] - clean["mem_score"].median()).abs().idxmin()
    return {
        "flipped": int(flipped.nlargest(1, ["mem_score", "vulnerability"])["example_id"].iloc[0]),
        "clean": int(clean.loc[typical, "example_id"]),
    }
