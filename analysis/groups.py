"""Seed groups: runs whose configs differ only in the seed of the model's initialization and
data order (the data, labels, model and training the same), as `memdash train --seeds`
makes them. Studies over initializations (Arpit et al. 2017; Memorization Dissection)
read a group's runs together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from memdash.analysis.runs import Run

# run config fields that do not make two runs different experiments
_NOT_THE_EXPERIMENT = ("seed", "command", "record")


def group_key(config: dict) -> str:
    """What a run's seed group is defined by: its config without the run's seed, the command
    line and what was recorded, hashed (16 hex digits). The data seed stays in: runs of a
    group train on the same examples with the same labels."""
    kept = {k: v for k, v in config.items() if k not in _NOT_THE_EXPERIMENT}
    data = dict(kept.get("data", {}))
    if data.get("seed") is None:  # the data followed the run's seed
        data["seed"] = config.get("seed", 0)
    kept["data"] = data
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def seed_groups(runs: Iterable[Run]) -> dict[str, list[Run]]:
    """Groups of two or more complete runs that differ only in their seed, keyed by
    `group_key`: one run per seed (the first given, when a seed was run twice), sorted by
    seed."""
    found: dict[str, dict[int, Run]] = {}
    for run in runs:
        if run.status == "complete" and not run.meta.get("estimate_only"):
            found.setdefault(group_key(run.config), {}).setdefault(run.config.get("seed", 0), run)
    return {
        key: [by_seed[s] for s in sorted(by_seed)]
        for key, by_seed in found.items()
        if len(by_seed) >= 2
    }
