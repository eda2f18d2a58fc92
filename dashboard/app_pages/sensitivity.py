"""Sensitivity: Arpit et al.'s (2017) capacity measures over training. Loss sensitivity (how
much the loss moves when the input does) and the critical sample ratio (how many examples
have an input of another predicted class close by), for each kind of example of the
chosen run and for every seed group that recorded them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.common import UNTRAINED_KINDS, choose_run, group_colors
from memdash.dashboard.labels import label

# trace column -> (the option that records it, what it means)
MEASURES = {
    "loss_sensitivity": (
        "--record-loss-sensitivity",
        "the L1 norm of the loss's gradient with respect to the input, at the end of each "
        "epoch: high where the network's answer hinges on the exact input",
    ),
    "critical": (
        "--critical-examples 300",
        "the share of a fixed, seeded subset of examples for which a few signed-gradient "
        "steps inside a small L-infinity box around the input find another predicted class",
    ),
}


def render() -> None:
    st.title("Loss sensitivity and critical samples")
    roots = data.run_roots()
    path = choose_run(roots)
    if path is None:
        return
    measure = st.radio(
        "Measure", list(MEASURES), format_func=label, horizontal=True, key="sensitivity_measure"
    )
    option, meaning = MEASURES[measure]
    st.caption(
        f"{label(measure)}: {meaning}. Arpit et al. (2017) saw both rise when a network must "
        "memorize (random or noisy labels) rather than learn patterns."
    )
    _by_kind(path, measure, option)
    _by_group(roots, measure)


def _by_kind(path: Path, measure: str, option: str) -> None:
    st.subheader("This run, by kind of example")
    if measure not in data.trace_columns(path):
        st.info(
            f"This run did not record {label(measure)}: train it with `memdash train ... "
            f"{option}`, or choose a run that did (the sample suite's groups/ runs)."
        )
        return
    table = data.by_kind_per_epoch(path, measure)
    st.plotly_chart(
        charts.lines(
            table.rename(columns={"value": measure, "group": "kind"}),
            x="epoch",
            y=measure,
            color="kind",
            title=f"mean {label(measure)} per epoch",
        ),
        width="stretch",
        key="sensitivity_by_kind",
    )
    counts = table.groupby("group")["examples"].max()
    st.caption(
        "Averaged over "
        + ", ".join(f"{n:,} {kind}" for kind, n in counts.items())
        + " examples per epoch."
        + (
            " The critical search looks at the seeded subset only; radius "
            f"{data.run_meta(path)['config']['record'].get('critical_radius')}."
            if measure == "critical"
            else ""
        )
    )


def group_curves(groups: dict[str, tuple[str, ...]], measure: str) -> pd.DataFrame:
    """Per seed group, the measure's mean over training examples per epoch, averaged over the
    group's seeds: columns ``group``, ``epoch`` and the measure."""
    frames = []
    for name, paths in groups.items():
        per_run = []
        for path in paths:
            table = data.by_kind_per_epoch(Path(path), measure)
            table = table[~table["group"].isin(UNTRAINED_KINDS)]
            weighted = (table["value"] * table["examples"]).groupby(table["epoch"]).sum()
            per_run.append(weighted / table.groupby("epoch")["examples"].sum())
        mean = pd.concat(per_run, axis=1).mean(axis=1)
        frames.append(pd.DataFrame({"group": name, "epoch": mean.index, measure: mean.values}))
    return pd.concat(frames, ignore_index=True)


def _by_group(roots: tuple[str, ...], measure: str) -> None:
    st.subheader("Seed groups")
    groups = {
        name: paths
        for name, paths in data.seed_groups(roots).items()
        if all(measure in data.trace_columns(Path(p)) for p in paths)
    }
    if not groups:
        st.info(
            f"No seed group here recorded {label(measure)}: `memdash train ... --seeds 0-2 "
            f"{MEASURES[measure][0]} --out DIR` trains one."
        )
        return
    st.plotly_chart(
        charts.lines(
            group_curves(groups, measure),
            x="epoch",
            y=measure,
            color="group",
            title=f"mean {label(measure)} over training examples, averaged over seeds",
            colors=group_colors(groups),
        ),
        width="stretch",
        key="sensitivity_by_group",
    )
    st.caption(
        "One line per seed group: " + "; ".join(f"{n} ({len(p)} seeds)" for n, p in groups.items())
    )
