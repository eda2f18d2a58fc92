"""The runs under the run roots: where the roots are, the runs found there, one summary row
per run, and the names the dashboard lists them by.

Pages ask for runs by their index in the list of discovered runs; a name that comes from
the browser is looked up in that list and never joined into a path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.store import Run, RunFormatError, discover_runs
from memdash.analysis.tables.runs import unique_names
from memdash.dashboard.data.stamps import run_stamp

ROOTS_ENV = "MEMDASH_ROOTS"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "sample_runs"


def run_roots() -> tuple[str, ...]:
    """The run roots: $MEMDASH_ROOTS (set by `memdash dashboard`), else sample_runs/."""
    env = os.environ.get(ROOTS_ENV)
    if env:
        return tuple(str(Path(p).resolve()) for p in env.split(os.pathsep) if p)
    return (str(DEFAULT_ROOT),)


@st.cache_data(ttl=10, show_spinner=False)
def discovered(roots: tuple[str, ...]) -> list[str]:
    return [str(p) for p in discover_runs(roots)]


def run_summaries(roots: tuple[str, ...]) -> pd.DataFrame:
    """One row per discovered run; a broken run gets status ``error`` and its message."""
    rows = [_summary(path, run_stamp(Path(path))) for path in discovered(roots)]
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    table["run"] = unique_names(table["run"].tolist(), table["path"].tolist())
    return table


SUMMARY_COLUMNS = [
    "run",
    "status",
    "dataset",
    "model",
    "corruption",
    "noise",
    "epochs",
    "train acc",
    "clean acc",
    "flipped acc",
    "test acc",
    "dp_epsilon",  # a DP run's accountant (run.json), None for the others
    "dp_delta",
    "analyses",
    "modality",
    "canaries",
    "error",
    "path",
]
# the summary columns no table shows: what the pages look runs up by
HIDDEN_COLUMNS = ("analyses", "modality", "canaries", "error", "path")


@st.cache_data(show_spinner=False, max_entries=256)
def _summary(path: str, stamp: float) -> dict:
    base = {c: None for c in SUMMARY_COLUMNS} | {"run": Path(path).name, "path": path}
    try:
        run = Run.open(path)
    except RunFormatError as err:
        return base | {"status": "error", "error": str(err)}
    try:
        run.check_parts()
    except RunFormatError as err:
        return base | {"run": run.name, "status": "error", "error": str(err)}
    cfg = run.config
    data, model = cfg.get("data", {}), cfg.get("model", {})
    last = run.meta.get("last_epoch", {})
    planned = run.meta.get("epochs_planned")
    return (
        base
        | {
            "run": run.name,
            "status": run.status,
            "dataset": data.get("dataset", "own loop"),
            "model": model.get("name", ""),
            "corruption": data.get("corruption") if data.get("noise") else "none",
            "noise": data.get("noise", 0.0),
            "epochs": f"{run.epochs_completed}/{planned}" if planned else str(run.epochs_completed),
            "train acc": last.get("train_acc"),
            "clean acc": last.get("clean_acc"),
            "flipped acc": last.get("noisy_acc"),
            "test acc": last.get("test_acc"),
            "dp_epsilon": run.meta.get("dp_epsilon"),
            "dp_delta": run.meta.get("dp_delta"),
            # how much there is to explore: derived steps, plus one for recorded embeddings
            "analyses": len(run.derived_manifest()) + bool(run.embedding_index()),
            "modality": "text" if run.is_text else "classifier",
            "canaries": int(data.get("canaries", 0) or 0),
        }
        | (_text_summary(run) if run.is_text else {})
    )


def _text_summary(run: Run) -> dict[str, str]:
    """A language model's run in the summary's words: what it read (the corpus or file, its
    sequences, the tokenizer) as its dataset, the language model as its model, what was
    inserted into its text (canaries, duplicated sequences) as its corruption; no noise."""
    data, model = run.config.get("data", {}), run.config.get("model", {})
    source = Path(data["path"]).name if data.get("path") else data.get("text_corpus", "text")
    tokenizer = run.meta.get("text", {}).get("tokenizer", data.get("tokenizer", ""))
    name = model.get("name", "")
    if model.get("model_path"):
        name += f" {Path(model['model_path']).name}"
    inserted = [w for w, key in INSERTED.items() if data.get(key)]
    return {
        "dataset": f"text: {source}, {run.n_examples():,} sequences, {tokenizer} tokenizer",
        "model": f"language model: {name}",
        "corruption": ", ".join(inserted) or "none",
        "noise": None,
    }


# what a text run may have inserted into its training text, and the config field that says so
INSERTED = {"canaries": "canaries", "duplicated sequences": "duplicate_sequences"}


def text_runs(roots: tuple[str, ...]) -> list[Path]:
    """The complete runs of language models under the roots, those with canaries first (then
    the most analyzed): the runs the Secret Sharer's lesson reads."""
    summaries = run_summaries(roots)
    rows = summaries[(summaries["modality"] == "text") & (summaries["status"] == "complete")]
    rows = rows.assign(has_canaries=rows["canaries"] > 0)
    rows = rows.sort_values(["has_canaries", "analyses"], ascending=False, kind="stable")
    return [Path(p) for p in rows["path"]]


def run_path(roots: tuple[str, ...], index: int) -> Path:
    """The path of the index-th discovered run (the only way a page names a run)."""
    paths = discovered(roots)
    if not 0 <= index < len(paths):
        raise IndexError(f"no run number {index}; {len(paths)} runs found")
    return Path(paths[index])


# runs listed on the Runs page but shown by no other page: damaged, or nothing recorded yet
UNREADABLE = ("error", "created")


def readable_paths(roots: tuple[str, ...]) -> list[str]:
    """The discovered runs that read (the summaries' quick check): a damaged one is listed
    on the Runs page with status error, never analyzed."""
    summaries = run_summaries(roots)
    return summaries.loc[~summaries["status"].isin(UNREADABLE), "path"].tolist()
