"""The shared example detail: every page that lists or draws examples opens one here, and
draws lists of examples here (thumbnails of images; a text run's sequences as text, each
token coloured by its loss).

The current example lives in the sidebar and the URL (`memdash.dashboard.state`); a page
calls `example_section` under its lists, and any "open" (a gallery button, a table row, a
clicked point, a neighbour) makes that example the current one.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.store.sources import SOURCES
from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    lacks_embeddings,
    open_buttons,
    score_columns,
    score_meanings,
    shell_path,
    show_command,
    table_config,
    thumbnail_grid,
)
from memdash.dashboard.app_pages.privacy_example import membership_panel
from memdash.dashboard.charts import text as text_charts
from memdash.dashboard.data import one_example, paging
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import label, value_text

NEIGHBOURS = 12
TEXT_NEIGHBOURS, TEXT_PER_ROW = 6, 3  # sequences side by side: a few lines of text each

# the example table's rows of distinct example ids (scores=False: their labels and kinds alone)
Rows = Callable[..., pd.DataFrame]


def example_section(
    path: Path,
    table: pd.DataFrame | None,
    *,
    key: str,
    source: str = "eval",
    group: tuple[str, ...] | None = None,
) -> None:
    """The current example's detail, or how to open one. Its row and its neighbours' come
    from `table`, the page's example table (row i is example i), or, on a page that holds
    none (`table` None: a large run's Examples page), are read alone by predicate pushdown
    with `source`'s trace scores and the seed `group`'s easiness (`data.one_example`)."""
    st.subheader("One example")

    def rows(ids: list[int], *, scores: bool = True) -> pd.DataFrame:
        if table is None:
            return one_example.example_rows(path, ids, source=source, group=group, scores=scores)
        return table.iloc[ids]

    example_id = state.current_example(paging.n_examples(path) if table is None else len(table))
    if example_id is None:
        st.caption(
            "Open an example from any list or chart on this page, or type its id under "
            "“Example” in the sidebar (it stays in the URL)."
        )
        return
    if run_data.is_text(path):
        show_sequence(path, rows, example_id, key=key)
    else:
        show_example(path, rows, example_id, key=key)


def facts(row: pd.Series, *, text: bool = False) -> pd.DataFrame:
    """An example's labels (a sequence's kind) and scores in words: one row per fact,
    integers as integers, missing values as n/a, the memorization score with its 95%
    interval."""
    named = ("kind",) if text else ("kind", "label", "true_label")
    rows = [(label(c), value_text(c, row[c])) for c in named]
    for score in score_columns(row.to_frame().T):
        shown = value_text(score, row[score])
        if score == "mem_score" and pd.notna(row.get("mem_lo")):
            shown += f" (95% interval {row['mem_lo']:.2f} to {row['mem_hi']:.2f})"
        rows.append((label(score, text=text), shown))
    return pd.DataFrame(rows, columns=["fact", "value"])


def show_example(path: Path, rows: Rows, example_id: int, *, key: str) -> None:
    """One example (its row from `rows`): its input, labels and scores, trajectory, k-NN and
    nearest neighbours."""
    row = rows([example_id]).iloc[0]
    inputs = data.inputs(path)
    left, right = st.columns([1, 2])
    left.plotly_chart(
        charts.example_input(
            np.asarray(inputs[example_id]),
            title=f"example {example_id}",
            photo=data.photo_inputs(path),
        ),
        width="stretch",
        key=f"{key}_input",
    )
    # a static table: its cells wrap in the narrow column (a data grid would clip them)
    left.table(facts(row), hide_index=True)
    if score_columns(row.to_frame().T):
        left.caption("What each score means:", help=_score_help(path))
    source = state.source_used(data.trace_sources(path))
    traj = data.trajectory(path, example_id, source)
    if traj["correct"].notna().any():
        right.caption(f"Trajectory from the {SOURCES[source]}.")
        right.plotly_chart(charts.trajectory(traj.dropna()), width="stretch", key=f"{key}_traj")
    else:
        right.info(f"This run has no {SOURCES[source]} trace for this example.")
    membership_panel(path, example_id, right, key=key)
    _neighbours(path, example_id, rows, key=key)


def _score_help(path: Path) -> str:
    text = run_data.is_text(path)
    return "; ".join(f"{label(s, text=text)}: {m}" for s, m in score_meanings(path).items())


def _neighbours(path: Path, example_id: int, rows: Rows, *, key: str) -> None:
    """The example's k-NN predictions at each layer and its nearest training examples: its
    rows of knn_examples.parquet and neighbors.parquet read alone (`data.one_example`)."""
    if lacks_embeddings(path, "Nearest neighbours and k-NN predictions"):
        return
    knn = one_example.derived_rows(path, "knn_examples.parquet", [example_id])
    nbrs = one_example.derived_rows(path, "neighbors.parquet", [example_id])
    if knn is None or nbrs is None or not one_example.derived_size(path, "knn_examples.parquet"):
        st.info("Nearest neighbours and k-NN predictions are not computed for this run yet:")
        show_command(f"memdash analyze {shell_path(path)}")
        return
    mine = knn[["layer", "knn_pred", "dnn_pred", "agrees", "knn_is_true"]]
    epoch = f" at epoch {int(knn['epoch'].iloc[0])}" if len(knn) else ""  # the step's last
    st.markdown(
        f"**k-NN against the network**{epoch}: what a vote of the nearest training examples "
        "predicts at each layer, and whether the network agrees."
    )
    st.dataframe(mine.rename(columns=label), hide_index=True)
    near = nbrs.sort_values("rank").head(NEIGHBOURS)
    if near.empty:
        return
    st.markdown(
        f"**Nearest training examples** at layer `{near['layer'].iloc[0]}` "
        "(given label, true label in brackets, distance); open one to follow it"
    )
    labels = rows(near["neighbor_id"].astype(int).tolist(), scores=False)
    captions = [
        f"#{n.neighbor_id}: {lab} ({true}), {n.distance:.1f}"
        for n, lab, true in zip(
            near.itertuples(index=False), labels["label"], labels["true_label"], strict=True
        )
    ]
    ids = near["neighbor_id"].astype(int).tolist()
    cells = thumbnail_grid(path, ids, captions, per_row=6, width=70)
    open_buttons(cells, ids, key=f"{key}_neighbour")


# --- lists of examples: images as thumbnails, a text run's sequences as text -----------------


def example_grid(
    path: Path,
    ids: list[int],
    captions: list[str],
    *,
    per_row: int,
    width: int,
    epoch: int | None = None,
) -> list:
    """Examples in rows, each with its caption: thumbnails of images (`thumbnail_grid`, in
    rows of `per_row`), or a text run's sequences as token-coloured text (`text_grid`, at
    `epoch`); returns the cell of each, in order."""
    if run_data.is_text(path):
        return text_grid(path, ids, captions, per_row=TEXT_PER_ROW, epoch=epoch)
    return thumbnail_grid(path, ids, captions, per_row=per_row, width=width)


def token_epoch(path: Path, epoch: int | None = None) -> int | None:
    """The epoch whose per-token losses colour a text run's tokens: `epoch` if stored, else
    the last stored one (None: the run stored none)."""
    epochs = run_data.token_loss_epochs(path)
    if not epochs:
        return None
    return epoch if epoch in epochs else epochs[-1]


def suffix_name(row: pd.Series) -> str:
    """What a sequence's suffix is: a canary's (or reference's) secret, else "suffix"."""
    return "secret" if bool(row.get("is_canary", False)) else "suffix"


def token_legend(path: Path, epoch: int | None, *, suffix: str = "suffix (a canary's secret)"):
    """The legend of the token colours (0 to ln V nats at `epoch`) and of the marks."""
    if epoch is None:
        st.caption("This run stored no per-token losses: its tokens are drawn in grey.")
        return
    vocab = run_data.vocab_size(path)
    st.html(
        text_charts.loss_legend_html(math.log(vocab), epoch=epoch, vocab=vocab, suffix_name=suffix)
    )


def sequence_html(path: Path, example_id: int, epoch: int | None, **options) -> str:
    """One sequence as HTML (`charts.text.token_html`), its tokens coloured by their loss at
    `epoch` (grey where none is stored), its prefix and suffix marked."""
    row = one_example.example_row(path, int(example_id))  # its prefix, suffix, canary
    texts, losses = run_data.sequence_tokens(path, example_id, epoch)
    return text_charts.token_html(
        texts,
        losses,
        prefix_len=int(row["prefix_len"]),
        suffix_len=int(row["suffix_len"]),
        vmax=math.log(run_data.vocab_size(path)),
        suffix_name=suffix_name(row),
        **options,
    )


def text_grid(
    path: Path,
    ids: list[int],
    captions: list[str],
    *,
    per_row: int,
    epoch: int | None = None,
    legend: bool = True,
) -> list:
    """A text run's sequences in bordered cells, `per_row` to a row, each its caption and the
    first lines of its text, tokens coloured by their loss at `epoch` (the last stored one
    by default), under the colours' legend (unless one above says it); returns the cell of
    each, in order."""
    epoch = token_epoch(path, epoch)
    if legend:
        token_legend(path, epoch)
    cells = []
    for start in range(0, len(ids), per_row):
        row = st.columns(per_row, border=True)
        chunk = zip(ids[start : start + per_row], captions[start : start + per_row], strict=True)
        for cell, (example_id, caption) in zip(row, chunk, strict=False):
            head = f'<div style="font-size:0.8rem;color:#555555">{html.escape(caption)}</div>'
            body = sequence_html(
                path, example_id, epoch, max_chars=text_charts.GALLERY_CHARS, font_size="0.8rem"
            )
            cell.html(head + body)
            cells.append(cell)
    return cells


SELECTION_COLUMNS = ["example_id", "kind", "label", "true_label"]
LISTED = 10_000  # the selected examples sent to the browser's table (issue #27)
TEXT_SELECTION_COLUMNS = ["example_id", "kind", "text", "duplicates"]


def caption_of(row, *, text: bool) -> str:
    """A listed example's caption: id, kind and given label (a sequence's: id and kind)."""
    return f"#{row.example_id} {row.kind}" if text else f"#{row.example_id} {row.kind}: {row.label}"


def selection_list(path: Path, chosen: pd.DataFrame, *, key: str, thumbnails: int = 16) -> None:
    """The examples a box or lasso selected: thumbnails (a text run's sequences as text) of
    the first ones and a table whose row, clicked, opens that example."""
    if chosen.empty:
        return
    text = run_data.is_text(path)
    more = f" (the first {LISTED:,} listed)" if len(chosen) > LISTED else ""
    st.markdown(f"**{len(chosen):,} selected examples**{more}: click a row to open one below")
    chosen = chosen.head(LISTED)  # a lasso over a million points selects hundreds of thousands
    first = chosen.head(TEXT_PER_ROW * 2 if text else thumbnails)
    captions = [caption_of(r, text=text) for r in first.itertuples(index=False)]
    example_grid(path, first["example_id"].tolist(), captions, per_row=8, width=64)
    listed = TEXT_SELECTION_COLUMNS if text else SELECTION_COLUMNS
    columns = [c for c in listed if c in chosen.columns] + score_columns(chosen)
    ids = chosen["example_id"].astype(int).tolist()
    st.dataframe(
        chosen[columns],
        hide_index=True,
        on_select=lambda: state.open_selected(key, ids),
        selection_mode="single-row",
        key=key,
        column_config=table_config(columns, text=text),
    )


# --- one sequence of a text run ----------------------------------------------------------------


def show_sequence(path: Path, rows: Rows, example_id: int, *, key: str) -> None:
    """One sequence of a text run (its row from `rows`): its whole text, tokens coloured by
    their loss at the epoch of a slider (over the epochs with per-token losses), its facts at
    that epoch, its trajectory, and its nearest training sequences in a recorded embedding."""
    row = rows([example_id]).iloc[0]
    epochs = run_data.token_loss_epochs(path)
    epoch = epochs[-1] if epochs else None
    if len(epochs) > 1:
        epoch = st.select_slider(
            "Epoch of the token losses",
            epochs,
            value=epochs[-1],
            key=f"{key}_token_epoch",
            help="the epochs whose per-token losses the run stored (tokens/epoch_EEE.npy)",
        )
    token_legend(path, epoch, suffix=suffix_name(row))
    st.html(sequence_html(path, example_id, epoch))
    _, losses = run_data.sequence_tokens(path, example_id, epoch)
    at = data.trajectory(path, example_id, "eval", run_data.TEXT_TRAJECTORY_COLUMNS)
    left, right = st.columns([1, 2])
    left.table(sequence_facts(row, losses, at, epoch), hide_index=True)
    left.caption("What each score means:", help=_score_help(path))
    source = state.source_used(data.trace_sources(path))
    traj = data.trajectory(path, example_id, source, run_data.TEXT_TRAJECTORY_COLUMNS)
    traj = traj.dropna(subset=["loss"])
    right.caption(
        f"Trajectory from the {SOURCES[source]}: extractable = greedy decoding from the "
        f"first {int(row['prefix_len'])} tokens reproduces the next {int(row['suffix_len'])}."
    )
    right.plotly_chart(
        text_charts.sequence_trajectory(traj, epoch=epoch), width="stretch", key=f"{key}_traj"
    )
    _text_neighbours(path, rows, example_id, epoch, key=key)


def sequence_facts(
    row: pd.Series, losses: np.ndarray, trace: pd.DataFrame, epoch: int | None
) -> pd.DataFrame:
    """A sequence's facts: kind, copies per epoch, tokens, prefix and suffix; at `epoch` its
    mean token loss and log-perplexity (from the token losses drawn, `losses` in nats) and
    whether it was extractable (the eval trace, one row per epoch); then its scores."""
    rows = [
        ("kind", str(row["kind"])),
        (label("duplicates"), value_text("duplicates", row["duplicates"])),
    ]
    if bool(row.get("is_canary", False)):
        rows.append((label("secret"), str(row["secret"])))
    rows.append((label("n_tokens"), value_text("n_tokens", row["n_tokens"])))
    rows.append(("prefix, suffix (tokens)", f"{int(row['prefix_len'])}, {int(row['suffix_len'])}"))
    if epoch is not None and np.isfinite(losses).any():
        rows.append((f"{label('loss', text=True)}, epoch {epoch}", f"{np.nanmean(losses):.3f}"))
        p, s = int(row["prefix_len"]), int(row["suffix_len"])
        if s and np.isfinite(losses[p : p + s]).any():
            suffix = f"{suffix_name(row)}'s mean token loss (nats), epoch {epoch}"
            rows.append((suffix, f"{np.nanmean(losses[p : p + s]):.3f}"))
        bits = float(np.nansum(losses)) / math.log(2)
        rows.append((f"{label('log_perplexity')}, epoch {epoch}", f"{bits:.1f}"))
        now = trace[trace["epoch"] == epoch]
        if len(now) and pd.notna(now["correct"].iloc[0]):
            rows.append(
                (f"extractable at epoch {epoch}", "yes" if now["correct"].iloc[0] else "no")
            )
    table = facts(row, text=True).iloc[1:]  # its scores (the kind is above)
    return pd.concat([pd.DataFrame(rows, columns=["fact", "value"]), table], ignore_index=True)


def _text_neighbours(
    path: Path, rows: Rows, example_id: int, epoch: int | None, *, key: str
) -> None:
    """The nearest training sequences in a recorded embedding (layer and epoch chosen), drawn
    as text at the detail's epoch, each with an open button."""
    layers = run_data.embedding_layers(path)
    if not layers:
        st.caption(
            "Nearest sequences need embeddings, which this run did not record (train with "
            "`--embed-layers out --embed-epochs 0,10`)."
        )
        return
    left, right = st.columns(2)
    at = left.selectbox("Embedding epoch", list(layers), index=len(layers) - 1, key=f"{key}_nn_e")
    names = layers[at]
    layer = right.selectbox("Layer", names, index=len(names) - 1, key=f"{key}_nn_layer")
    near = run_data.nearest_sequences(path, example_id, layer, at, TEXT_NEIGHBOURS)
    pool = data.run_meta(path)["config"].get("record", {}).get("embed_pool", "last")
    where = "at its last token" if pool == "last" else "averaged over its tokens"
    st.markdown(
        f"**Nearest training sequences** at layer `{layer}`, epoch {at}: Euclidean distance "
        f"between the layer's hidden states {where}; open one to follow it"
    )
    ids = near["neighbor_id"].astype(int).tolist()
    kinds = rows(ids, scores=False)["kind"].tolist()
    captions = [
        f"#{n.neighbor_id} {kind}, distance {n.distance:.2f}"
        for n, kind in zip(near.itertuples(index=False), kinds, strict=True)
    ]
    st.caption(
        "Their tokens coloured by their loss at the epoch above (epoch "
        f"{epoch}), as in the legend above."
    )
    cells = text_grid(path, ids, captions, per_row=TEXT_PER_ROW, epoch=epoch, legend=False)
    open_buttons(cells, ids, key=f"{key}_neighbour")
