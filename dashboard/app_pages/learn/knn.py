"""The Learn lesson "k-NN against the network": by layer and epoch, how often the network's
answer and its 30 nearest neighbours' vote are right on flipped or clean training examples
(Cohen, Sapiro and Giryes 2018)."""

from __future__ import annotations

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import intro, kind_choice, need_roles, show

SLUG = "knn"
TITLE = "k-NN against the network"


def render() -> None:
    intro(
        TITLE,
        "At any layer, each example has neighbours: the training examples whose activations "
        "are closest. Let the 30 nearest vote on its class and compare with the network's "
        "answer. Where the two agree the layer represents the example like its class; where "
        "the network says the flipped label but the neighbours vote for the true class, the "
        "network has memorized a label its own features do not support.",
        "Does the network classify like its nearest neighbours, or does it memorize?",
        "Cohen, Sapiro and Giryes 2018, DNN or k-NN: that is the generalize vs. memorize question",
    )
    paths = need_roles("noise")
    if paths is None:
        return
    k = data.derived(paths["noise"], "knn.parquet")
    subset = kind_choice("Training examples", "learn_knn_subset")
    rows = k[(k["split"] == "train") & (k["subset"] == subset)]
    long = rows.melt(
        id_vars=["epoch", "layer"],
        value_vars=["dnn_accuracy", "knn_true_accuracy"],
        var_name="measure",
        value_name="accuracy",
    )
    long["measure"] = long["layer"] + ": " + long["measure"].str.replace("_accuracy", "")
    show(
        charts.lines(
            data.by_layer(paths["noise"], long),
            x="epoch",
            y="accuracy",
            color="measure",
            title="network (given label) and k-NN (true label) by epoch",
        ),
        "learn_knn_chart",
    )
