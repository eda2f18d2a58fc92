"""Runs: every run under the roots, and the training curves of the chosen ones."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.analysis.store import RunFormatError
from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    chosen_curves,
    drawn_first,
    shell_path,
    show_command,
)
from memdash.dashboard.data.roots import HIDDEN_COLUMNS
from memdash.dashboard.labels import (
    CORRUPTION_WORDS,
    LABELS,
    TEXT_MEASURES,
    md_text,
    value_text,
)


def render() -> None:
    roots = data.run_roots()
    st.title("Runs")
    st.caption("Runs found under " + ", ".join(f"`{r}`" for r in roots))
    summaries = data.run_summaries(roots)
    if summaries.empty:
        st.info(
            "No runs here yet. Record one with `memdash train`, then serve its folder with "
            "`memdash dashboard`:"
        )
        show_command(
            "memdash train --dataset digits --noise 0.2 --epochs 30 --out runs/first\n"
            "memdash dashboard runs"
        )
        return
    drawn_first(
        lambda: _chosen_curves(roots, summaries),
        above=lambda: _runs_table(summaries, data.seed_groups(roots)),
    )


def _chosen_curves(roots: tuple[str, ...], summaries: pd.DataFrame) -> None:
    """The runs to plot, chosen among the readable ones, and their training curves."""
    healthy = summaries.index[~summaries["status"].isin(data.UNREADABLE)].tolist()
    if not healthy:
        st.warning("No run here can be read; see the errors above.")
        return
    labels = {i: _label(summaries, i) for i in healthy}
    current = summaries.index[summaries["run"] == state.current_name()].tolist()
    chosen = st.multiselect(
        "Runs to plot (several overlay their curves; the sidebar's run first)",
        options=healthy,
        default=[i for i in current if i in healthy] or healthy[:1],
        format_func=labels.get,
        key="runs_chosen",
    )
    if not chosen:
        st.info("Choose at least one run to see its training curves.")
        return
    _curves(roots, chosen, labels, set(summaries.loc[chosen, "modality"]))


def _label(summaries: pd.DataFrame, i: int) -> str:
    row = summaries.loc[i]
    if row["modality"] == "text":  # no label noise: the language model and what it read
        return f"{row['run']} ({row['model']}; {row['dataset']})"
    return f"{row['run']} ({row['dataset']}, {row['model']}, noise {row['noise']})"


def _runs_table(summaries: pd.DataFrame, groups: dict[str, tuple[str, ...]]) -> None:
    group_of = {path: name for name, paths in groups.items() for path in paths}
    shown = summaries.drop(columns=list(HIDDEN_COLUMNS))
    shown.insert(1, "seed group", [group_of.get(path, "") for path in summaries["path"]])
    # every cell as text: accuracies to 3 decimals, missing values as n/a (one type a column)
    shown = pd.DataFrame({c: [value_text(c, v) for v in shown[c]] for c in shown.columns})
    shown["corruption"] = [CORRUPTION_WORDS.get(c, c) for c in shown["corruption"]]
    shown["dp_epsilon"] = [_dp_text(e, d) for e, d in zip(*_dp_of(summaries), strict=True)]
    shown["dp_delta"] = [f"{d:.0e}" if _given(d) else "" for d in summaries["dp_delta"]]
    shown = shown.rename(columns={c: LABELS[c] for c in ("dp_epsilon", "dp_delta")})
    # a static table: the browser draws it at once, where a data grid would first load its
    # module, as the chart below does (benchmarks/first_chart.py); every cell shown as written
    st.table(
        pd.DataFrame({md_text(c): [md_text(v) for v in shown[c]] for c in shown.columns}),
        hide_index=True,
        height="content" if len(shown) <= TABLE_ROWS else TABLE_HEIGHT,
    )
    dp_caption(summaries)
    text = summaries.loc[summaries["modality"] == "text", "run"]
    if len(text):
        st.caption(
            "A language model's (" + ", ".join(md_text(n) for n in text) + ") accuracies are "
            "the shares of its sequences extractable, its loss the mean token loss (nats)."
        )
    for _, row in summaries[summaries["status"] == "error"].iterrows():
        st.error(f"**{md_text(row['run'])}** cannot be read: {md_text(row['error'])}")
    for status, (before, after) in STATUS_NOTES.items():
        rows = summaries[summaries["status"] == status]
        if len(rows):
            st.caption(before + ", ".join(md_text(n) for n in rows["run"]) + after)
            show_command(
                "\n".join(f"memdash train --resume --out {shell_path(p)}" for p in rows["path"])
            )


# the runs the table shows whole; more scroll within TABLE_HEIGHT pixels (about as many rows
# of one line each), the header kept
TABLE_ROWS = 25
TABLE_HEIGHT = 900


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def _dp_of(summaries: pd.DataFrame) -> tuple[list, list]:
    return summaries["dp_epsilon"].tolist(), summaries["dp_delta"].tolist()


def dp_caption(summaries: pd.DataFrame) -> None:
    """Under the table, the runs trained with DP-SGD and the ε their accountant spent: the
    table's last columns, often past its right edge."""
    trained = [
        f"{md_text(run)} (ε = {_dp_text(e, d)}, δ = {d:.0e})"
        for run, e, d in zip(summaries["run"], *_dp_of(summaries), strict=True)
        if _given(d)
    ]
    if trained:
        st.caption(
            "Trained with DP-SGD, ε as the privacy accountant spent it (∞: clipping without "
            "noise): " + ", ".join(trained) + "."
        )


def _dp_text(epsilon: object, delta: object) -> str:
    """A DP run's epsilon spent (∞ without noise: clipping alone bounds nothing); blank for a
    run trained without DP."""
    if not _given(delta):
        return ""
    return f"{epsilon:.2f}" if _given(epsilon) else "∞"


# what the Runs page says under its table about runs of a status, around their names (the
# command that resumes each follows)
STATUS_NOTES = {
    "created": (
        "Created, nothing recorded yet (stopped before epoch 0, a full disk perhaps): ",
        ". This starts it again:",
    ),
    "running": (
        "Still training or killed: ",
        ". Their curves show every epoch completed so far; this continues a killed run:",
    ),
}


# what a classifier's accuracies are measured against, and what they say of flipped examples
CLASSIFIER_ACCURACY = (
    "Measured with the labels the network was trained with: for flipped examples, rising "
    "accuracy (falling loss) means the network is memorizing their wrong labels."
)
# what a language model's accuracies and losses are (Carlini et al. 2023's extraction)
TEXT_ACCURACY = (
    "A language model's accuracies are the shares of its sequences extractable: greedy "
    "decoding from a sequence's first tokens (its prefix) reproduces the next ones (its "
    "suffix; a canary's: the secret after the format's text). Its loss is the mean token loss "
    "(nats)."
)


def _curves(
    roots: tuple[str, ...], chosen: list[int], labels: dict[int, str], modalities: set[str]
) -> None:
    paths = {i: data.run_path(roots, i) for i in chosen}
    words = TEXT_MEASURES if modalities == {"text"} else {}
    metric = st.radio(
        "Measure",
        ["accuracy", "loss"],
        format_func=lambda m: words.get(m, m),
        horizontal=True,
        key="runs_metric",
    )
    readable = []
    for i, path in paths.items():
        try:
            data.trace_sources(path)
            readable.append(path)
        except RunFormatError as err:
            st.error(f"{md_text(labels[i])}: {md_text(err)}")
    if not readable:
        return
    try:
        curves = chosen_curves(readable)
    except RunFormatError as err:
        st.error(str(err))
        return
    st.subheader("Training curves")
    st.caption(
        " ".join(
            [TEXT_ACCURACY] * ("text" in modalities)
            + [CLASSIFIER_ACCURACY] * bool(modalities - {"text"})
        )
    )
    st.plotly_chart(charts.training_curves(curves, metric=metric), width="stretch")
