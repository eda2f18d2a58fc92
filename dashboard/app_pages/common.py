"""What several pages share: choosing a run, and the direction of every score (and what it
means on a text run)."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

from memdash.analysis.store import RunFormatError
from memdash.dashboard import charts, data, state
from memdash.dashboard.charts.density import is_density
from memdash.dashboard.charts.selection import in_selection, selection_shapes
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import (
    DIRECTIONS,
    HIGHER,
    INTEGER_COLUMNS,
    direction_text,
    label,
    md_text,
)
from memdash.dashboard.palette import SPARE_COLORS, STUDY_COLORS

# score -> its one-line meaning; which end pages flag and rank first, and which end means
# memorized (if any), come from the label dictionary (labels.DIRECTIONS, labels.memorized_end)
SCORES: dict[str, str] = {
    "mem_score": "held-out memorization (Feldman & Zhang): in- minus out-models' accuracy",
    # a text estimate's (Zhang et al. 2021), derived/counterfactual.parquet
    "cf_mem_accuracy": "counterfactual memorization: in- minus out-models' mean token accuracy",
    "cf_mem_loglik": "counterfactual memorization: in- minus out-models' log-likelihood (nats)",
    "forgetting_events": "times the example went from right to wrong (Toneva et al.)",
    "confidence": "mean probability of the given label over epochs (data maps)",
    "variability": "std of that probability over epochs (data maps)",
    "correctness": "share of epochs the example was right",
    "aum": "area under the margin (Pleiss et al.): low = likely mislabeled",
    "mean_loss": "mean loss over epochs",
    "learned_epoch": "epoch from which it stays right",
    "first_learned_epoch": "first epoch it was right",
    "neurons_zeroed": "hidden units zeroed to flip it (Maini et al.): few = memorized",
    "heldout_accuracy": "accuracy of the models that did not train on it",
    "c_score": "expected held-out accuracy over subset ratios (Jiang et al.)",
    "easiness": (
        "share of the seed group's runs right on it after epoch 1 (Arpit et al.): low = hard "
        "in every initialization"
    ),
    "vulnerability": (
        "LiRA (Carlini et al.): share of the models trained on it that online LiRA calls a "
        "member at the threshold of 1% false positives"
    ),
}


# on a text run the trace's `correct` is extractable (Carlini et al. 2023) and its loss the
# mean token loss: the trace scores mean what these say there
TEXT_SCORES: dict[str, str] = SCORES | {
    "forgetting_events": "times the sequence went from extractable to not extractable",
    "confidence": "mean over epochs of its geometric-mean token probability, exp(-loss)",
    "variability": "std over epochs of that probability",
    "correctness": "share of epochs it was extractable",
    "aum": "mean over epochs of its mean token margin (the token's logit minus the largest other)",
    "mean_loss": "mean over epochs of its mean token loss",
    "learned_epoch": "epoch from which it stays extractable",
    "first_learned_epoch": "first epoch it was extractable",
}


def score_meanings(path: Path) -> dict[str, str]:
    """Each score's one-line meaning as it reads on this run (`TEXT_SCORES` on a text run)."""
    return TEXT_SCORES if run_data.is_text(path) else SCORES


def score_help(scores: list[str], path: Path) -> str:
    """The meaning and direction of each of `scores`, for a widget's help."""
    text, meanings = run_data.is_text(path), score_meanings(path)
    return "; ".join(f"{label(s, text=text)}: {meanings[s]} ({direction_text(s)})" for s in scores)


UNTRAINED_KINDS = ("test", "reference")


def trained_only(table: pd.DataFrame, container, *, key: str) -> pd.DataFrame:
    """The examples that were trained on, unless the user ticks the toggle (drawn in
    `container`) to include test examples and reference canaries."""
    include = container.toggle(
        "Include examples never trained on",
        value=False,
        key=key,
        help="test examples and reference canaries: a model cannot have memorized them",
    )
    return table if include else table[~table["kind"].isin(UNTRAINED_KINDS)]


def table_config(columns: list[str], *, text: bool = False) -> dict:
    """st.dataframe column settings: human labels (as a text run means them if `text`),
    integers as integers, score help; a text run's text in a wide column."""
    meanings = TEXT_SCORES if text else SCORES
    config = {}
    for column in columns:
        name = label(column, text=text)
        if column in INTEGER_COLUMNS:
            config[column] = st.column_config.NumberColumn(name, format="%d")
        elif column in meanings:
            config[column] = st.column_config.NumberColumn(
                name, help=meanings[column], format="%.3f"
            )
        elif column == "text":
            config[column] = st.column_config.TextColumn(
                name, width="large", help="the decoded sequence (line breaks shown as spaces)"
            )
        else:
            config[column] = st.column_config.Column(name)
    return config


def score_columns(table: pd.DataFrame) -> list[str]:
    """The known scores a table holds, in SCORES order."""
    return [c for c in SCORES if c in table.columns and table[c].notna().any()]


def flagged_first(table: pd.DataFrame, score: str, n: int) -> pd.DataFrame:
    """The n examples at the end of `score` that the label dictionary flags (`DIRECTIONS`:
    the memorized end of a memorization score, the hard, atypical end of any other), NaN
    last."""
    higher = DIRECTIONS[score.removesuffix("_train")].flagged == HIGHER
    return (
        table.dropna(subset=[score]).sort_values(score, ascending=not higher, kind="stable").head(n)
    )


# what reading a damaged run raises (the run store names the file in RunFormatError)
UNREADABLE = (RunFormatError, OSError, pa.ArrowException, ValueError)


def guarded(render: Callable[[], None]) -> Callable[[], None]:
    """A page that, when a run's file cannot be read, says which run and file (and that the
    other runs still work) instead of showing a traceback."""

    @functools.wraps(render)
    def page() -> None:
        try:
            render()
        except UNREADABLE as err:
            st.error(
                f"This page cannot read run **{md_text(state.current_name())}**: "
                f"{md_text(err)}. The other runs "
                "still work: choose one in the sidebar. `memdash info RUN` checks every file."
            )

    return page


def drawn_first(first: Callable[[], None], *, above: Callable[[], None]) -> None:
    """Draw `above`'s elements above `first`'s, but run `first` first: what the page is
    opened for (its chart, a linked example) reaches the browser before the tables above it
    are computed and sent (benchmarks/first_chart.py; issue #28)."""
    slot = st.container()
    first()
    with slot:
        above()


def choose_run(roots: tuple[str, ...]) -> Path | None:
    """The current run (the sidebar's, shared by every page and kept in the URL), named under
    the page title; None (with a message) when there is no readable run."""
    summaries = data.run_summaries(roots)
    path = state.current_run(summaries)
    if path is None:
        st.info("No readable run under " + ", ".join(roots) + ". Record one with `memdash train`.")
        return None
    st.caption(f"Run **{md_text(state.run_name(summaries, path))}** (change it in the sidebar)")
    return path


def lacks_embeddings(path: Path, what: str) -> bool:
    """Say so (and what helps: training with embeddings, not `memdash analyze`) when the run
    recorded no embeddings."""
    if data.has_embeddings(path):
        return False
    layers = "block1,out" if run_data.is_text(path) else "fc2,out"  # a language model's
    st.info(
        f"{what} needs embeddings, which this run did not record: train it again with "
        f"`memdash train ... --embed-layers {layers} --embed-epochs 0,10,30` (the layers and "
        "epochs to keep), then `memdash analyze`."
    )
    return True


def offer_analysis(path: Path, what: str, steps: list[str], command: str, key: str) -> None:
    """Say what is missing and which command computes it, with a button that computes it here
    (through the same pipeline, a progress bar per step)."""
    st.info(f"{what} not computed for this run yet: compute it here, or run `{command}`:")
    show_command(f"{command} {shell_path(path)}")
    if st.button(f"Compute {', '.join(steps)} now", key=key):
        bar = st.progress(0.0, text="starting")
        done: list[str] = []

        def report(step: str, state: str) -> None:
            if state in ("computed", "up to date"):
                done.append(step)
            bar.progress(len(done) / len(steps), text=f"{step}: {state}")

        try:
            data.compute(path, steps, report)
        except (ValueError, OSError) as err:  # RunFormatError is a ValueError
            st.error(f"Could not compute {', '.join(steps)}: {md_text(err)}")
            return
        st.rerun()


def shell_path(path: Path | str) -> str:
    """A run's path as the user would type it where they started the dashboard: relative to
    the working directory when the run lies under it, else whole (as the roots were given),
    quoted for the shell."""
    path = Path(path)
    try:
        shown = path.relative_to(Path.cwd().resolve())
    except ValueError:
        shown = path
    return shlex.quote(str(shown))


def show_command(command: str) -> None:
    """A command to copy: a code block (unescaped, with a copy button), never inline text."""
    st.code(command, language="bash")


def thumbnail_grid(
    path: Path, ids: list[int], captions: list[str], *, per_row: int, width: int
) -> list:
    """Thumbnails of examples' inputs in rows of `per_row`, each row its own columns; returns
    the cell of each, in order (a button put in a cell sits right under its image)."""
    inputs, photo = data.inputs(path), data.photo_inputs(path)
    cells = []
    for start in range(0, len(ids), per_row):
        row = st.columns(per_row)
        chunk = zip(ids[start : start + per_row], captions[start : start + per_row], strict=True)
        for cell, (example_id, caption) in zip(row, chunk, strict=False):
            # enlarged by whole pixels, shown at its own size, sent losslessly (PNG: a JPEG
            # smears the blocks' edges): pixels stay pixels
            image = charts.thumbnail(np.asarray(inputs[example_id]), photo=photo, width=width)
            cell.image(
                image, caption=caption, width=image.shape[1], clamp=True, output_format="PNG"
            )
            cells.append(cell)
    return cells


def open_buttons(cells: list, ids: list[int], *, key: str) -> None:
    """An "open" button under each thumbnail cell, making its example the current one."""
    for cell, example_id in zip(cells, ids, strict=True):
        cell.button(
            "open",
            key=f"{key}_{example_id}",
            on_click=state.open_example,
            args=(int(example_id),),
        )


def selectable_scatter(
    figure, table: pd.DataFrame, key: str, *, x: str | None = None, y: str | None = None
) -> pd.DataFrame:
    """Draw a scatter of examples whose box, lasso or click selection reruns the page (a
    single clicked point becomes the current example); return the rows of `table` selected
    (none: empty). A density chart (`charts.density`: its points a sample of the rows)
    selects by the box's or lasso's geometry every row inside, drawn as a point or not
    (`x`, `y`: the columns of `table` it draws; required then); a click there opens the
    point clicked, a box or lasso opens none."""
    density = is_density(figure)
    if density and (x is None or y is None):
        raise ValueError("a density chart selects by geometry: pass the x and y columns drawn")

    def opened() -> None:  # a plotly event carries points, never table rows: no ids needed
        shapes = selection_shapes(st.session_state.get(key))
        if not (density and any(shapes)):
            state.open_selected(key, [])

    event = st.plotly_chart(
        figure,
        width="stretch",
        on_select=opened,
        selection_mode=("box", "lasso", "points"),
        key=key,
    )
    inside = in_selection(table[x], table[y], event) if density else None
    if inside is not None:
        return table[inside]
    return table[table["example_id"].isin(charts.selected_example_ids(event))]


def density_note(figure, n: int, *, text: bool = False) -> None:
    """Under a density chart, say how its `n` examples are drawn and what a selection lists."""
    if not is_density(figure):
        return
    noun = "sequences" if text else "examples"
    st.caption(
        f"All {n:,} {noun} are drawn: the shading is their density (each small area coloured "
        "by its examples' mix of colours, or their mean score, and darker the more it holds); "
        "over it a seeded sample of them as points to hover and click (every kind kept). A box "
        f"or lasso lists every one of the {noun} inside, sampled or not."
    )


def not_for_text(path: Path, sentence: str) -> bool:
    """On a text run, say in one sentence why the page does not apply (instead of a compute
    button that would fail) and return True; False on a classifier's run."""
    if not run_data.is_text(path):
        return False
    st.info(sentence)
    return True


def chosen_curves(paths: list[Path]) -> pd.DataFrame:
    """Accuracy and loss curves of the runs from the chosen trace (one trace for all: the eval
    pass unless every run recorded the chosen one), with a caption saying which. The test
    curve always comes from the eval pass, the only one that sees the test set."""
    common = set.intersection(*(set(data.trace_sources(p)) for p in paths))
    used = state.source_used(common)
    frames = []
    for path in paths:
        curves = data.curves(path, used)
        if used != "eval":
            test = data.curves(path, "eval")
            curves = pd.concat([curves, test[test["group"] == "test"]], ignore_index=True)
        frames.append(curves)
    note = state.source_note(used)
    if used != "eval":
        note = note.replace(". Switch", "; test accuracy from the end-of-epoch eval pass. Switch")
    st.caption(note)
    return pd.concat(frames, ignore_index=True)


def group_colors(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """A colour per seed group (name -> its runs' paths): a group trained on true labels in
    the clean examples' colour, one on random labels in the flipped examples' (the first
    such group of each), any other a colour of its own."""
    colors: dict[str, str] = {}
    spare = 0
    for name, paths in groups.items():
        color = STUDY_COLORS.get(data.group_labels(Path(paths[0])))
        if not color or color in colors.values():
            color, spare = SPARE_COLORS[spare % len(SPARE_COLORS)], spare + 1
        colors[name] = color
    return colors


def study_groups(paths: dict) -> dict[str, tuple[str, ...]]:
    """The two seed groups of the studies (`data.study_paths`), named by their labels."""
    return {"true labels": paths["true_group"], "random labels": paths["random_group"]}


def easiness_counts(groups: dict[str, tuple[str, ...]], epoch: int) -> pd.DataFrame:
    """Per group and training example, how many of the group's seeds get it right after
    `epoch`: columns ``labels`` (the group's name), ``seeds`` and ``of`` (the group's size)."""
    rows = []
    for name, paths in groups.items():
        table = data.easiness(paths, epoch)
        seeds = np.rint(table["easiness"].to_numpy() * len(paths)).astype(int)
        rows.append(pd.DataFrame({"labels": name, "seeds": seeds, "of": len(paths)}))
    return pd.concat(rows, ignore_index=True)


def easiness_chart(counts: pd.DataFrame, group: str = "labels"):
    """Histograms of how many seeds get each example right (columns ``seeds`` and ``of``,
    as `easiness_counts` makes them), one per value of `group`, a bar per count."""
    figure = charts.histograms(counts, value="seeds", group=group)
    return figure.update_xaxes(range=[-0.5, counts["of"].max() + 0.5], dtick=1)


def pretraining_chart(starts: dict[str, str], group: str = "test"):
    """One accuracy curve (eval pass) per start of random-label pre-training (start name ->
    run path) for one curve group: ``test`` or ``train (clean)``."""
    frames = []
    for start, path in starts.items():
        curves = data.curves(Path(path), "eval")
        rows = curves[curves["group"] == group]
        frames.append(
            pd.DataFrame({"start": start, "epoch": rows["epoch"], "accuracy": rows["accuracy"]})
        )
    return charts.lines(
        pd.concat(frames, ignore_index=True),
        x="epoch",
        y="accuracy",
        color="start",
        title=f"{group} accuracy, true labels",
    )
