"""The localization findings (Maini et al. 2023): flipped examples flip with fewer neurons,
spread over several layers, and example-tied dropout confines memorization to channels
whose dropping removes it.
"""

from __future__ import annotations

from memdash.analysis.findings.needs import Step
from memdash.analysis.findings.registry import Check, Missing, register
from memdash.analysis.store import Run


def _units_to_flip(runs: dict[str, Run], source: str) -> dict[str, float]:
    """The median units zeroed to flip a flipped and a clean example, and how many layers
    the flipped examples' units lie in."""
    run = runs["noise"]
    per = run.read_derived("localization.parquet")
    layers = run.read_derived("localization_layers.parquet")
    med = per.groupby("kind")["neurons_zeroed"].median()
    missing = [kind for kind in ("flipped", "clean") if kind not in med.index]
    if missing:
        raise Missing(f"no {' or '.join(missing)} example could be flipped on the noise run")
    used = layers[(layers["kind"] == "flipped") & (layers["units_zeroed"] > 0)]["layer"].nunique()
    return {
        "flipped_median": float(med["flipped"]),
        "clean_median": float(med["clean"]),
        "flipped_layers": float(used),
    }


flipping = register(
    Check(
        key="flipping",
        title="Flipped examples flip with fewer neurons than clean ones, spread over several "
        "layers",
        reference="Maini et al. 2023",
        roles=("noise",),
        needs=(Step("noise", "flipping", "memdash localize"),),
        measure=_units_to_flip,
        statistic=lambda m: (
            f"median units zeroed: {m['flipped_median']:g} for flipped, {m['clean_median']:g} "
            f"for clean; flipped examples' units lie in {int(m['flipped_layers'])} layers"
        ),
        holds=lambda m: m["flipped_median"] < m["clean_median"] and m["flipped_layers"] >= 2,
    )
)


def _channels_dropped(runs: dict[str, Run], source: str) -> dict[str, float]:
    """Flipped and test accuracy of the tied run with its memorization channels kept and
    dropped (recorded by its training)."""
    result = runs["tied"].meta.get("example_tied_dropout", {})
    keep, drop = result.get("keep", {}), result.get("drop", {})
    if "noisy_acc" not in keep:
        raise Missing("the tied run has no flipped examples")
    return {
        "flipped_keep": keep["noisy_acc"],
        "flipped_drop": drop["noisy_acc"],
        "test_keep": keep["test_acc"],
        "test_drop": drop["test_acc"],
    }


tied_dropout = register(
    Check(
        key="tied_dropout",
        title="Example-tied dropout: dropping the memorization channels removes most flipped "
        "accuracy while test accuracy holds",
        reference="Maini et al. 2023",
        roles=("tied",),
        measure=_channels_dropped,
        statistic=lambda m: (
            f"flipped accuracy {m['flipped_keep']:.2f} -> {m['flipped_drop']:.2f}; test accuracy "
            f"{m['test_keep']:.2f} -> {m['test_drop']:.2f}"
        ),
        holds=lambda m: (
            m["flipped_drop"] <= m["flipped_keep"] / 2 and m["test_drop"] > m["test_keep"] - 0.05
        ),
    )
)
