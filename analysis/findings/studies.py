"""The findings on studies of several runs: seed groups trained on true and on random labels
(Arpit et al. 2017; CKA, Kornblith et al. 2019), and a run pre-trained on random labels
against its twin from scratch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from memdash.analysis.findings.curves import accuracy_curves, first_epoch
from memdash.analysis.findings.needs import Recorded
from memdash.analysis.findings.registry import Check, Measured, Missing, register
from memdash.analysis.findings.selection import group_runs, last_shared_epoch
from memdash.analysis.store import Run

GROUPS = ("true_group", "random_group")


def _seed_similarity(runs: dict, source: str) -> Measured:
    """Mean pairwise CKA between each group's seeds, per layer both groups embedded at the
    last epoch they share."""
    from memdash.analysis.tables.studies import mean_pairwise_cka

    true, shuffled = runs["true_group"], runs["random_group"]
    epoch = last_shared_epoch(group_runs(runs, *GROUPS))
    shared = set.intersection(
        *(set(r.embedding_index().get(epoch, [])) for r in (*true, *shuffled))
    )
    if not shared:
        raise Missing(f"the groups share no embedded layer at epoch {epoch}")
    layers = true[0].in_layer_order(shared)
    values = {}
    for layer in layers:
        values[f"true_{layer}"] = mean_pairwise_cka(true, epoch, layer)
        values[f"random_{layer}"] = mean_pairwise_cka(shuffled, epoch, layer)
    return Measured(values | {"epoch": float(epoch)}, {"layers": layers, "at_epoch": epoch})


one_way_to_learn = register(
    Check(
        key="one_way_to_learn",
        title="True-label networks learn alike (later layers), random-label ones differ",
        reference="Neural Network Memorization Dissection; CKA: Kornblith et al. 2019",
        roles=GROUPS,
        measure=_seed_similarity,
        statistic=lambda m: (
            f"mean CKA between seeds at epoch {m['at_epoch']}: "
            + "; ".join(
                f"{layer} {m[f'true_{layer}']:.3f} with true labels, "
                f"{m[f'random_{layer}']:.3f} with random labels"
                for layer in m["layers"]
            )
        ),
        holds=lambda m: m[f"true_{m['layers'][-1]}"] > m[f"random_{m['layers'][-1]}"],
    )
)


def _pretraining_gain(runs: dict, source: str) -> dict[str, float]:
    """Final test accuracy of both runs, and the epoch each reaches 98% of scratch's final."""
    pre = accuracy_curves(runs["pretrained"], source)["test"]
    scratch = accuracy_curves(runs["scratch"], source)["test"]
    target = 0.98 * float(scratch.iloc[-1])
    return {
        "pretrained_final": float(pre.iloc[-1]),
        "scratch_final": float(scratch.iloc[-1]),
        "target": target,
        "pretrained_epochs": first_epoch(pre, target),
        "scratch_epochs": first_epoch(scratch, target),
    }


def _faster_or_better(m: Measured) -> bool:
    faster = m["pretrained_epochs"] < m["scratch_epochs"]
    better = m["pretrained_final"] > m["scratch_final"] + 0.005
    not_worse = m["pretrained_final"] >= m["scratch_final"] - 0.005
    return better or (faster and not_worse)


random_label_pretraining = register(
    Check(
        key="random_label_pretraining",
        title="Pre-training on random labels speeds up or improves training on true labels",
        reference="Leveraging Random Label Memorization for Unsupervised Pre-Training",
        roles=("pretrained", "scratch"),
        measure=_pretraining_gain,
        statistic=lambda m: (
            f"test accuracy {m['pretrained_final']:.3f} from random-label weights against "
            f"{m['scratch_final']:.3f} from scratch; {m['target']:.3f} (98% of scratch's final) "
            f"reached at epoch {m['pretrained_epochs']:.0f} against "
            f"{m['scratch_epochs']:.0f}"
        ),
        holds=_faster_or_better,
    )
)


def _learned_alike(runs: dict, source: str) -> dict[str, float]:
    """The share of training examples right in every seed, and in none, after one epoch."""
    from memdash.analysis.tables.studies import easiness, group_correct

    shares = {}
    for name in ("true", "random"):
        e = easiness(group_correct(runs[f"{name}_group"], 1))
        shares[f"{name}_all"] = float((e == 1).mean())
        shares[f"{name}_none"] = float((e == 0).mean())
    return shares | {"seeds": float(len(runs["true_group"]))}


easiness_across_seeds = register(
    Check(
        key="easiness_across_seeds",
        title="Real examples are learned alike across initializations, random-label ones are not",
        reference="Arpit et al. 2017",
        roles=GROUPS,
        measure=_learned_alike,
        statistic=lambda m: (
            f"after one epoch, over {int(m['seeds'])} seeds: {m['true_all']:.0%} of the "
            f"training examples are right in every run and {m['true_none']:.0%} in none with "
            f"true labels; {m['random_all']:.1%} and {m['random_none']:.0%} with random "
            "labels"
        ),
        holds=lambda m: m["true_all"] > 0.5 and m["random_all"] < 0.05,
    )
)


def _random_above_true(
    *, key: str, title: str, column: str, option: str, what: Callable[[dict], str], shown: str
) -> Check:
    """A finding on a trace column's mean over training examples at the groups' last shared
    epoch: the claim holds when the random-label group's exceeds the true-label group's.
    ``what`` names the measure (from the runs), ``shown`` formats its numbers."""

    def measure(runs: dict, source: str) -> Measured:
        epoch = last_shared_epoch(group_runs(runs, *GROUPS))
        values = {
            "true": _group_mean(runs["true_group"], column, epoch),
            "random": _group_mean(runs["random_group"], column, epoch),
            "epoch": float(epoch),
        }
        return Measured(values, {"at_epoch": epoch, "what": what(runs)})

    return Check(
        key=key,
        title=title,
        reference="Arpit et al. 2017",
        roles=GROUPS,
        needs=(Recorded(GROUPS, column, option),),
        measure=measure,
        statistic=lambda m: (
            f"{m['what']} at epoch {m['at_epoch']}: {shown.format(m['random'])} with random "
            f"labels, {shown.format(m['true'])} with true labels"
        ),
        holds=lambda m: m["random"] > m["true"],
    )


def _group_mean(group: list[Run], column: str, epoch: int) -> float:
    from memdash.analysis.tables.studies import per_epoch_mean

    return float(np.mean([per_epoch_mean(run, column)[epoch] for run in group]))


loss_sensitivity = register(
    _random_above_true(
        key="loss_sensitivity",
        title="Memorizing makes the loss sensitive to the input: higher with random labels",
        column="loss_sensitivity",
        option="--record-loss-sensitivity",
        what=lambda runs: "mean loss sensitivity (L1 norm of dLoss/dinput) over training examples",
        shown="{:.3g}",
    )
)


def _critical_ratio_words(runs: dict) -> str:
    radius = runs["true_group"][0].config.get("record", {}).get("critical_radius")
    return f"critical sample ratio (L-inf radius {radius})"


critical_sample_ratio = register(
    _random_above_true(
        key="critical_sample_ratio",
        title="The critical sample ratio rises with label noise",
        column="critical",
        option="--critical-examples",
        what=_critical_ratio_words,
        shown="{:.2f}",
    )
)
