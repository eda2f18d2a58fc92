"""The Learn lesson "Pre-training on random labels": a network started from weights that
memorized shuffled labels against the same network from scratch, on an accuracy axis zoomed
to where the curves part, with the numbers read off those curves (Pondenkandath et al.
2018)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.findings.curves import first_epoch
from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import intro, need_study, show
from memdash.dashboard.labels import md_text

SLUG = "random-label-pretraining"
TITLE = "Pre-training on random labels"

PRETRAINED, SCRATCH = "from random-label weights", "from scratch"
SPLIT_WORDS = {"test": "test accuracy", "train (clean)": "training accuracy"}
TARGET = 0.98  # of scratch's final accuracy, as the finding reads it


def render() -> None:
    intro(
        TITLE,
        "Memorizing random labels looks like wasted work, yet the weights it leaves behind "
        "are not random: the first layers have adapted to the inputs. Train a network on "
        "the data with every label shuffled, then keep its weights (all but the output "
        "layer, drawn afresh), and train it on the true labels. Compare with the same "
        "network trained from scratch with the same seed and batches.",
        "Does memorizing random labels leave features that help later learning?",
        "Pondenkandath et al. 2018, Leveraging random label memorization for unsupervised "
        "pre-training (gains of 1.5 to 5 points on video action recognition)",
    )
    paths = need_study("pretrained", "scratch")
    if paths is None:
        return
    starts = {PRETRAINED: paths["pretrained"], SCRATCH: paths["scratch"]}
    split = st.radio(
        "Accuracy on", ["test", "train (clean)"], horizontal=True, key="learn_pretrain_split"
    )
    curves = start_curves(starts, split)
    wide = curves.pivot(index="epoch", columns="start", values="accuracy")
    target = TARGET * float(wide[SCRATCH].dropna().iloc[-1])
    low = zoom_floor(wide)
    figure = charts.lines(
        curves[curves["epoch"] > wide.index[0]],  # the untrained start lies below the zoom
        x="epoch",
        y="accuracy",
        color="start",
        title=f"{SPLIT_WORDS[split]}, true labels",
        y_range=(low, 1.01),
    )
    charts.threshold_lines(figure, y=target, text=f"{target:.1%}: 98% of scratch's final")
    show(figure, "learn_pretrain_chart")
    first = wide.iloc[0]
    st.caption(
        f"Accuracy axis zoomed to {low:.0%} to 100% to show where the curves part; epoch "
        f"{int(wide.index[0])} (before training: {first[PRETRAINED]:.0%} {PRETRAINED}, "
        f"{first[SCRATCH]:.0%} {SCRATCH}) is left out, below the zoomed axis."
    )
    source = data.run_meta(Path(paths["pretrained"])).get("init_from", {})
    fresh = ", ".join(md_text(layer) for layer in source.get("reinit") or []) or "none"
    st.markdown(
        f"The pre-trained run started from `{source.get('run')}` after epoch "
        f"{source.get('epoch')} (layers drawn afresh: {fresh}). {sentence(wide, split)}"
    )


def start_curves(starts: dict[str, str], split: str) -> pd.DataFrame:
    """The chart's table: per start (name -> run path), accuracy by epoch of the eval pass
    on one curve group (``test`` or ``train (clean)``): columns ``start``, ``epoch``,
    ``accuracy``."""
    frames = []
    for start, path in starts.items():
        curves = data.curves(Path(path), "eval")
        rows = curves[curves["group"] == split]
        frames.append(
            pd.DataFrame({"start": start, "epoch": rows["epoch"], "accuracy": rows["accuracy"]})
        )
    return pd.concat(frames, ignore_index=True)


def zoom_floor(wide: pd.DataFrame) -> float:
    """The bottom of the zoomed accuracy axis: 5 points under the lowest accuracy after the
    first epoch of training, rounded down to a multiple of 5%, and never above 90%."""
    trained = wide[wide.index >= 1].min().min() if (wide.index >= 1).any() else 0.0
    return max(0.0, min(0.9, math.floor((float(trained) - 0.05) * 20) / 20))


def sentence(wide: pd.DataFrame, split: str) -> str:
    """What the curves show: the epoch each start first reaches 98% of scratch's final
    accuracy, both finals, and what that means."""
    pre, scratch = wide[PRETRAINED].dropna(), wide[SCRATCH].dropna()
    target = TARGET * float(scratch.iloc[-1])
    v = {
        "pretrained_final": float(pre.iloc[-1]),
        "scratch_final": float(scratch.iloc[-1]),
        "pretrained_epochs": first_epoch(pre, target),
        "scratch_epochs": first_epoch(scratch, target),
    }
    return (
        f"It reaches {target:.1%} {SPLIT_WORDS[split]} (98% of scratch's final) at epoch "
        f"**{_epoch(v['pretrained_epochs'])}** against **{_epoch(v['scratch_epochs'])}** "
        f"from scratch, and ends at **{v['pretrained_final']:.1%}** against "
        f"**{v['scratch_final']:.1%}**: {_verdict(v)}."
    )


def _epoch(epoch: float) -> str:
    return "never" if math.isnan(epoch) else f"{epoch:.0f}"


def _verdict(v: dict[str, float]) -> str:
    """What the numbers say, in words."""
    gap = v["pretrained_final"] - v["scratch_final"]
    if gap > 0.005:
        return f"memorizing random labels left a better network ({gap:+.1%})"
    if gap < -0.005:
        return f"the random-label weights cost accuracy here ({gap:+.1%})"
    ahead = v["scratch_epochs"] - v["pretrained_epochs"]
    if ahead > 0:
        return f"on these small digits the gain is a head start of {ahead:.0f} epochs"
    return "on these small digits it made no difference"
