"""Which runs the findings read: `roles` (single runs, by what their configs say) and
`study_roles` (seed groups and run pairs), with the run-selection helpers they share.

The roles: ``clean`` (no corruption), ``noise`` (symmetric label noise, no dropout),
``dropout`` (the same with dropout), ``tied`` (example-tied dropout), ``random`` (random
labels), ``canaries`` (a run with canaries), ``text`` (a language model's run), ``dp`` (a
run trained with DP-SGD, which takes no other role); the study
roles: ``true_group`` and ``random_group`` (seed groups), ``pretrained`` and its
``scratch`` twin, ``widths`` (a width family: runs alike but for their hidden widths).
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from memdash.analysis.store import Run

_INIT_FIELDS = ("init_from", "init_epoch", "reinit")


def roles(runs: list[Run]) -> dict[str, Run]:
    """Each role's run (the first complete run that fits it)."""
    out: dict[str, Run] = {}
    for run in runs:
        if run.status != "complete" or run.meta.get("estimate_only"):
            continue
        if run.is_text:  # a language model's run: the text findings' role, no classifier's
            out.setdefault("text", run)
            continue
        if run.config.get("train", {}).get("dp"):  # DP-SGD: compared with the plain runs
            out.setdefault("dp", run)
            continue
        data, model = run.config.get("data", {}), run.config.get("model", {})
        noise, corruption = data.get("noise", 0.0), data.get("corruption", "symmetric")
        tied, dropout = model.get("example_tied_dropout", False), model.get("dropout", 0.0)
        if noise == 0:
            role = "clean"
        elif corruption == "random_labels":
            role = "random"
        elif tied:
            role = "tied"
        elif dropout > 0:
            role = "dropout"
        else:
            role = "noise"
        out.setdefault(role, run)
        if data.get("canaries", 0) > 0:
            out.setdefault("canaries", run)
    return out


def study_roles(runs: list[Run]) -> dict[str, object]:
    """The seed groups and run pairs the study findings read: ``true_group`` and
    ``random_group`` (seed groups trained on true labels, and on labels all shuffled), and
    ``pretrained`` with its ``scratch`` twin (a run started from a random-label run's
    weights, and the run of the same config from scratch)."""
    from memdash.analysis.store.groups import seed_groups, training_labels

    out: dict[str, object] = {}
    roles = {"true labels": "true_group", "random labels": "random_group"}
    for group in seed_groups(runs).values():
        role = roles.get(training_labels(group[0].config))
        if role and not group[0].config.get("train", {}).get("init_from"):
            out.setdefault(role, group)
    complete = [r for r in runs if r.status == "complete"]
    for run in complete:
        source = run.meta.get("init_from")
        if not source or "scratch" in out:
            continue
        twin = _without_init(run.config)
        twins = (r for r in complete if _without_init(r.config) == twin)
        scratch = next((r for r in twins if not r.meta.get("init_from")), None)
        if scratch is not None:
            out["pretrained"], out["scratch"] = run, scratch
    family = width_family(complete)
    if family:
        out["widths"] = family
    return out


def width_family(runs: list[Run]) -> list[Run]:
    """The largest set of (at least two) complete classifier runs trained alike (the same
    examples with the same labels, seed and training options, the model but for its hidden
    widths; not DP, not started from other weights) with different hidden widths, narrowest
    first (Lukasik et al. 2023's comparison across model sizes); [] if there is none."""
    families: dict[str, dict[tuple, Run]] = {}
    for run in runs:
        train = run.config.get("train", {})
        if run.is_text or run.status != "complete" or train.get("dp") or train.get("init_from"):
            continue
        model = dict(run.config.get("model", {}))
        hidden = tuple(model.pop("hidden", ()) or ())
        alike = {
            "examples": _examples_digest(run),
            "model": model,
            "train": {k: v for k, v in train.items() if v is not None},  # None: an older default
            "seed": run.config.get("seed"),
        }
        key = json.dumps(alike, sort_keys=True, default=str)
        families.setdefault(key, {}).setdefault(hidden, run)
    best = max(families.values(), key=len, default={})
    return [best[h] for h in sorted(best, key=lambda h: (sum(h), h))] if len(best) > 1 else []


def _examples_digest(run: Run) -> str:
    """A digest of the run's examples as trained: split, label, true label, canary."""
    columns = ["example_id", "split", "label", "true_label", "is_canary"]
    hashed = pd.util.hash_pandas_object(run.examples(columns), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _without_init(config: dict) -> dict:
    """A config without where its weights came from, the command line and what was recorded."""
    train = {k: v for k, v in config.get("train", {}).items() if k not in _INIT_FIELDS}
    return {k: v for k, v in config.items() if k not in ("command", "record")} | {"train": train}


def last_shared_epoch(runs: list[Run]) -> int:
    """The last epoch every one of the runs completed."""
    return min(run.epochs_completed for run in runs)


def group_runs(runs: dict[str, object], *groups: str) -> list[Run]:
    """The runs of the named seed groups (study roles), one list."""
    return [run for group in groups for run in runs[group]]
