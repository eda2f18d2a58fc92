"""Similarity: how alike the representations of several networks are, layer by layer, for
two seed groups side by side (true labels against random labels: "one way to learn, N ways
to memorize", Neural Network Memorization Dissection) or for any two runs of the same
examples. Linear CKA (Kornblith et al. 2019) and SVCCA (Raghu et al. 2017) on the recorded
embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import group_colors
from memdash.dashboard.labels import label, md_text

MEASURES = {
    "cka": "how alike the two layers' example-by-example similarities are, "
    "unchanged by rotating or uniformly scaling either layer",
    "svcca": "the mean correlation of the directions the two layers share, after "
    "keeping the directions that explain 99% of each layer's variance; unchanged by any "
    "invertible linear map of either layer",
}
GROUP_MODE, PAIR_MODE = "two seed groups side by side", "two runs"


def render() -> None:
    st.title("Similarity")
    roots = data.run_roots()
    st.caption(
        "How alike the representations of several networks are, layer by layer, measured on "
        "the embeddings they recorded of the same examples. Networks trained on true labels "
        "tend to learn alike whatever their seed; networks that memorize random labels each "
        "find their own way (Neural Network Memorization Dissection)."
    )
    groups = data.seed_groups(roots)
    mode = st.radio(
        "Compare",
        [GROUP_MODE, PAIR_MODE] if groups else [PAIR_MODE],
        horizontal=True,
        key="similarity_mode",
    )
    if not groups:
        st.caption(
            "No seed group here: `memdash train ... --seeds 0-2 --embed-layers fc2,out "
            "--embed-epochs 1,30 --out DIR` trains one (runs that differ only in their seed)."
        )
    if mode == GROUP_MODE:
        _groups(roots, groups)
    else:
        _pair(roots)


def measure_control(key: str) -> str:
    """A choice of CKA or SVCCA, explained under it."""
    measure = st.radio("Measure", list(MEASURES), format_func=label, horizontal=True, key=key)
    st.caption(f"{label(measure)}: {MEASURES[measure]}. 1 = the same up to those maps.")
    return measure


def _default_groups(roots: tuple[str, ...], names: list[str]) -> tuple[int, int]:
    """The true-label and random-label groups of the studies when present, else the first two."""
    study = data.study_paths(roots)
    found = {paths: name for name, paths in data.seed_groups(roots).items()}
    picks = [names.index(found[study[r]]) for r in ("true_group", "random_group") if r in study]
    if len(picks) < 2:
        picks = [0, min(1, len(names) - 1)]
    return picks[0], picks[1]


def _groups(roots: tuple[str, ...], groups: dict[str, tuple[str, ...]]) -> None:
    names = list(groups)
    first, second = _default_groups(roots, names)
    left, right = st.columns(2)
    name_a = left.selectbox(
        "Left group", names, index=first, key="similarity_group_a", format_func=_seeds(groups)
    )
    name_b = right.selectbox(
        "Right group", names, index=second, key="similarity_group_b", format_func=_seeds(groups)
    )
    chosen = {name_a: groups[name_a], name_b: groups[name_b]}
    epochs = data.embedding_epochs(tuple(p for paths in chosen.values() for p in paths))
    if not epochs:
        st.info(
            "These groups share no embedding epoch: train them with the same "
            "`--embed-layers` and `--embed-epochs`."
        )
        return
    left, right = st.columns([1, 2])
    epoch = left.select_slider("After epoch", epochs, value=epochs[-1], key="similarity_epoch")
    with right:
        measure = measure_control("similarity_measure")
    group_heatmaps(chosen, epoch, measure, key="similarity")


def _seeds(groups: dict[str, tuple[str, ...]]):
    return lambda name: f"{name} ({len(groups[name])} seeds)"


def group_heatmaps(
    groups: dict[str, tuple[str, ...]], epoch: int, measure: str, *, key: str
) -> pd.DataFrame:
    """Side by side, each group's layer-by-layer similarity between its seeds (averaged over
    every pair of seeds), then the same layer across seeds for every group as lines; returns
    those lines' table (columns ``group``, ``layer``, ``value``)."""
    columns = st.columns(len(groups))
    same_layer = []
    for column, (name, paths) in zip(columns, groups.items(), strict=True):
        grid = data.similarity(paths, epoch, measure, symmetric=True)
        layers = data.layer_order(Path(paths[0]))
        column.plotly_chart(
            layer_grid(
                grid.rename(columns={"value": measure}),
                measure,
                (layers, "layer (one seed)"),
                (layers, "layer (another seed)"),
                title=f"{name}: between seeds, epoch {epoch}",
            ),
            width="stretch",
            key=f"{key}_heatmap_{name}",
        )
        pairs = int(grid["pairs"].iloc[0]) // 2 if len(grid) else 0
        column.caption(f"{label(measure)}, the mean over {pairs} pairs of seeds.")
        same_layer.append(diagonal(grid).assign(group=name))
    first = Path(next(iter(groups.values()))[0])
    lines = data.by_layer(first, pd.concat(same_layer, ignore_index=True))
    figure = charts.lines(
        lines.rename(columns={"value": measure}),
        x="layer",
        y=measure,
        color="group",
        title=f"the same layer in two seeds, after epoch {epoch}",
        colors=group_colors(groups),
    )
    # the legend names each group as its heading does (its folder's name, as written)
    written = {label(name): name for name in groups}
    figure.for_each_trace(lambda trace: trace.update(name=written.get(trace.name, trace.name)))
    st.plotly_chart(figure, width="stretch", key=f"{key}_same_layer")
    return lines


def diagonal(grid: pd.DataFrame) -> pd.DataFrame:
    """A similarity grid's same-layer cells: columns ``layer`` and ``value``."""
    same = grid[grid["layer_a"] == grid["layer_b"]]
    return pd.DataFrame({"layer": same["layer_a"].to_numpy(), "value": same["value"].to_numpy()})


def layer_grid(grid: pd.DataFrame, measure: str, columns: tuple, rows: tuple, *, title: str):
    """A similarity grid as a heatmap: (layers, axis title) of its columns (``layer_b``) and
    rows (``layer_a``), both in forward order, the first layer at the top left."""
    figure = charts.heatmap(
        grid,
        x="layer_b",
        y="layer_a",
        value=measure,
        title=title,
        x_order=columns[0],
        y_order=rows[0],
    )
    return figure.update_layout(
        xaxis_title=columns[1], yaxis_title=rows[1], yaxis_autorange="reversed"
    )


def _pair(roots: tuple[str, ...]) -> None:
    summaries = data.run_summaries(roots)
    runs = state.readable_runs(summaries)
    embedded = [
        (name, path)
        for name, path in zip(runs["run"], runs["path"], strict=True)
        if data.has_embeddings(Path(path))
    ]
    if len(embedded) < 2:
        st.info(
            "Comparing representations needs two runs with embeddings of the same examples: "
            "train them with `--embed-layers` and `--embed-epochs`."
        )
        return
    # every run by the name the sidebar lists it under: a seed as "seed_0 (its group)"
    names = [name for name, _ in embedded]
    paths = dict(embedded)
    current = state.run_name(summaries, state.current_run(summaries))
    first, partner = _default_pair(roots, names, paths, current)
    if current in names and names[first] != current:
        st.caption(
            f"The sidebar's run, {md_text(current)}, shares its examples with no other run that "
            "recorded embeddings: the page starts on two runs that do."
        )
    left, right = st.columns(2)
    name_a = left.selectbox("First run", names, index=first, key="similarity_run_a")
    name_b = right.selectbox("Second run", names, index=partner, key="similarity_run_b")
    chosen = (paths[name_a], paths[name_b])
    if name_a != name_b and not _same_examples(*chosen):  # the first thing that is wrong
        st.warning(
            f"Runs {md_text(name_a)} and {md_text(name_b)} hold different examples; "
            "representations can only be compared on the same inputs (train them with one "
            "--data-seed)."
        )
        return
    epochs = data.embedding_epochs(chosen)
    if name_a == name_b or not epochs:
        st.info("Choose two different runs that recorded embeddings at a shared epoch.")
        return
    left, right = st.columns([1, 2])
    epoch = left.select_slider("After epoch", epochs, value=epochs[-1], key="similarity_pair_epoch")
    with right:
        measure = measure_control("similarity_pair_measure")
    try:
        grid = data.similarity(chosen, epoch, measure)
    except ValueError as err:
        st.warning(md_text(err))
        return
    left, right = st.columns([2, 1])
    left.plotly_chart(
        layer_grid(
            grid.rename(columns={"value": measure}),
            measure,
            (data.layer_order(Path(chosen[1])), "layer (second run)"),
            (data.layer_order(Path(chosen[0])), "layer (first run)"),
            title=f"{name_a} against {name_b}, epoch {epoch}",
        ),
        width="stretch",
        key="similarity_pair_heatmap",
    )
    right.caption(
        "Each cell compares one layer of the first run (rows) with one layer of the second "
        "(columns), over every example both recorded. The diagonal asks whether the same "
        "layer learned the same representation in both runs."
    )


def _same_examples(a: str, b: str) -> bool:
    """Whether two runs hold the same inputs, row by row (what comparing them needs)."""
    x, y = data.inputs(Path(a)), data.inputs(Path(b))
    return x.shape == y.shape and bool(np.array_equal(x, y))


def _comparable(a: str, b: str) -> bool:
    return a != b and bool(data.embedding_epochs((a, b))) and _same_examples(a, b)


def _default_pair(
    roots: tuple[str, ...], names: list[str], paths: dict[str, str], current: str
) -> tuple[int, int]:
    """The indexes of the first and second run the page starts on: the sidebar's run and a
    run it can be compared with (another seed of its group first); when it has none, the
    first runs in the list that can be compared, likewise; else the first two."""
    order = sorted(range(len(names)), key=lambda i: names[i] != current)
    for i in order:
        group = data.group_of(roots, Path(paths[names[i]]))
        mates = set(group[1]) if group else set()
        others = sorted(
            (j for j in range(len(names)) if j != i), key=lambda j: paths[names[j]] not in mates
        )
        for j in others:
            if _comparable(paths[names[i]], paths[names[j]]):
                return i, j
    return 0, min(1, len(names) - 1)
