"""Seed groups: runs whose configs differ only in the seed of the model's initialization and
data order (the data, labels, model and training the same), as `memdash train --seeds`
makes them. Studies over initializations (Arpit et al. 2017; Memorization Dissection)
read a group's runs together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from memdash.analysis.store import Run

# run config fields that do not make two runs different experiments
_NOT_THE_EXPERIMENT = ("seed", "command", "record")


def group_key(config: dict) -> str:
    """What a run's seed group is defined by: its config without the run's seed, the command
    line and what was recorded, hashed (16 hex digits). The data seed stays in: runs of a
    group train on the same examples with the same labels. An own loop's free-form config
    (no ``data`` section of memdash's shape) groups by everything but its ``seed``."""
    kept = {k: v for k, v in config.items() if k not in _NOT_THE_EXPERIMENT}
    data = kept.get("data")
    if isinstance(data, dict) and data.get("seed") is None:  # the data followed the run's seed
        kept["data"] = data | {"seed": config.get("seed", 0)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def training_labels(config: dict) -> str:
    """What a run's labels were, in the words of the studies: ``true labels`` (no
    corruption), ``random labels`` (every label drawn at random) or, e.g.,
    ``20% symmetric labels`` (the share and kind of corruption)."""
    data = config.get("data")
    data = data if isinstance(data, dict) else {}  # an own loop's config: free-form
    noise = data.get("noise") or 0.0
    if noise == 0:
        return "true labels"
    if noise == 1.0 and data.get("corruption") == "random_labels":
        return "random labels"
    return f"{noise:.0%} {data.get('corruption', 'corrupted')} labels"


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


def group_names(groups: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """The same groups keyed by a name a reader knows them by: the folder that holds all of a
    group's runs and nothing else of another group (``--seeds`` writes ``OUT/seed_N``, so the
    name is OUT's), else the first run's name with the number of seeds; repeated names get
    ``(2)``, ``(3)``, in the order given."""
    parents = {key: {run.path.parent for run in group} for key, group in groups.items()}
    owners: dict[object, int] = {}
    for found in parents.values():
        for parent in found:
            owners[parent] = owners.get(parent, 0) + 1
    named: dict[str, list[Run]] = {}
    for key, group in groups.items():
        (parent, *others) = sorted(parents[key])
        if not others and owners[parent] == 1 and parent.name:
            name = parent.name
        else:
            name = f"{group[0].name} ({len(group)} seeds)"
        unique, n = name, 1
        while unique in named:
            n += 1
            unique = f"{name} ({n})"
        named[unique] = group
    return named
