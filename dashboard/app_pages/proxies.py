"""Proxies: which score of this one run finds what the many models of the held-out estimate
find (`memdash proxies`): the ranked scoreboard, one proxy against the memorization score
example by example, and the examples on which they disagree most."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.measures.proxy_scoreboard import orient
from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    choose_run,
    not_for_text,
    offer_analysis,
    selectable_scatter,
    shell_path,
    show_command,
    table_config,
)
from memdash.dashboard.app_pages.detail import example_section, selection_list
from memdash.dashboard.charts.proxies import end_text, proxy_scatter
from memdash.dashboard.data import proxies as proxy_data
from memdash.dashboard.labels import label

TEXT_RUN = (
    "This is a language model's run: the proxies' scoreboard compares a classifier's "
    "per-example scores with its flipped labels and held-out estimate, and a language model's "
    "sequences have no label to flip, so it does not apply."
)
GAPS = 20  # examples in the table of disagreements
ROW_PIXELS = 35  # a table row (st.dataframe)
# the scoreboard's columns in pixels, so that it fits beside the sidebar at 1440 pixels wide
# every column in view beside the sidebar at 1440 px (the costs included)
WIDTHS = {"proxy": 250, "direction": 108, "n": 54, "spearman": 66, "interval": 84}
WIDTHS |= {"auroc_flipped": 80, "auroc_canary": 96, "precision_top": 92}
WIDTHS |= {"seconds": 58, "cost_runs": 72}
TRAINED_KINDS = ("clean", "flipped", "canary")


def render() -> None:
    st.title("Proxies")
    path = choose_run(data.run_roots())
    if path is None or not_for_text(path, TEXT_RUN):
        return
    if "scores" not in data.manifest(path):
        offer_analysis(path, "Trace scores", ["scores"], "memdash analyze", "proxies_compute")
        return
    board, stored = proxy_data.proxy_scoreboard(path)
    table = proxy_data.proxy_values(path)
    estimated = bool(board["spearman"].notna().any())
    if not estimated:
        st.info(
            "This run has no held-out estimate, so no proxy can be compared with the "
            "memorization score yet: below, the proxies are ranked by how well they find the "
            "planted flipped labels. Train the estimate's models with:"
        )
        show_command(f"memdash estimate --like {shell_path(path)}")
    _scoreboard(path, board, table, estimated=estimated, stored=stored)
    if board.empty:
        return
    proxy = st.selectbox(
        "Proxy",
        board["proxy"].tolist(),  # best first: the default is the best
        format_func=label,
        key="proxies_choice",
        help="every single-run score of this run, in the scoreboard's order",
    )
    if estimated:
        _against_memorization(path, table, board, proxy)
        _disagreements(table, proxy)
    else:
        _by_kind(table, proxy)
    example_section(path, data.examples(path), key="proxies")


def board_table(board: pd.DataFrame) -> pd.DataFrame:
    """The scoreboard as the page shows it: proxies and their flagged ends in words, the
    interval as text, the other columns as they are; a column no proxy has a value in (no
    estimate, no canaries, no recorded cost) left out."""
    shown = board.assign(
        proxy=[label(p) for p in board["proxy"]],
        direction=[end_text(p, short=True) for p in board["proxy"]],
        interval=[
            None if pd.isna(lo) else f"{lo:.2f} to {hi:.2f}"
            for lo, hi in zip(board["spearman_lo"], board["spearman_hi"], strict=True)
        ],
    )
    columns = ["proxy", "direction", "n", "spearman", "interval"]
    columns += ["auroc_flipped", "auroc_canary", "precision_top", "seconds", "cost_runs"]
    return shown[[c for c in columns if shown[c].notna().any()]]


GAP_HELP = {
    "rank_gap": "proxy percentile minus memorization percentile: positive where the proxy "
    "flags the example more than the ensemble calls it memorized",
    "proxy_percentile": "the example's rank by the proxy among the examples drawn, 100 = its "
    "flagged end",
    "ensemble_percentile": "the example's rank by the held-out memorization score, 100 = the "
    "most memorized",
}
BOARD_HELP = {
    "direction": "the end of the proxy counted as flagged (the direction dictionary)",
    "n": "trained examples with both the proxy and the memorization score",
    "spearman": "rank correlation with the held-out memorization score, the proxy's flagged "
    "end counted high (1: the same order)",
    "auroc_flipped": "how well the proxy separates flipped labels from clean examples "
    "(0.5: chance)",
    "auroc_canary": "how well the proxy separates canaries from clean examples (0.5: chance)",
    "precision_top": "of the 5% of examples the proxy flags most, the share also in the 5% "
    "the ensemble calls most memorized",
    "seconds": "what computing the proxy cost this run (the step's seconds, and the eval "
    "pass's where it needs one)",
    "cost_runs": "that cost as a multiple of one training run",
}


def _scoreboard(
    path: Path, board: pd.DataFrame, table: pd.DataFrame, *, estimated: bool, stored: bool
) -> None:
    st.subheader("The scoreboard")
    if board.empty:
        st.info("This run has no single-run score to compare.")
        return
    config = {"proxy": st.column_config.TextColumn(label("proxy"), width=WIDTHS["proxy"])}
    config["interval"] = st.column_config.TextColumn(
        label("interval"),
        help="of Spearman: a bootstrap over the examples",
        width=WIDTHS["interval"],
    )
    for column, helps in BOARD_HELP.items():
        config[column] = st.column_config.NumberColumn(
            label(column),
            help=helps,
            format={"n": "%d", "cost_runs": "%.2f", "seconds": "%.1f"}.get(column, "%.3f"),
            width=WIDTHS.get(column),
        )
    config["direction"] = st.column_config.TextColumn(
        label("direction"), help=BOARD_HELP["direction"], width=WIDTHS["direction"]
    )
    st.dataframe(
        board_table(board),
        hide_index=True,
        column_config=config,
        height=ROW_PIXELS * (len(board) + 1) + 3,  # every proxy at once
        key="proxies_board",
    )
    counts = table["kind"].value_counts()
    kinds = ", ".join(f"{counts[k]:,} {k}" for k in TRAINED_KINDS if counts.get(k, 0))
    where = (
        "read from derived/proxies.parquet"
        if stored
        else f"computed here, not stored (`memdash proxies {shell_path(path)}` stores it)"
    )
    if estimated:
        models = data.manifest(path).get("heldout", {}).get("params", {}).get("models")
        st.caption(
            f"Each proxy is one score of this run, compared over the {len(table):,} trained "
            f"examples ({kinds}) with the held-out memorization score of {models} models "
            "(Feldman & Zhang). Spearman: 1 = the proxy orders the examples as the ensemble "
            "does, 0 = unrelated; its 95% interval resamples the examples. AUROC: 1 = the "
            "proxy ranks every planted example above every clean one, 0.5 = chance. Precision: "
            "of the 5% of examples the proxy flags most, the share also in the ensemble's "
            "most memorized 5%. Cost: seconds, and in training runs. "
            f"Ranked by Spearman; {where}."
        )
    elif board["auroc_flipped"].notna().any():
        st.caption(
            f"Each proxy is one score of this run, over the {len(table):,} trained examples "
            f"({kinds}); ranked by the AUROC of the flipped labels (1 = every flipped example "
            f"above every clean one, 0.5 = chance); {where}."
        )
    else:
        st.caption(
            f"Each proxy is one score of this run, over the {len(table):,} trained examples "
            f"({kinds}). Without an estimate or flipped labels, the table is not ranked."
        )
    if board["seconds"].isna().all():
        st.caption(
            "No cost: this run was recorded before memdash timed its training and steps "
            "(run.json's timing)."
        )


def _plotted(table: pd.DataFrame, proxy: str) -> pd.DataFrame:
    return table.dropna(subset=[proxy, "mem_score"])


def _against_memorization(path: Path, table: pd.DataFrame, board: pd.DataFrame, proxy: str) -> None:
    st.subheader(f"{label(proxy).capitalize()} against the memorization score")
    plotted = _plotted(table, proxy)
    figure = proxy_scatter(
        plotted, proxy=proxy, title=f"{label(proxy)} of each trained example, by kind"
    )
    current = state.current_example(len(data.examples(path)))
    figure = charts.mark_example(figure, plotted, current, x="mem_score", y=proxy)
    chosen = selectable_scatter(figure, plotted, key="proxies_scatter")
    flagged = pd.Series(orient(proxy, plotted[proxy].to_numpy()), index=plotted.index)
    rho = flagged.corr(plotted["mem_score"], method="spearman")
    row = board.set_index("proxy").loc[proxy]
    counts = plotted["kind"].value_counts()
    kinds = ", ".join(f"{counts[k]:,} {k}" for k in TRAINED_KINDS if counts.get(k, 0))
    partial = (
        f" (of {len(table):,}: the proxy has no value for the others)"
        if len(plotted) < len(table)
        else ""
    )
    st.caption(
        f"{len(plotted):,} trained examples drawn ({kinds}){partial}. Spearman of these points, "
        f"the proxy's flagged end ({end_text(proxy)}) counted high: {rho:.3f} (bootstrap 95% "
        f"interval {row['spearman_lo']:.3f} to {row['spearman_hi']:.3f}). Right: more "
        "memorized by the ensemble; up: the proxy's flagged end. Draw a box or lasso to list "
        "examples; click a point to open it."
    )
    selection_list(path, chosen, key="proxies_selected")


def _disagreements(table: pd.DataFrame, proxy: str) -> None:
    st.subheader("Where the proxy and the ensemble disagree most")
    gaps = proxy_data.rank_gaps(table, proxy, n=GAPS)
    columns = ["example_id", "kind", "rank_gap", "proxy_percentile", "ensemble_percentile"]
    columns += [proxy, "mem_score", "label", "true_label"]
    config = table_config(columns)
    for column, helps in GAP_HELP.items():
        config[column] = st.column_config.NumberColumn(label(column), help=helps, format="%.0f")
    ids = gaps["example_id"].astype(int).tolist()
    st.dataframe(
        gaps[columns],
        hide_index=True,
        on_select=lambda: state.open_selected("proxies_gaps", ids),
        selection_mode="single-row",
        key="proxies_gaps",
        column_config=config,
    )
    above = gaps[gaps["rank_gap"] > 0]
    st.caption(
        f"The {len(gaps)} examples whose percentile by {label(proxy)} (100 = its "
        "flagged end) lies furthest from their percentile by the memorization score (100 = "
        f"the most memorized). {len(above)} of them the proxy flags more than the ensemble "
        f"({_kinds(above)}), {len(gaps) - len(above)} the ensemble calls more memorized than "
        f"the proxy flags them ({_kinds(gaps[gaps['rank_gap'] <= 0])}). Click a row to open "
        "the example."
    )


def _kinds(rows: pd.DataFrame) -> str:
    counts = rows["kind"].value_counts()
    return ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"


def _by_kind(table: pd.DataFrame, proxy: str) -> None:
    st.subheader(f"{label(proxy).capitalize()} by kind of example")
    values = table.dropna(subset=[proxy])
    st.plotly_chart(
        charts.histograms(
            values, value=proxy, group="kind", title=f"{label(proxy)} ({end_text(proxy)})"
        ),
        width="stretch",
        key="proxies_hist",
    )
    st.caption(
        f"{len(values):,} trained examples. With an estimate, this becomes the proxy against "
        "the memorization score, example by example."
    )
