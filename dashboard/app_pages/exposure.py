"""Exposure: how far each canary's loss has fallen below that of never-trained references
(Carlini et al. 2019); on a text run, the Secret Sharer's own measure (each secret ranked
among all the format's secrets, exactly and extrapolated) and the share extractable by copies
(Carlini et al. 2023)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.common import choose_run, offer_analysis, shell_path, show_command
from memdash.dashboard.charts import exposure as text_charts
from memdash.dashboard.labels import TEXT_METHODS, md_text
from memdash.dashboard.palette import KIND_COLORS

METHODS = {
    "exposure_interpolation": "rank among the references: at most log2(#references)",
    "exposure_extrapolation": "the paper's: a skew-normal fitted to the references' losses; "
    "can pass the ceiling, but degenerates where losses pile up at 0",
    "exposure_extrapolation_log": "memdash's tail model: the same fit to log(loss), "
    "which has no floor",
}
SPACES = {"exposure_extrapolation": "loss", "exposure_extrapolation_log": "log_loss"}


def render() -> None:
    st.title("Exposure")
    path = choose_run(data.run_roots())
    if path is None:
        return
    table = data.derived(path, "exposure.parquet")
    if table is None:
        offer_analysis(path, "Exposure", ["exposure"], "memdash analyze", "exposure_compute")
        return
    if table.empty:
        st.info("No canaries in this run: train with `--canaries 10` to measure exposure.")
        return
    if data.run_meta(path).get("modality") == "text":
        text_exposure(path, table)
        return
    epochs = sorted(table["epoch"].unique())
    left, right = st.columns(2)
    methods = [m for m in METHODS if m in table.columns]
    method = left.radio(
        "Exposure",
        methods,
        format_func=lambda m: m.removeprefix("exposure_").replace("_", " "),
        key="exposure_method",
        help=" ".join(f"{m.removeprefix('exposure_')}: {METHODS[m]}." for m in methods),
    )
    epoch = right.select_slider("Epoch", epochs, value=epochs[-1], key="epoch", bind="query-params")
    ceiling = float(table["ceiling"].iloc[0])
    st.plotly_chart(
        charts.exposure_chart(table, epoch=epoch, method=method, ceiling=ceiling),
        width="stretch",
        key="exposure_box",
    )
    fits = data.derived(path, "exposure_fits.parquet")
    if fits is not None and method in SPACES:
        fits = fits[fits["space"] == SPACES[method]]
    floored = (  # a degenerate fit: a cliff at the smallest reference, or at the largest
        fits.loc[fits["floored"] | fits.get("capped", False), "epoch"].astype(int).tolist()
        if fits is not None and method in SPACES
        else []
    )
    if method in SPACES:
        _fit_note(path, fits, epoch)
    statistic = st.radio("Per group", ["median", "mean"], horizontal=True, key="exposure_statistic")
    st.plotly_chart(
        charts.exposure_over_epochs(table, method=method, floored=floored, statistic=statistic),
        width="stretch",
        key="exposure_lines",
    )
    st.caption(
        "References are scored against the other references: their mean stays near "
        "log2(e) = 1.44 bits (their median near 1 bit), the exposure of a canary the model "
        "never saw."
        + (
            f" Shaded: the {len(floored)} epoch{'s' * (len(floored) != 1)} whose skew-normal "
            "fit is degenerate, a cliff at the references' loss floor (their smallest loss) or "
            "at their largest loss."
            if floored
            else ""
        )
    )


def _fit_note(path, fits, epoch: int) -> None:
    """The epoch's skew-normal fit, with a warning when it sits on the loss floor."""
    if fits is None or fits.empty:
        st.caption("This run's exposure was computed before fits were recorded: rerun")
        show_command(f"memdash analyze {shell_path(path)} --only exposure --force")
        return
    row = fits[fits["epoch"] == epoch]
    if row.empty:
        st.caption(f"No skew-normal fit at epoch {epoch} (reference losses all equal).")
        return
    fit = row.iloc[0]
    text = (
        f"Epoch {epoch}: skew-normal fitted to {int(fit['n_references'])} references' "
        f"{fit['space'].replace('_', '-')}es, shape "
        f"{fit['shape']:.3g}, location {fit['loc']:.3g}, scale {fit['scale']:.3g}."
    )
    if fit["floored"]:
        st.warning(
            text + " This fit sits on the references' loss floor: it puts a cliff at the "
            "smallest reference loss, so extrapolated exposure there measures the cliff, not "
            "how unusual the canary is among the references. Read interpolated exposure for "
            "this epoch."
        )
    elif fit.get("capped", False):
        st.warning(
            text + " This fit is degenerate the other way: it puts a cliff at the largest "
            "reference value, so below it the fit is a half-normal and extrapolated exposure "
            "is that half-normal's tail, not the references' own skew. Compare with "
            "interpolated exposure for this epoch."
        )
    else:
        st.caption(text)


# ---------------------------------------------------------------- text runs

EXTRAPOLATIONS = {  # the extrapolation's column: the fit's space in exposure_fits.parquet
    "exposure_extrapolation": "loss",
    "exposure_extrapolation_log": "log_loss",
}
FITTED = {"loss": "log-perplexities", "log_loss": "logarithms of the log-perplexities"}


def text_exposure(path: Path, table: pd.DataFrame) -> None:
    """The Exposure page of a text run: the secrets' exposure over epochs, exact against
    extrapolated at the chosen epoch, and the share extractable by copies."""
    config = data.run_meta(path)["config"]["data"]
    ceiling = float(table["ceiling"].iloc[0])
    exact = bool(table["exact_available"].any())
    st.caption(
        f"Each canary is the text “{md_text(config['canary_format'])}” with random digits in "
        "its slots ({d}), trained on as often per epoch as its group says; the references are "
        "secrets of the same format never trained on. A secret's exposure is log2|R| - log2 "
        "of its rank among all |R| = "
        f"{2**ceiling:,.0f} secrets of the format, ranked by the model's log-perplexity of "
        "them (exact), or read from a skew-normal fitted to the log-perplexities of sampled "
        "secrets (extrapolated; Carlini et al. 2019)."
    )
    left, middle, right = st.columns(3)
    extrapolation = left.radio(
        "Extrapolation",
        list(EXTRAPOLATIONS),
        format_func=lambda m: f"fit to the {FITTED[EXTRAPOLATIONS[m]]}",
        key="exposure_text_extrapolation",
        help="The paper's fit is to the log-perplexities; memdash's tail model fits their "
        "logarithms, which has no floor.",
    )
    statistic = middle.radio("Per group", ["median", "mean"], key="exposure_statistic")
    epochs = sorted(table["epoch"].unique())
    epoch = right.select_slider("Epoch", epochs, value=epochs[-1], key="epoch", bind="query-params")
    methods = ["exposure_exact", extrapolation] if exact else [extrapolation]
    summary = text_charts.text_exposure_summary(table, methods=methods, statistic=statistic)
    st.plotly_chart(
        text_charts.text_exposure_over_epochs(
            summary, methods=methods, ceiling=ceiling, epoch=epoch, statistic=statistic
        ),
        width="stretch",
        key="exposure_text_lines",
    )
    st.markdown(_levels_sentence(summary[summary["epoch"] == epoch], methods, statistic, ceiling))
    _text_fit_note(data.derived(path, "exposure_fits.parquet"), epoch, extrapolation)
    if not exact:
        st.info(
            "No exact exposure: the format's space is too large to rank every secret (over "
            "10^7), or the tokenizer does not give each digit its own token; only the "
            "extrapolation is shown."
        )
    else:
        st.subheader("Exact against extrapolated")
        rows = table[(table["epoch"] == epoch) & table["exact_available"]]
        points = text_charts.agreement(rows, method=extrapolation, ceiling=ceiling)
        chart, words = st.columns([3, 2])
        chart.plotly_chart(
            text_charts.exact_vs_extrapolated(
                points, method=extrapolation, ceiling=ceiling, epoch=epoch
            ),
            width="stretch",
            key="exposure_text_agreement",
        )
        words.markdown(_agreement_sentence(points, extrapolation, ceiling))
        words.caption(
            "The band is where the two should agree, within 1 bit: below log2|R| - 1, where "
            "at least two other secrets of R rank above the secret. Above it the exact "
            "exposure runs into its ceiling, log2|R| for the likeliest secret, while the "
            "extrapolation can go on past it."
        )
    _extraction(path, config, epoch)


def _levels_sentence(rows: pd.DataFrame, methods: list[str], statistic: str, ceiling: float):
    """What the lines read at the chosen epoch, group by group (the first method in bold,
    the other in brackets)."""
    first, *other = methods
    words = [TEXT_METHODS[m].split(" (")[0] for m in methods]
    parts = [
        f"{row.group} **{getattr(row, first):.2f}** bits"
        + "".join(f" ({getattr(row, m):.2f})" for m in other)
        for row in rows.itertuples()
    ]
    return (
        f"At epoch {int(rows['epoch'].iloc[0])}, {statistic} {words[0]} exposure"
        + (f" ({words[1]} in brackets)" if other else "")
        + ": "
        + ", ".join(parts)
        + f"; the ceiling log2|R| is {ceiling:.2f} bits, chance log2(e) 1.44 bits."
    )


def _agreement_sentence(points: pd.DataFrame, method: str, ceiling: float) -> str:
    """How many secrets below log2|R| - 1 lie within 1 bit of y = x, and where the others
    (rank 1 or 2) are extrapolated to."""
    below, above = points[points["comparable"]], points[~points["comparable"]]
    text = (
        f"Below log2|R| - 1 = {ceiling - 1:.2f} bits, **{int(below['agrees'].sum())} of "
        f"{len(below)}** secrets lie within 1 bit of y = x."
    )
    if len(above):
        values = ", ".join(f"{v:.1f}" for v in sorted(above[method])[:8])
        text += (
            f" {len(above)} rank 1st or 2nd, above log2|R| - 1, where exact exposure stops at "
            f"the ceiling; extrapolated, {values}{', ...' * (len(above) > 8)} bits."
        )
    return text


def _text_fit_note(fits: pd.DataFrame | None, epoch: int, extrapolation: str) -> None:
    """The epoch's skew-normal fit of the chosen extrapolation; a warning where it is
    degenerate (a cliff at the sampled secrets' smallest or largest value)."""
    space = EXTRAPOLATIONS[extrapolation]
    row = None if fits is None else fits[(fits["epoch"] == epoch) & (fits["space"] == space)]
    if row is None or row.empty:
        st.caption(f"No skew-normal fit at epoch {epoch}.")
        return
    fit = row.iloc[0]
    text = (
        f"Epoch {epoch}: skew-normal fitted to the {FITTED[space]} of "
        f"{int(fit['n_references']):,} sampled secrets, shape {fit['shape']:.3g}, location "
        f"{fit['loc']:.3g}, scale {fit['scale']:.3g}."
    )
    if fit["floored"] or fit["capped"]:
        edge = "smallest" if fit["floored"] else "largest"
        st.warning(
            f"{text} This fit is degenerate, a cliff at the sampled secrets' {edge} value: "
            "its extrapolation measures the cliff, not the secrets. Read the exact exposure."
        )
    else:
        st.caption(text)


def _extraction(path: Path, config: dict, epoch: int) -> None:
    """The share extractable at `epoch` by copies: training sequences, then canaries."""
    st.subheader("Extraction")
    st.caption(
        "A sequence is extractable when greedy decoding from its first "
        f"{config['prefix_len']} tokens reproduces the next {config['suffix_len']}; a canary, "
        "when greedy decoding from the format's text before the secret gives the secret "
        "(Carlini et al. 2023)."
    )
    extraction = data.derived(path, "extraction.parquet")
    if extraction is None:
        offer_analysis(path, "Extraction", ["extraction"], "memdash analyze", "extraction_compute")
        return
    columns = st.columns(2)
    groups = (
        (["train", "duplicate"], "test", "training sequences by copies", "test sequences"),
        (["canary"], "reference", "canaries by repetitions", "references"),
    )
    for column, (kinds, untrained, what, untrained_name) in zip(columns, groups, strict=True):
        shares = text_charts.extraction_shares(extraction, epoch=epoch, kinds=kinds)
        base = text_charts.extraction_shares(extraction, epoch=epoch, kinds=[untrained])
        baseline = float(base["extracted_share"].iloc[0]) if len(base) else None
        color = KIND_COLORS["canary" if "canary" in kinds else "duplicate"]
        column.plotly_chart(
            text_charts.extraction_chart(
                shares,
                baseline=baseline,
                baseline_name=f"{untrained_name} (never trained)",
                title=f"extractable at epoch {epoch}: {what}",
                color=color,
            ),
            width="stretch",
            key=f"exposure_extraction_{kinds[0]}",
        )
        column.markdown(_extraction_sentence(shares, baseline, untrained_name))
        if kinds[0] == "train" and len(shares) == 1:
            column.caption(
                "No sequence of this run was duplicated: train with `--duplicate-sequences 8` "
                "to see extraction by copies."
            )


def _extraction_sentence(shares: pd.DataFrame, baseline: float | None, untrained: str) -> str:
    """The chart's points in words: per copies, how many of how many are extractable."""
    parts = [
        f"{int(r.copies)}x: **{int(r.extracted):,} of {int(r.n):,}** ({r.extracted_share:.0%})"
        for r in shares.itertuples()
    ]
    tail = f"; {untrained} (never trained): {baseline:.0%}." if baseline is not None else "."
    return "Extractable, by copies per epoch: " + ", ".join(parts) + tail
