"""The papers' findings, checked on recorded runs: a statistic and a verdict for each.

Every check takes the runs it needs (by role) and returns a `Finding`; one
whose inputs are missing says so ("not enough data") instead of failing. The
roles are found from the runs' configs (`roles`): ``clean`` (no corruption),
``noise`` (symmetric label noise, no dropout), ``dropout`` (the same with
dropout), ``tied`` (example-tied dropout), ``random`` (random labels),
``canaries`` (a run with canaries).

The findings on trace scores and training curves use the trace chosen with
``source`` (`memdash.analysis.store.sources`: the end-of-epoch eval pass or the training
minibatches), falling back to the eval pass where a run recorded only that;
each `Finding` names the trace it used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from memdash.analysis.measures.curves import training_groups
from memdash.analysis.store import Run
from memdash.analysis.store.sources import check_source, select_source
from memdash.analysis.tables.curves import run_accuracy_curves

HOLDS, FAILS, MISSING = "holds", "does not hold", "not enough data"


@dataclass
class Finding:
    """One finding on some runs: what was measured, and whether the paper's claim holds."""

    key: str
    title: str
    reference: str
    verdict: str = MISSING
    statistic: str = ""  # the measured numbers, in words
    values: dict[str, float] = field(default_factory=dict)
    why: str = ""  # for "not enough data": what is missing
    source: str = ""  # the trace its numbers come from (analysis.sources), "" for none
    fell_back: bool = False  # the trace asked for was not recorded: the eval pass was used

    def as_dict(self) -> dict:
        """The finding as plain JSON-ready values (`memdash findings --json`)."""
        return {
            "id": self.key,
            "title": self.title,
            "statistic": self.statistic or self.why,
            "verdict": self.verdict,
            "source": self.source,
            "reference": self.reference,
            "values": self.values,
        }


def roles(runs: list[Run]) -> dict[str, Run]:
    """Each role's run (the first complete run that fits it)."""
    out: dict[str, Run] = {}
    for run in runs:
        if run.status != "complete" or run.meta.get("estimate_only"):
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


def _curves(run: Run, source: str = "eval") -> pd.DataFrame:
    """Accuracy per epoch and group from one trace, pivoted: one column per group (read once
    per run state: four findings use the noisy run's curves)."""
    return _curves_of(str(run.path), run.meta.get("updated_at"), source)


@functools.lru_cache(maxsize=16)
def _curves_of(path: str, updated_at: str | None, source: str) -> pd.DataFrame:
    table = run_accuracy_curves(Run.open(path), source)
    return table.pivot(index="epoch", columns="group", values="accuracy")


def first_epoch(series: pd.Series, level: float) -> float:
    """The first epoch at which a curve reaches `level` (NaN if never)."""
    hit = series.index[series.to_numpy() >= level]
    return float(hit[0]) if len(hit) else float("nan")


def _need(finding: Finding, runs: dict[str, Run], *needed: str) -> bool:
    missing = [r for r in needed if r not in runs]
    if missing:
        finding.why = "needs a run with " + ", ".join(missing)
    return not missing


def _analyzed(f: Finding, runs: dict[str, Run], role: str, step: str, command: str) -> Run | None:
    """The role's run if it has `step`'s results, else None with `f.why` saying what to run."""
    if not _need(f, runs, role):
        return None
    run = runs[role]
    if step not in run.derived_manifest():
        f.why = f"run `{command}` on the {role} run"
        return None
    return run


def _train_examples(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the run's clean and flipped training examples (canaries left out)."""
    groups = training_groups(run.examples())
    return groups["clean"], groups["flipped"]


def _verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


def _source(f: Finding, source: str, *runs: Run) -> str:
    """`source` if every run recorded it, else the eval pass; noted on the finding."""
    used = source if all(source in run.trace_sources() for run in runs) else "eval"
    f.source, f.fell_back = used, used != source
    return used


def clean_before_flipped(runs: dict[str, Run], *, source: str = "eval") -> Finding:
    f = Finding("order", "Clean examples are fitted before flipped ones", "Arpit et al. 2017")
    if not _need(f, runs, "noise"):
        return f
    c = _curves(runs["noise"], _source(f, source, runs["noise"]))
    clean, flipped = first_epoch(c["train (clean)"], 0.9), first_epoch(c["train (flipped)"], 0.9)
    f.values = {"clean_epoch_90": clean, "flipped_epoch_90": flipped}
    f.statistic = f"90% of clean examples fitted at epoch {clean:g}, of flipped ones at {flipped:g}"
    f.verdict = _verdict(clean < flipped or (np.isfinite(clean) and np.isnan(flipped)))
    return f


def slower_with_noise(runs: dict[str, Run], *, source: str = "eval") -> Finding:
    f = Finding(
        "noise_rate",
        "Fitting the training set takes longer with more noise, longest with random labels",
        "Arpit et al. 2017; Zhang et al. 2017",
    )
    if not _need(f, runs, "clean", "noise", "random"):
        return f
    epochs = {}
    used = _source(f, source, *(runs[r] for r in ("clean", "noise", "random")))
    for role in ("clean", "noise", "random"):
        c = _curves(runs[role], used)
        train = c[[g for g in ("train (clean)", "train (flipped)") if g in c.columns]]
        weights = runs[role].examples()
        n_flipped = int((weights["split"].eq("train") & weights["is_noisy"]).sum())
        n_train = int(weights["split"].eq("train").sum())
        share = n_flipped / n_train
        acc = train["train (clean)"] * (1 - share) + train.get("train (flipped)", 0) * share
        epochs[role] = first_epoch(acc, 0.95)
    f.values = {f"{k}_epoch_95": v for k, v in epochs.items()}
    f.statistic = "95% of the training set fitted at epoch " + ", ".join(
        f"{v:g} ({k})" for k, v in epochs.items()
    )
    e = [epochs[k] if np.isfinite(epochs[k]) else np.inf for k in ("clean", "noise", "random")]
    f.verdict = _verdict(e[0] < e[1] < e[2] or (e[0] < e[1] and e[2] == np.inf))
    return f


def test_peaks_before_memorization(runs: dict[str, Run]) -> Finding:
    f = Finding(
        "early_peak",
        "Test accuracy peaks before the flipped examples are memorized",
        "Arpit et al. 2017",
    )
    if not _need(f, runs, "noise"):
        return f
    f.source = "eval"  # test accuracy is measured by the eval pass alone
    c = _curves(runs["noise"])
    peak = float(c["test"].idxmax())
    half = first_epoch(c["train (flipped)"], 0.5)
    f.values = {
        "test_peak_epoch": peak,
        "test_peak": float(c["test"].max()),
        "test_final": float(c["test"].iloc[-1]),
        "flipped_half_epoch": half,
    }
    f.statistic = (
        f"test accuracy peaks at {c['test'].max():.3f} (epoch {peak:g}) and ends at "
        f"{c['test'].iloc[-1]:.3f}; half the flipped examples are fitted at epoch {half:g}"
    )
    f.verdict = _verdict(np.isnan(half) or peak < half)
    return f


def dropout_slows_memorization(runs: dict[str, Run], *, source: str = "eval") -> Finding:
    f = Finding(
        "dropout",
        "Dropout slows the fitting of flipped examples more than of clean ones",
        "Arpit et al. 2017",
    )
    if not _need(f, runs, "noise", "dropout"):
        return f
    used = _source(f, source, runs["noise"], runs["dropout"])
    plain, drop = _curves(runs["noise"], used), _curves(runs["dropout"], used)
    delay = {}
    for group, level in (("train (clean)", 0.9), ("train (flipped)", 0.5)):
        a, b = first_epoch(plain[group], level), first_epoch(drop[group], level)
        delay[group] = (b if np.isfinite(b) else drop.index.max() + 1) - a
    f.values = {
        "clean_delay": delay["train (clean)"],
        "flipped_delay": delay["train (flipped)"],
        "flipped_final_plain": float(plain["train (flipped)"].iloc[-1]),
        "flipped_final_dropout": float(drop["train (flipped)"].iloc[-1]),
    }
    f.statistic = (
        f"dropout delays 90% clean fit by {delay['train (clean)']:g} epochs and 50% flipped fit "
        f"by {delay['train (flipped)']:g} (at least: not reached counts as the run's end); "
        f"final flipped accuracy {f.values['flipped_final_plain']:.2f} without, "
        f"{f.values['flipped_final_dropout']:.2f} with"
    )
    f.verdict = _verdict(delay["train (flipped)"] > delay["train (clean)"])
    return f


def _scores(f: Finding, runs: dict[str, Run], source: str) -> pd.DataFrame | None:
    """The noisy run's trace scores (from `source`) of its clean and flipped training examples."""
    run = _analyzed(f, runs, "noise", "scores", "memdash analyze")
    if run is None:
        return None
    clean, flipped = _train_examples(run)
    keep = clean | flipped
    scores = select_source(run.read_derived("scores.parquet"), _source(f, source, run))
    return scores[keep].assign(flipped=flipped[keep])


def forgetting(runs: dict[str, Run], *, source: str = "eval") -> Finding:
    f = Finding(
        "forgetting",
        "Flipped examples are forgotten more often; most clean examples are unforgettable",
        "Toneva et al. 2019",
    )
    s = _scores(f, runs, source)
    if s is None:
        return f
    mean_f = s.groupby("flipped")["forgetting_events"].mean()
    unforgettable = float(s[~s["flipped"]]["unforgettable"].mean())
    f.values = {
        "forgetting_flipped": float(mean_f[True]),
        "forgetting_clean": float(mean_f[False]),
        "clean_unforgettable": unforgettable,
    }
    f.statistic = (
        f"forgetting events: {mean_f[True]:.2f} per flipped example, {mean_f[False]:.2f} per "
        f"clean one; {unforgettable:.0%} of clean examples never forgotten"
    )
    f.verdict = _verdict(mean_f[True] > mean_f[False] and unforgettable > 0.5)
    return f


def data_map(runs: dict[str, Run], *, source: str = "eval") -> Finding:
    from sklearn.metrics import roc_auc_score

    f = Finding(
        "data_map",
        "Flipped examples are hard to learn: 1 - confidence finds them (AUROC >= 0.9)",
        "Swayamdipta et al. 2020",
    )
    s = _scores(f, runs, source)
    if s is None:
        return f
    auroc = float(roc_auc_score(s["flipped"], 1 - s["confidence"]))
    f.values = {"auroc": auroc}
    f.statistic = f"AUROC of 1 - confidence for finding flipped examples: {auroc:.3f}"
    f.verdict = _verdict(auroc >= 0.9)
    return f


def memorization_scores(runs: dict[str, Run]) -> Finding:
    f = Finding(
        "mem_score",
        "Flipped examples have high held-out memorization scores, typical ones low",
        "Feldman & Zhang 2020",
    )
    run = _analyzed(f, runs, "noise", "heldout", "memdash estimate --like")
    if run is None:
        return f
    h = run.read_derived("heldout.parquet")
    clean, flipped = _train_examples(run)
    values = {
        "flipped_mean": float(h["mem_score"][flipped].mean()),
        "clean_median": float(h["mem_score"][clean].median()),
        "clean_mean": float(h["mem_score"][clean].mean()),
    }
    f.values = values
    f.statistic = (
        f"mem_score: flipped mean {values['flipped_mean']:.2f}; clean median "
        f"{values['clean_median']:.2f} (mean {values['clean_mean']:.2f})"
    )
    f.verdict = _verdict(values["flipped_mean"] > 0.5 and values["clean_median"] < 0.1)
    return f


def membership_follows_memorization(runs: dict[str, Run]) -> Finding:
    """Carlini et al.'s LiRA against Feldman & Zhang's mem_score on the same models: the
    examples a network memorizes are the ones whose membership leaks."""
    f = Finding(
        "membership_follows_memorization",
        "Memorized examples are the ones membership inference exposes",
        "Carlini et al. 2022; Feldman & Zhang 2020",
    )
    run = _analyzed(f, runs, "noise", "heldout", "memdash estimate --like")
    if run is None:
        return f
    if not run.derived_path("membership.parquet").is_file():
        f.why = "run `memdash estimate --like` on the noise run again: it stores confidences now"
        return f
    from memdash.analysis.measures.membership import memorization_link

    held, leak = run.read_derived("heldout.parquet"), run.read_derived("membership.parquet")
    attacks = run.derived_manifest()["heldout"].get("membership", {})
    values = memorization_link(held["mem_score"], leak["vulnerability"]) | {
        "threshold_fpr": float(attacks.get("threshold_fpr", 0.01)),
    }
    for attack in ("online", "offline", "global"):
        for measure in ("auc", "tpr_at_0.1%", "tpr_at_1%"):
            value = attacks.get(attack, {}).get(measure)
            if value is not None:
                values[f"{attack}_{measure}"] = float(value)
    f.values = values
    ratio = values["top_decile_tpr"] / max(values["rest_tpr"], 1e-9)
    f.statistic = (
        f"per-example vulnerability (online LiRA's TPR at the {values['threshold_fpr']:.0%} "
        f"FPR threshold) against mem_score: Spearman {values['spearman']:.2f} "
        f"(p = {values['p_value']:.1g}, {values['examples']:.0f} training examples); "
        f"top decile of mem_score {values['top_decile_tpr']:.0%}"
        f" against {values['rest_tpr']:.0%} for the rest ({ratio:.1f}x). "
        + "; ".join(
            f"{attack} AUC {values[f'{attack}_auc']:.3f}, TPR at 0.1% FPR "
            f"{values[f'{attack}_tpr_at_0.1%']:.1%}"
            for attack in ("online", "offline", "global")
            if f"{attack}_auc" in values
        )
    )
    f.verdict = _verdict(values["spearman"] > 0 and values["p_value"] < 0.001 and ratio >= 2)
    return f


def exposure(runs: dict[str, Run]) -> Finding:
    f = Finding(
        "exposure",
        "Exposure rises with repetitions; untrained canaries sit near 1.44 bits",
        "Carlini et al. 2019",
    )
    run = _analyzed(f, runs, "canaries", "exposure", "memdash analyze")
    if run is None:
        return f
    f.source = "eval"  # canary losses of the end-of-epoch pass
    table = run.read_derived("exposure.parquet")
    first_fit = table[table["epoch"] == 1]
    by = (
        first_fit[first_fit["kind"] == "canary"].groupby("repeats")["exposure_interpolation"].mean()
    )
    refs = float(table[table["kind"] == "reference"]["exposure_interpolation"].mean())
    last = table[(table["epoch"] == table["epoch"].max()) & (table["kind"] == "canary")]
    extrap = last.groupby("repeats")["exposure_extrapolation"].mean()
    floored = bool(last["fit_floored"].any()) if "fit_floored" in last else False
    in_log = (
        last.groupby("repeats")["exposure_extrapolation_log"].mean()
        if "exposure_extrapolation_log" in last
        else pd.Series(dtype=float)
    )
    f.values = (
        {f"repeats_{int(r)}": float(v) for r, v in by.items()}
        | {"references": refs}
        | {f"extrapolated_last_{int(r)}": float(v) for r, v in extrap.items()}
        | {f"extrapolated_log_last_{int(r)}": float(v) for r, v in in_log.items()}
        | {"last_fit_floored": float(floored)}
    )
    bits = lambda means: ", ".join(f"{v:.1f} ({r}x)" for r, v in means.items())  # noqa: E731
    f.statistic = (
        "mean exposure after one epoch: "
        + ", ".join(f"{v:.2f} bits seen {r}x" for r, v in by.items())
        + f"; references {refs:.2f} bits. At the last epoch (epoch "
        + f"{int(table['epoch'].max())}), extrapolated bits from the losses (the paper's fit): "
        + bits(extrap)
        + (
            " [marked: that epoch's fit sits on the references' loss floor, so these "
            "measure the fit's cliff]"
            if floored
            else ""
        )
        + (f"; from the log-losses (no floor): {bits(in_log)}" if len(in_log) else "")
    )
    rising = bool(np.all(np.diff(by.to_numpy()) > 0))
    f.verdict = _verdict(rising and abs(refs - np.log2(np.e)) < 0.1)
    return f


def knn_versus_network(runs: dict[str, Run]) -> Finding:
    f = Finding(
        "knn",
        "On flipped examples the network predicts the given label, the k-NN the true one",
        "Cohen et al. 2018",
    )
    run = _analyzed(f, runs, "noise", "knn", "memdash analyze")
    if run is None:
        return f
    k = run.read_derived("knn.parquet")
    rows = k[
        (k["split"] == "train") & (k["subset"] == "flipped") & (k["epoch"] == k["epoch"].max())
    ]
    if rows.empty:
        f.why = "no embeddings of flipped training examples"
        return f
    f.values = {f"{r.layer}_dnn": r.dnn_accuracy for r in rows.itertuples()} | {
        f"{r.layer}_knn_true": r.knn_true_accuracy for r in rows.itertuples()
    }
    f.statistic = "at the last epoch, per layer: " + "; ".join(
        f"{r.layer}: network {r.dnn_accuracy:.2f} given, k-NN {r.knn_true_accuracy:.2f} true"
        for r in rows.itertuples()
    )
    f.verdict = _verdict(
        bool(((rows["dnn_accuracy"] > 0.5) & (rows["knn_true_accuracy"] > 0.5)).any())
    )
    return f


def flipping(runs: dict[str, Run]) -> Finding:
    f = Finding(
        "flipping",
        "Flipped examples flip with fewer neurons than clean ones, spread over several layers",
        "Maini et al. 2023",
    )
    run = _analyzed(f, runs, "noise", "flipping", "memdash localize")
    if run is None:
        return f
    per = run.read_derived("localization.parquet")
    layers = run.read_derived("localization_layers.parquet")
    med = per.groupby("kind")["neurons_zeroed"].median()
    missing = [kind for kind in ("flipped", "clean") if kind not in med.index]
    if missing:
        f.why = f"no {' or '.join(missing)} example could be flipped on the noise run"
        return f
    used = layers[(layers["kind"] == "flipped") & (layers["units_zeroed"] > 0)]["layer"].nunique()
    f.values = {
        "flipped_median": float(med["flipped"]),
        "clean_median": float(med["clean"]),
        "flipped_layers": float(used),
    }
    f.statistic = (
        f"median units zeroed: {med['flipped']:g} for flipped, {med['clean']:g} for clean; "
        f"flipped examples' units lie in {used} layers"
    )
    f.verdict = _verdict(med["flipped"] < med["clean"] and used >= 2)
    return f


def tied_dropout(runs: dict[str, Run]) -> Finding:
    f = Finding(
        "tied_dropout",
        "Example-tied dropout: dropping the memorization channels removes most flipped accuracy "
        "while test accuracy holds",
        "Maini et al. 2023",
    )
    if not _need(f, runs, "tied"):
        return f
    result = runs["tied"].meta.get("example_tied_dropout", {})
    keep, drop = result.get("keep", {}), result.get("drop", {})
    if "noisy_acc" not in keep:
        f.why = "the tied run has no flipped examples"
        return f
    f.values = {
        "flipped_keep": keep["noisy_acc"],
        "flipped_drop": drop["noisy_acc"],
        "test_keep": keep["test_acc"],
        "test_drop": drop["test_acc"],
    }
    f.statistic = (
        f"flipped accuracy {keep['noisy_acc']:.2f} -> {drop['noisy_acc']:.2f}; test accuracy "
        f"{keep['test_acc']:.2f} -> {drop['test_acc']:.2f}"
    )
    f.verdict = _verdict(
        drop["noisy_acc"] <= keep["noisy_acc"] / 2 and drop["test_acc"] > keep["test_acc"] - 0.05
    )
    return f


# ------------------------------------------------------- studies of several runs


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
    return out


def _without_init(config: dict) -> dict:
    """A config without where its weights came from, the command line and what was recorded."""
    train = {k: v for k, v in config.get("train", {}).items() if k not in _INIT_FIELDS}
    return {k: v for k, v in config.items() if k not in ("command", "record")} | {"train": train}


_INIT_FIELDS = ("init_from", "init_epoch", "reinit")


def _last_shared_epoch(runs: list[Run]) -> int:
    """The last epoch every one of the runs completed."""
    return min(run.epochs_completed for run in runs)


def one_way_to_learn(runs: dict) -> Finding:
    f = Finding(
        "one_way_to_learn",
        "True-label networks learn alike (later layers), random-label ones differ",
        "Neural Network Memorization Dissection; CKA: Kornblith et al. 2019",
    )
    if not _need(f, runs, "true_group", "random_group"):
        return f
    from memdash.analysis.tables.studies import mean_pairwise_cka

    true, shuffled = runs["true_group"], runs["random_group"]
    epoch = _last_shared_epoch([*true, *shuffled])
    shared = set.intersection(
        *(set(r.embedding_index().get(epoch, [])) for r in (*true, *shuffled))
    )
    if not shared:
        f.why = f"the groups share no embedded layer at epoch {epoch}"
        return f
    layers = true[0].in_layer_order(shared)
    values = {}
    for layer in layers:
        values[f"true_{layer}"] = mean_pairwise_cka(true, epoch, layer)
        values[f"random_{layer}"] = mean_pairwise_cka(shuffled, epoch, layer)
    f.values = values | {"epoch": float(epoch)}
    f.statistic = f"mean CKA between seeds at epoch {epoch}: " + "; ".join(
        f"{layer} {values[f'true_{layer}']:.3f} with true labels, "
        f"{values[f'random_{layer}']:.3f} with random labels"
        for layer in layers
    )
    last = layers[-1]
    f.verdict = _verdict(values[f"true_{last}"] > values[f"random_{last}"])
    return f


def random_label_pretraining(runs: dict) -> Finding:
    f = Finding(
        "random_label_pretraining",
        "Pre-training on random labels speeds up or improves training on true labels",
        "Leveraging Random Label Memorization for Unsupervised Pre-Training",
    )
    if not _need(f, runs, "pretrained", "scratch"):
        return f
    pre, scratch = _curves(runs["pretrained"])["test"], _curves(runs["scratch"])["test"]
    target = 0.98 * float(scratch.iloc[-1])
    values = {
        "pretrained_final": float(pre.iloc[-1]),
        "scratch_final": float(scratch.iloc[-1]),
        "target": target,
        "pretrained_epochs": first_epoch(pre, target),
        "scratch_epochs": first_epoch(scratch, target),
    }
    f.values = values
    f.statistic = (
        f"test accuracy {values['pretrained_final']:.3f} from random-label weights against "
        f"{values['scratch_final']:.3f} from scratch; {target:.3f} (98% of scratch's final) "
        f"reached at epoch {values['pretrained_epochs']:.0f} against "
        f"{values['scratch_epochs']:.0f}"
    )
    faster = values["pretrained_epochs"] < values["scratch_epochs"]
    better = values["pretrained_final"] > values["scratch_final"] + 0.005
    not_worse = values["pretrained_final"] >= values["scratch_final"] - 0.005
    f.verdict = _verdict(better or (faster and not_worse))
    return f


def easiness_across_seeds(runs: dict) -> Finding:
    f = Finding(
        "easiness_across_seeds",
        "Real examples are learned alike across initializations, random-label ones are not",
        "Arpit et al. 2017",
    )
    if not _need(f, runs, "true_group", "random_group"):
        return f
    from memdash.analysis.tables.studies import easiness, group_correct

    shares = {}
    for name in ("true", "random"):
        group = runs[f"{name}_group"]
        e = easiness(group_correct(group, 1))
        shares[f"{name}_all"] = float((e == 1).mean())
        shares[f"{name}_none"] = float((e == 0).mean())
    f.values = shares | {"seeds": float(len(runs["true_group"]))}
    f.statistic = (
        f"after one epoch, over {len(runs['true_group'])} seeds: {shares['true_all']:.0%} of the "
        f"training examples are right in every run and {shares['true_none']:.0%} in none with "
        f"true labels; {shares['random_all']:.1%} and {shares['random_none']:.0%} with random "
        "labels"
    )
    f.verdict = _verdict(shares["true_all"] > 0.5 and shares["random_all"] < 0.05)
    return f


def _group_mean(group: list[Run], column: str, epoch: int) -> float:
    from memdash.analysis.tables.studies import per_epoch_mean

    return float(np.mean([per_epoch_mean(run, column)[epoch] for run in group]))


def _recorded(f: Finding, runs: dict, column: str, option: str) -> bool:
    if not _need(f, runs, "true_group", "random_group"):
        return False
    group = [*runs["true_group"], *runs["random_group"]]
    if not all(column in run.trace_columns() for run in group):
        f.why = f"train both groups with {option}"
        return False
    return True


def loss_sensitivity(runs: dict) -> Finding:
    f = Finding(
        "loss_sensitivity",
        "Memorizing makes the loss sensitive to the input: higher with random labels",
        "Arpit et al. 2017",
    )
    return _random_above_true(
        f,
        runs,
        "loss_sensitivity",
        "--record-loss-sensitivity",
        "mean ||dL/dx||_1 over training examples",
        "{:.3g}",
    )


def critical_sample_ratio(runs: dict) -> Finding:
    f = Finding(
        "critical_sample_ratio",
        "The critical sample ratio rises with label noise",
        "Arpit et al. 2017",
    )
    group = runs.get("true_group") or [None]
    radius = group[0].config.get("record", {}).get("critical_radius") if group[0] else None
    return _random_above_true(
        f,
        runs,
        "critical",
        "--critical-examples",
        f"critical sample ratio (L-inf radius {radius})",
        "{:.2f}",
    )


def _random_above_true(
    f: Finding, runs: dict, column: str, option: str, measure: str, shown: str
) -> Finding:
    """A trace column's mean over training examples at the groups' last epoch: the claim
    holds when the random-label group's exceeds the true-label group's."""
    if not _recorded(f, runs, column, option):
        return f
    epoch = _last_shared_epoch([*runs["true_group"], *runs["random_group"]])
    values = {
        "true": _group_mean(runs["true_group"], column, epoch),
        "random": _group_mean(runs["random_group"], column, epoch),
        "epoch": float(epoch),
    }
    f.values = values
    f.statistic = (
        f"{measure} at epoch {epoch}: {shown.format(values['random'])} with random labels, "
        f"{shown.format(values['true'])} with true labels"
    )
    f.verdict = _verdict(values["random"] > values["true"])
    return f


CHECKS: tuple[Callable[[dict[str, Run]], Finding], ...] = (
    clean_before_flipped,
    slower_with_noise,
    test_peaks_before_memorization,
    dropout_slows_memorization,
    forgetting,
    data_map,
    memorization_scores,
    membership_follows_memorization,
    exposure,
    knn_versus_network,
    flipping,
    tied_dropout,
    one_way_to_learn,
    random_label_pretraining,
    easiness_across_seeds,
    loss_sensitivity,
    critical_sample_ratio,
)


# the checks whose numbers come from a trace: they take the trace source
TRACE_CHECKS = (
    clean_before_flipped,
    slower_with_noise,
    dropout_slows_memorization,
    forgetting,
    data_map,
)


def check_all(runs: list[Run], *, source: str = "eval") -> list[Finding]:
    """Every finding on the given runs, in the order of the issue's list.

    ``source`` picks the trace of the trace-based findings (`memdash.analysis.store.sources`).
    """
    check_source(source)
    by_role = roles(runs) | study_roles(runs)
    return [
        check(by_role, source=source) if check in TRACE_CHECKS else check(by_role)
        for check in CHECKS
    ]
