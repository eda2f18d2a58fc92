"""The Learn lesson "Pre-training on random labels": a network started from weights that
memorized shuffled labels against the same network from scratch, and what the finding's
numbers say about it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from memdash.dashboard import data
from memdash.dashboard.app_pages.common import pretraining_chart
from memdash.dashboard.app_pages.learn._common import intro, need_study, show

SLUG = "random-label-pretraining"
TITLE = "Pre-training on random labels"


def render() -> None:
    intro(
        TITLE,
        "Memorizing random labels looks like wasted work, yet the weights it leaves behind "
        "are not random: the first layers have adapted to the inputs. Train a network on "
        "the data with every label shuffled, then keep its weights (all but the output "
        "layer, drawn afresh), and train it on the true labels. Compare with the same "
        "network trained from scratch with the same seed and batches.",
        "Does memorizing random labels leave features that help later learning?",
        "Leveraging Random Label Memorization for Unsupervised Pre-Training (gains of 1.5 to "
        "5 points on video action recognition)",
    )
    paths = need_study("pretrained", "scratch")
    if paths is None:
        return
    starts = {"from random-label weights": paths["pretrained"], "from scratch": paths["scratch"]}
    split = st.radio(
        "Accuracy on", ["test", "train (clean)"], horizontal=True, key="learn_pretrain_split"
    )
    show(pretraining_chart(starts, split), "learn_pretrain_chart")
    source = data.run_meta(Path(paths["pretrained"])).get("init_from", {})
    found = {f.key: f for f in data.findings(data.run_roots())}["random_label_pretraining"]
    v = found.values
    fresh = ", ".join(source.get("reinit") or []) or "none"
    st.markdown(
        f"The pre-trained run started from `{source.get('run')}` after epoch "
        f"{source.get('epoch')} (layers drawn afresh: {fresh}). It reaches "
        f"{v['target']:.1%} test accuracy (98% of scratch's final) at epoch "
        f"**{v['pretrained_epochs']:.0f}** against **{v['scratch_epochs']:.0f}** from "
        f"scratch, and ends at **{v['pretrained_final']:.1%}** against "
        f"**{v['scratch_final']:.1%}**: {_verdict(v)}."
    )


def _verdict(v: dict[str, float]) -> str:
    """What the pre-training finding's numbers say, in words."""
    gap = v["pretrained_final"] - v["scratch_final"]
    if gap > 0.005:
        return f"memorizing random labels left a better network ({gap:+.1%})"
    if gap < -0.005:
        return f"the random-label weights cost accuracy here ({gap:+.1%})"
    ahead = v["scratch_epochs"] - v["pretrained_epochs"]
    if ahead > 0:
        return f"on these small digits the gain is a head start of {ahead:.0f} epochs"
    return "on these small digits it made no difference"
