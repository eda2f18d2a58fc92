"""Runs side by side: the name each run is known by among others, and one row per run of what
its run.json says (`memdash sql`'s ``runs`` view; the dashboard lists runs by the same
names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from memdash.analysis.store import Run, RunFormatError
from memdash.analysis.store.groups import group_names, seed_groups, training_labels

# column -> pandas dtype of `runs_frame`, in its order
RUNS_COLUMNS = {
    "run": "string",  # the run's unique name (`unique_names`): the `run` of every other view
    "name": "string",  # run.json's name
    "path": "string",  # the run directory, absolute
    "status": "string",  # created, running, complete, failed
    "modality": "string",  # classifier or text
    "dataset": "string",
    "model": "string",
    "corruption": "string",  # none when no label is corrupted
    "noise": "Float64",  # the share of corrupted training labels
    "labels": "string",  # in the studies' words: true labels, 20% symmetric labels, ...
    "canaries": "Int64",
    "seed": "Int64",  # the run's seed (initialization and data order)
    "data_seed": "Int64",  # the data's own seed (null: the run's)
    "seed_group": "string",  # the seed group's name (runs differing only in seed), or null
    "epochs": "Int64",  # epochs completed
    "epochs_planned": "Int64",
    "n_examples": "Int64",
    "train_acc": "Float64",  # run.json's last_epoch: accuracies after the last epoch
    "clean_acc": "Float64",
    "noisy_acc": "Float64",
    "test_acc": "Float64",
    "dp_epsilon": "Float64",  # DP-SGD runs: the epsilon spent (null for the others)
    "dp_delta": "Float64",
    "estimate_only": "boolean",  # made by `memdash estimate --out`: no trace
    "created_at": "string",
    "memdash_version": "string",
}


def unique_names(names: list[str], paths: list[str]) -> list[str]:
    """Run names as runs are listed side by side: a name that several runs share gets its
    folder, or, when their folders are named alike too (``seed_0`` of two seed groups), the
    folder above (``seed_0 (digits_true)``), and, if still shared, a number: each name (in a
    URL too) means one run."""
    folders: dict[str, list[Path]] = {}
    for name, path in zip(names, paths, strict=True):
        folders.setdefault(name, []).append(Path(path))
    out = []
    for name, path in zip(names, paths, strict=True):
        shared = folders[name]
        if len(shared) == 1:
            out.append(name)
            continue
        alike = len({p.name for p in shared}) < len(shared)
        out.append(f"{name} ({Path(path).parent.name if alike else Path(path).name})")
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            out[i] = f"{name} #{seen[name]}"
    return out


def run_names(runs: list[Run]) -> list[str]:
    """Each run's unique name (`unique_names` of run.json's names and the paths)."""
    return unique_names([run.name for run in runs], [str(run.path) for run in runs])


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run (columns `RUNS_COLUMNS`, in their order and dtypes), from run.json:
    the unique name, the config's data and model, the seed group, the last epoch's
    accuracies, DP-SGD's epsilon; null where a run's json does not say (a user's own loop)."""
    groups = group_names(seed_groups(runs))
    group_of = {run.path: name for name, members in groups.items() for run in members}
    rows = [
        _row(run, name, group_of.get(run.path))
        for run, name in zip(runs, run_names(runs), strict=True)
    ]
    frame = pd.DataFrame(rows, columns=list(RUNS_COLUMNS))
    return frame.astype(RUNS_COLUMNS)


def _row(run: Run, name: str, group: str | None) -> dict[str, Any]:
    config = run.config
    data, model = _section(config, "data"), _section(config, "model")
    last = run.meta.get("last_epoch") or {}
    noise = data.get("noise")
    return {
        "run": name,
        "name": run.name,
        "path": str(run.path),
        "status": run.status,
        "modality": "text" if run.is_text else "classifier",
        "dataset": data.get("dataset"),
        "model": model.get("name"),
        "corruption": data.get("corruption") if noise else "none",
        "noise": noise,
        "labels": training_labels(config),
        "canaries": data.get("canaries"),
        "seed": config.get("seed"),
        "data_seed": data.get("seed"),
        "seed_group": group,
        "epochs": run.epochs_completed,
        "epochs_planned": run.meta.get("epochs_planned"),
        "n_examples": _n_examples(run),
        **{key: last.get(key) for key in ("train_acc", "clean_acc", "noisy_acc", "test_acc")},
        "dp_epsilon": run.meta.get("dp_epsilon"),
        "dp_delta": run.meta.get("dp_delta"),
        "estimate_only": bool(run.meta.get("estimate_only", False)),
        "created_at": run.meta.get("created_at"),
        "memdash_version": run.meta.get("memdash_version"),
    }


def _n_examples(run: Run) -> int | None:
    """The run's number of examples (examples.parquet's rows), None before it is written."""
    try:
        return run.n_examples()
    except RunFormatError:
        return None


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    """A config section, {} when a user's own loop's free-form config has none of that shape."""
    value = config.get(key)
    return value if isinstance(value, dict) else {}
