"""The Learn lesson "Can one run tell you what 256 runs know?": single-run proxies of
memorization against the held-out score of an ensemble (Feldman & Zhang 2020), live on the
sample run's scoreboard (`memdash proxies`), what precision in the top 5% shows that the rank
correlation hides, and Lukasik et al. 2023 on model size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.measures.proxy_scoreboard import orient, top_weights
from memdash.dashboard import data
from memdash.dashboard.app_pages.learn._common import estimated_table, intro, need_roles, show
from memdash.dashboard.charts.proxies import end_text, proxy_scatter, scoreboard_chart
from memdash.dashboard.data import proxies as proxy_data
from memdash.dashboard.labels import label

SLUG = "proxies"
TITLE = "Can one run tell you what 256 runs know?"
SHARE = 0.05  # the scoreboard's top share (`memdash proxies --share`)
JIANG_LOW = 0.8  # the low end of the correlations Jiang et al. 2021 report

PROXIES = (
    "- **Learning speed and forgetting** (Toneva et al. 2019): how often an example goes from "
    "right to wrong between epochs, and when it is learned. Jiang et al. 2021 found that "
    "learning speed ranks examples much as their held-out C-score does (Spearman about 0.8 to "
    "0.9).\n"
    "- **The data map** (Swayamdipta et al. 2020): the mean confidence in the given label over "
    "epochs, and its variability.\n"
    "- **Area under the margin** (Pleiss et al. 2020): the given label's logit minus the "
    "largest other, averaged over epochs: low for a mislabeled example.\n"
    "- **Loss sensitivity** (Arpit et al. 2017): the size of the loss's gradient with respect "
    "to the input; **input-loss curvature** (Garg et al. 2023): how fast that gradient changes "
    "around the example.\n"
    "- **k-NN disagreement**: the nearest training examples in a layer's embedding vote for "
    "another class than the network predicts.\n"
    "- **Units to flip** (Maini et al. 2023): how few hidden units must be zeroed before the "
    "prediction changes.\n"
    "- **Second-split forgetting time** (Maini et al. 2022): train on one half of the data, "
    "then on the other, and time how soon each example of the first half is forgotten."
)


def render() -> None:
    intro(
        TITLE,
        "The held-out memorization score (Feldman & Zhang 2020) compares the models that "
        "trained on an example with the models that did not: it needs many models, each "
        "trained on a random part of the data. Most researchers train one model, and rank "
        "the examples by something that one run recorded: a *proxy*. These are the proxies "
        "of the literature:\n\n" + PROXIES,
        "Does a score from one training run rank the examples as the ensemble's memorization "
        "score does, and does it find the examples the ensemble calls most memorized?",
        "Feldman & Zhang 2020, What neural networks memorize and why; Toneva et al. 2019; "
        "Jiang et al. 2021; Swayamdipta et al. 2020; Pleiss et al. 2020; Arpit et al. 2017; "
        "Garg et al. 2023, Memorization through the lens of curvature; Maini et al. 2023, Can "
        "neural network memorization be localized?; Maini et al. 2022, Characterizing "
        "datapoints via second-split forgetting; Lukasik et al. 2023, What do larger image "
        "classifiers memorise?",
    )
    paths = need_roles("noise")
    if paths is None or estimated_table(paths["noise"], "mem_score") is None:
        return
    path = paths["noise"]
    board, _ = proxy_data.proxy_scoreboard(path)
    values = proxy_data.proxy_values(path)
    board = board.dropna(subset=["spearman"]).reset_index(drop=True)
    if board.empty:
        st.warning("The sample run has no proxy to compare: run `memdash analyze` on it.")
        return
    _scoreboard(path, board, values)
    _one_proxy(board, values)
    _precision(path, board, values)
    _model_size()


def _scoreboard(path: Path, board: pd.DataFrame, values: pd.DataFrame) -> None:
    st.subheader("The scoreboard of the sample run")
    params = data.manifest(path).get("heldout", {}).get("params", {})
    show(
        scoreboard_chart(board, title="each proxy of one run against the ensemble's score"),
        "learn_proxies_board",
    )
    best, worst = board.iloc[0], board.iloc[-1]
    reach = int((board["spearman"] >= JIANG_LOW).sum())
    st.markdown(
        f"The ensemble here is {params.get('models')} models, each trained on a random "
        f"{(params.get('ratios') or [0.7])[0]:.0%} of the {len(values):,} training examples. "
        f"The best proxy of this one run is **{label(best['proxy'])}**: Spearman "
        f"**{best['spearman']:.2f}** (95% interval {best['spearman_lo']:.2f} to "
        f"{best['spearman_hi']:.2f}); the weakest, {label(worst['proxy'])}, "
        f"{worst['spearman']:.2f}. {reach} of the {len(board)} proxies reach {JIANG_LOW}, "
        "the low end of what Jiang et al. report. Each proxy counts its flagged end high (low "
        "confidence, many forgetting events, few units to flip), so 1 means the ensemble's "
        "order."
    )


def _one_proxy(board: pd.DataFrame, values: pd.DataFrame) -> None:
    proxy = st.selectbox(
        "Proxy to draw",
        board["proxy"].tolist(),
        format_func=label,
        key="learn_proxies_choice",
        help="the scoreboard's proxies, best first",
    )
    plotted = values.dropna(subset=[proxy, "mem_score"])
    show(
        proxy_scatter(plotted, proxy=proxy, title=f"{label(proxy)} against the held-out score"),
        "learn_proxies_scatter",
    )
    flagged = pd.Series(orient(proxy, plotted[proxy].to_numpy()), index=plotted.index)
    rho = flagged.corr(plotted["mem_score"], method="spearman")
    st.caption(
        f"{len(plotted):,} training examples, one point each; up: {end_text(proxy)}; right: "
        f"more memorized. Spearman of these points: {rho:.2f}."
    )


def top_share(values: pd.DataFrame, score: np.ndarray, *, share: float = SHARE) -> dict:
    """What the top `share` of examples by `score` (higher first; ties by `top_weights`) are:
    ``flipped`` (the share of them with a flipped label), ``in_accuracy``,
    ``heldout_accuracy`` and ``mem_score`` (their means), ``k`` (how many)."""
    k = max(1, round(share * len(score)))
    weight = top_weights(score, k)
    return {
        "k": k,
        "flipped": float((weight * values["is_noisy"].to_numpy(float)).sum() / k),
        "in_accuracy": float((weight * values["in_accuracy"].to_numpy()).sum() / k),
        "mem_score": float((weight * values["mem_score"].to_numpy()).sum() / k),
        "heldout_accuracy": float((weight * values["heldout_accuracy"].to_numpy()).sum() / k),
    }


def _precision(path: Path, board: pd.DataFrame, values: pd.DataFrame) -> None:
    st.subheader(f"What precision in the top {SHARE:.0%} shows")
    held = data.derived(path, "heldout.parquet")
    best = board.iloc[0]
    rows = values.dropna(subset=[best["proxy"], "mem_score"]).merge(
        held[["example_id", "in_accuracy", "heldout_accuracy"]], on="example_id"
    )
    mem = rows["mem_score"].to_numpy()
    ours = top_share(rows, orient(best["proxy"], rows[best["proxy"]].to_numpy()))
    theirs = top_share(rows, mem)
    cut = float(np.sort(mem)[::-1][theirs["k"] - 1])
    name = label(best["proxy"])
    st.markdown(
        f"A rank correlation counts every example alike; a researcher looks at the top. Of "
        f"the {ours['k']} examples **{name}** ranks in its top {SHARE:.0%}, "
        f"**{best['precision_top']:.0%}** are also in the ensemble's top {SHARE:.0%}. "
        f"{ours['flipped']:.0%} of them are flipped examples: the models that trained on them "
        f"get them right {ours['in_accuracy']:.0%} of the time on average and the models that "
        f"held them out {ours['heldout_accuracy']:.0%}, so their memorization score averages "
        f"**{ours['mem_score']:.2f}**, {'below' if ours['mem_score'] < cut else 'above'} the "
        f"ensemble's top-{SHARE:.0%} cut of {cut:.2f}. "
        f"The ensemble's top {SHARE:.0%} ({theirs['flipped']:.0%} flipped) are right "
        f"{theirs['in_accuracy']:.0%} of the time in the models that trained on them and "
        f"{theirs['heldout_accuracy']:.0%} in those that held them out." + _reading(ours, theirs)
    )
    st.markdown(_canaries(best, rows))
    top = board.sort_values("precision_top", ascending=False, kind="stable").iloc[0]
    st.markdown(
        f"The proxy with the highest precision here is {label(top['proxy'])}: "
        f"{top['precision_top']:.2f}, at Spearman {top['spearman']:.2f}.\n\n"
        f"**Try it:** draw {label(top['proxy'])} above, then {name}: where does each put the "
        "flipped examples on the right edge, the ones the ensemble calls most memorized?"
    )


def _canaries(best: pd.Series, rows: pd.DataFrame) -> str:
    """The canaries by the ensemble and by the best proxy, in a sentence (empty without
    canaries)."""
    canaries = rows[rows["kind"] == "canary"]
    if canaries.empty or pd.isna(best["auroc_canary"]):
        return ""
    side = "below" if best["auroc_canary"] < 0.5 else "above"
    return (
        f"The {len(canaries)} canaries (random inputs with random labels) have a median "
        f"memorization score of {canaries['mem_score'].median():.2f}, yet {label(best['proxy'])} "
        f"ranks them mostly {side} the clean examples (AUROC for canaries "
        f"{best['auroc_canary']:.2f}, 0.5 = chance)."
    )


def _reading(ours: dict, theirs: dict) -> str:
    """What the two top shares say, in a sentence: the proxy's top examples are the ones even
    the models that trained on them fit less often than the ensemble's top ones."""
    if ours["in_accuracy"] >= theirs["in_accuracy"]:
        return ""
    return (
        " The proxy's top examples are the hardest to fit, even for the models that trained on "
        "them; the most memorized ones are those every model fits when it trains on them and "
        "none fits otherwise."
    )


def _model_size() -> None:
    from memdash.analysis.findings.proxies import proxies_across_widths  # its title, named

    st.subheader("And when the model grows?")
    st.markdown(
        "Lukasik et al. 2023 trained image classifiers of growing size: most examples are "
        "memorized less by a larger model, some more, and the single-run proxies fail to track "
        "how an example's memorization changes with size, even where they correlate with it at "
        "one size. The Findings page checks this on the sample suite's family of widths (its "
        f"finding “{proxies_across_widths.title}”), when the suite has one."
    )
