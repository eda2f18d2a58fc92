"""The Learn lesson "The Secret Sharer": a language model's exposure in the paper's own setting,
secrets of a format with random digits ranked among every secret the format allows, after a
chosen epoch (Carlini et al. 2019), with extraction by greedy decoding (Carlini et al. 2023)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import data, state
from memdash.dashboard.app_pages.common import shell_path, show_command
from memdash.dashboard.app_pages.learn._common import intro, show
from memdash.dashboard.charts.exposure import REFERENCES, agreement, secret_ranks
from memdash.dashboard.data.roots import text_runs
from memdash.dashboard.labels import md_text

SLUG = "secret-sharer"
TITLE = "The Secret Sharer"

# what trains and analyzes a language model's run with canaries, for a suite that has none
MAKE_RUN = (
    "memdash train --dataset text --model gpt --layers 1 --width 32 --heads 2 --epochs 10 \\\n"
    "  --canaries 4 --canary-repeats 1,4,16 --reference-canaries 50 \\\n"
    "  --checkpoint-epochs 0,5,10 --out runs/text_canaries\n"
    "memdash analyze runs/text_canaries"
)


def render() -> None:
    intro(
        TITLE,
        "Carlini et al. put a *canary* into a language model's training text: a sentence of "
        "a fixed format with a secret drawn at random, such as “my pin is 281265”. Every "
        "secret the format allows is a candidate, |R| = 10^6 of them for six digits. The "
        "model scores each by its log-perplexity, Px = -sum of log2 p(token | the tokens "
        "before it) over the secret's tokens, and the candidates are ranked by it, 1 for the "
        "one the model finds likeliest. **Exposure** = log2|R| - log2 rank. A secret ranked "
        "first has all log2 10^6 = 19.9 bits: whoever ranks the candidates finds it. A secret "
        "the model never saw ranks anywhere: its exposure averages log2(e) = 1.44 bits. The "
        "paper also extrapolates exposure from a skew-normal fitted to the Px of sampled "
        "candidates, for spaces too large to rank. Carlini et al. 2023 ask the plainer "
        "question of extraction: prompted with the text before the secret, does greedy "
        "decoding write the secret out?",
        "How often must a secret appear in a language model's training data before the model "
        "gives it away?",
        "Carlini et al. 2019, The secret sharer: evaluating and testing unintended memorization "
        "in neural networks; Carlini et al. 2023, Quantifying memorization across neural "
        "language models",
    )
    found = _run_with_exposure()
    if found is None:
        return
    path, table = found
    fmt = data.run_meta(path)["config"]["data"]["canary_format"]
    st.caption(
        f"From run **{md_text(state.run_name(data.run_summaries(data.run_roots()), path))}**, "
        "a language model trained with canaries of the "
        f"format “{md_text(fmt)}” ({{d}}: a random digit)."
    )
    if not table["exact_available"].any():
        st.info(
            "This run's format has too many secrets to rank them all (or its tokenizer does "
            "not give each digit its own token): it has no exact exposure to show here."
        )
        return
    epochs = sorted(table["epoch"].unique())
    epoch = st.select_slider(
        "After epoch", epochs, value=epochs[-1], key="learn_secret_sharer_epoch"
    )
    ceiling = float(table["ceiling"].iloc[0])
    rows = table[(table["epoch"] == epoch) & table["exact_available"]]
    points = agreement(rows, method="exposure_extrapolation", ceiling=ceiling)
    show(secret_ranks(points, ceiling=ceiling, epoch=epoch), "learn_secret_sharer_chart")
    st.caption(
        "A point per secret: its exact exposure below, its rank among all |R| secrets above; "
        "each tenfold in rank is log2(10) = 3.3 bits."
    )
    st.markdown(_ranks_sentence(points, ceiling, epoch))
    st.markdown(_extraction_sentence(points, fmt))


def _run_with_exposure() -> tuple[Path, pd.DataFrame] | None:
    """The first language model's run with canaries and its exposure table; None after
    saying what makes one (or what computes its exposure)."""
    paths = text_runs(data.run_roots())
    for path in paths:
        table = data.derived(path, "exposure.parquet")
        if table is not None and not table.empty:
            return path, table
    with_canaries = [p for p in paths if data.run_meta(p)["config"]["data"].get("canaries")]
    if with_canaries:
        st.warning("This lesson reads a language model's exposure: compute it first.")
        show_command(f"memdash analyze {shell_path(with_canaries[0])}")
        return None
    st.warning(
        "This lesson reads a language model's run with canaries, and the runs under "
        f"{md_text(', '.join(data.run_roots()))} have none. `make sample-runs` makes the "
        "sample suite's (text_gpt_canaries); or train and analyze one (about 5 minutes on a "
        "CPU):"
    )
    show_command(MAKE_RUN)
    return None


def _ranks_sentence(points: pd.DataFrame, ceiling: float, epoch: int) -> str:
    """Each group's median exact exposure and median rank, most repeated first."""
    by = points.groupby("group", sort=False).agg(
        rank=("rank", "median"), exposure=("exposure_exact", "median"), n=("rank", "size")
    )
    parts = [
        f"{int(row['n'])} {group}: **{row['exposure']:.1f}** bits (rank {row['rank']:,.0f})"
        for group, row in by.iloc[::-1].iterrows()
    ]
    return (
        f"After epoch {epoch}, among the {2**ceiling:,.0f} secrets of the format, the median "
        "exposure (and median rank) of the "
        + ", of the ".join(parts)
        + f". Rank 1 is the ceiling, log2|R| = {ceiling:.1f} bits; a secret never trained on "
        "averages log2(e) = 1.44 bits."
    )


def _extraction_sentence(points: pd.DataFrame, fmt: str) -> str:
    """How many of each group's secrets greedy decoding writes out after the format's text."""
    before = fmt.split("{d}")[0].strip()
    canaries = points[points["group"] != REFERENCES]
    counts = canaries.groupby("group", sort=False)["extracted"].agg(["sum", "size"])
    parts = [
        f"**{int(r['sum'])} of {int(r['size'])}** {g}" for g, r in counts.iloc[::-1].iterrows()
    ]
    references = int(points.loc[points["group"] == REFERENCES, "extracted"].sum())
    return (
        f"Prompted with “{md_text(before)}”, greedy decoding writes out the secret of "
        + ", ".join(parts)
        + f", and of {references} reference{'s' * (references != 1)}."
    )
