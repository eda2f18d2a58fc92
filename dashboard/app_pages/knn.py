"""k-NN vs network: where in the network a vote of the nearest training examples agrees with
the network's own prediction (Cohen, Sapiro and Giryes 2018)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.common import (
    choose_run,
    lacks_embeddings,
    not_for_text,
    offer_analysis,
)
from memdash.dashboard.labels import label

# metric -> (its name in Cohen et al., for the colour bar; what it measures)
METRICS = {
    "p_same": ("P_SAME", "share of examples where the k-NN and the network predict the same class"),
    "ma": ("MA", "agreement among the examples the network gets right"),
    "md": ("MD", "agreement among the examples the network gets wrong"),
}

TEXT_RUN = (
    "This is a language model's run: k-NN vs network compares a vote of the nearest training "
    "examples with the network's predicted class (Cohen et al.), and a language model "
    "predicts a token at every position, not one class per example, so it does not apply."
)


def render() -> None:
    st.title("k-NN vs network")
    path = choose_run(data.run_roots())
    if path is None:
        return
    if not_for_text(path, TEXT_RUN):
        return
    if lacks_embeddings(path, "Comparing a k-NN with the network"):
        return
    table = data.derived(path, "knn.parquet")
    if table is None or table.empty:
        offer_analysis(path, "The k-NN comparison", ["knn"], "memdash analyze", "knn_compute")
        return
    manifest = data.manifest(path).get("knn", {}).get("params", {})
    st.caption(
        f"k = {manifest.get('knn_k')}, {manifest.get('knn_metric')} distance, "
        + (
            "leave-one-out: a training example never votes for itself. "
            if manifest.get("knn_leave_one_out")
            else "each training example votes for itself. "
        )
        + "Accuracies use the labels the network was trained with. "
        + search_text(table)
    )
    left, right = st.columns(2)
    splits = sorted(table["split"].unique())
    split = left.selectbox(
        "Split", splits, index=splits.index("train") if "train" in splits else 0, key="knn_split"
    )
    subsets = sorted(table[table["split"] == split]["subset"].unique())
    subset = right.selectbox("Examples", subsets, key="knn_subset")
    rows = table[(table["split"] == split) & (table["subset"] == subset)]
    layers = data.layer_order(path)
    # one heatmap a row, on the page's width: every layer and epoch a cell that holds its number
    for metric, (short, meaning) in METRICS.items():
        st.plotly_chart(
            charts.heatmap(
                rows,
                x="epoch",
                y="layer",
                value=metric,
                title=label(metric),
                y_order=layers,
                colorbar_title=short,
            ),
            width="stretch",
            key=f"knn_heat_{metric}",
        )
        st.caption(f"{short}: {meaning}, per layer (rows) and epoch (columns).")
    last = rows[rows["epoch"] == rows["epoch"].max()].melt(
        id_vars=["layer"],
        value_vars=["knn_accuracy", "dnn_accuracy", "knn_true_accuracy", "dnn_true_accuracy"],
        var_name="measure",
        value_name="accuracy",
    )
    st.plotly_chart(
        charts.lines(
            data.by_layer(path, last),
            x="layer",
            y="accuracy",
            color="measure",
            title=f"accuracy per layer at epoch {int(rows['epoch'].max())}",
        ),
        width="stretch",
        key="knn_layers",
    )
    st.caption(
        f"For flipped examples: {label('knn_true_accuracy')} high while "
        f"{label('dnn_accuracy')} is high means the neighbours still vote for the true class "
        "while the network has memorized the given (wrong) one."
    )


def search_text(table: pd.DataFrame) -> str:
    """How the neighbours were found, from knn.parquet's ``method``, ``n_lists``,
    ``n_probes`` and ``recall`` (a table written before they were recorded: exact search)."""
    if "method" not in table.columns or not (table["method"] == "ivf").any():
        return "Exact search: every training example compared."
    ivf = table[table["method"] == "ivf"]
    return (
        f"Approximate search (an inverted-file index of {int(ivf['n_lists'].iloc[0]):,} lists, "
        f"{int(ivf['n_probes'].iloc[0]):,} probed): recall@k against exact search, measured on "
        f"a seeded sample, {ivf['recall'].min():.3f} at the worst layer and epoch."
    )
