"""The findings on learned representations: on flipped examples the network predicts the given
label while a k-NN on its embeddings predicts the true one (Cohen et al. 2018).
"""

from __future__ import annotations

from memdash.analysis.findings.needs import Step
from memdash.analysis.findings.registry import Check, Measured, Missing, register
from memdash.analysis.store import Run


def _last_epoch_flipped(runs: dict[str, Run], source: str) -> Measured:
    """Per layer at the last epoch, on flipped training examples: the network's accuracy on
    the given label and the k-NN's on the true one."""
    k = runs["noise"].read_derived("knn.parquet")
    rows = k[
        (k["split"] == "train") & (k["subset"] == "flipped") & (k["epoch"] == k["epoch"].max())
    ]
    if rows.empty:
        raise Missing("no embeddings of flipped training examples")
    values = {f"{r.layer}_dnn": r.dnn_accuracy for r in rows.itertuples()} | {
        f"{r.layer}_knn_true": r.knn_true_accuracy for r in rows.itertuples()
    }
    return Measured(values, {"rows": rows})


def _per_layer_words(m: Measured) -> str:
    return "at the last epoch, per layer: " + "; ".join(
        f"{r.layer}: network {r.dnn_accuracy:.2f} given, k-NN {r.knn_true_accuracy:.2f} true"
        for r in m["rows"].itertuples()
    )


def _some_layer_both_right(m: Measured) -> bool:
    rows = m["rows"]
    return bool(((rows["dnn_accuracy"] > 0.5) & (rows["knn_true_accuracy"] > 0.5)).any())


knn_versus_network = register(
    Check(
        key="knn",
        title="On flipped examples the network predicts the given label, the k-NN the true one",
        reference="Cohen et al. 2018",
        roles=("noise",),
        needs=(Step("noise", "knn", "memdash analyze"),),
        measure=_last_epoch_flipped,
        statistic=_per_layer_words,
        holds=_some_layer_both_right,
    )
)
