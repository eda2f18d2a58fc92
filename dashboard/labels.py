"""Human labels, with units, for every column that reaches a chart or a table, and the
direction of every score: which end means memorized.

Pages and charts never show a raw column name: they call `label`. Columns from the
training-minibatch trace (suffix ``_train``) get their score's label and "(minibatches)".
A page that thresholds or ranks a score reads its end from `DIRECTIONS` (`memorized_end`), which
lives in `memdash.analysis.measures.directions` so that analysis reads the same dictionary.
On a text run (a language model's sequences) the trace's columns mean other things
(``correct`` is *extractable*, ``loss`` the mean token loss): ``label(column, text=True)``
reads `TEXT_LABELS` first.
"""

from __future__ import annotations

import re

import pandas as pd

from memdash.analysis.measures.attack_names import ATTACK_NAMES
from memdash.analysis.measures.directions import (  # the one dictionary, re-exported
    DIRECTIONS,
    HIGHER,
    memorized_end,
)
from memdash.analysis.measures.directions import LOWER as LOWER
from memdash.analysis.measures.directions import Direction as Direction
from memdash.analysis.measures.directions import flagged_end as flagged_end

LABELS: dict[str, str] = {
    # examples.parquet and the example table
    "example_id": "example id",
    "kind": "kind",
    "split": "split",
    "label": "given label",
    "true_label": "true label",
    "is_noisy": "flipped label",
    "is_canary": "canary",
    "canary_repeats": "canary repetitions per epoch",
    "corruption": "corruption",
    # trace scores (Toneva et al.; Swayamdipta et al.; Pleiss et al.)
    "forgetting_events": "forgetting events",
    "first_learned_epoch": "first learned (epoch)",
    "learned_epoch": "learned for good (epoch)",
    "never_learned": "never learned",
    "unforgettable": "unforgettable",
    "confidence": "confidence (mean p of given label)",
    "variability": "variability (std of p of given label)",
    "correctness": "correctness (share of epochs right)",
    "aum": "area under the margin",
    "mean_loss": "mean loss (nats)",
    "n_epochs": "epochs observed",
    # second-split forgetting (Maini et al. 2022; `memdash ssft`)
    "ssft": "second-split forgetting time (epoch)",
    "learned_first": "learned by the first phase",
    "half": "half trained on first",
    "second_epochs": "second-phase epochs",
    # held-out estimates (Feldman & Zhang; Jiang et al.)
    "mem_score": "memorization score (in minus out accuracy)",
    "mem_se": "memorization score std. error",
    "mem_lo": "memorization score, 95% low",
    "mem_hi": "memorization score, 95% high",
    "n_in": "models trained on it",
    "n_out": "models that held it out",
    "in_accuracy": "accuracy of models trained on it",
    "heldout_accuracy": "held-out accuracy",
    "c_score": "C-score (expected held-out accuracy)",
    # counterfactual memorization of text (Zhang et al. 2021)
    "cf_mem_accuracy": "counterfactual memorization (in minus out token accuracy)",
    "cf_mem_accuracy_se": "counterfactual memorization (accuracy) std. error",
    "cf_mem_loglik": "counterfactual memorization (in minus out log-likelihood, nats)",
    "cf_mem_loglik_se": "counterfactual memorization (log-likelihood) std. error",
    "out_accuracy": "token accuracy of models that held it out",
    "in_loglik": "log-likelihood, models trained on it (nats)",
    "out_loglik": "log-likelihood, models that held it out (nats)",
    # membership inference (Carlini et al. 2022, LiRA)
    "vulnerability": "membership exposed (LiRA TPR at 1% FPR)",
    "fpr": "false-positive rate",
    "tpr": "true-positive rate",
    "attack": "attack",
    # a privacy audit of an estimate's models (Zarifzadeh et al. 2024; Jagielski et al. 2020)
    "models": "reference models",
    "draw": "draw",
    "auc": "AUC",
    "tpr_at_0.1%": "TPR at 0.1% FPR",
    "tpr_at_1%": "TPR at 1% FPR",
    "epsilon_lower": "empirical ε (lower bound)",
    "dp_epsilon": "ε spent (DP accountant)",
    "dp_delta": "δ of the DP accountant",
    "shapiro_in_p": "Shapiro-Wilk p, models trained on it",
    "shapiro_out_p": "Shapiro-Wilk p, models that held it out",
    # k-NN against the network (Cohen et al.)
    "knn_pred": "k-NN prediction",
    "dnn_pred": "network prediction",
    "knn_agrees": "k-NN agrees with network",
    "agrees": "k-NN agrees with network",
    "knn_is_true": "k-NN predicts true label",
    "knn_is_label": "k-NN predicts given label",
    "knn_accuracy": "k-NN accuracy",
    "dnn_accuracy": "network accuracy",
    "knn_true_accuracy": "k-NN accuracy vs true label",
    "dnn_true_accuracy": "network accuracy vs true label",
    "p_same": "P_SAME (k-NN and network agree)",
    "method": "k-NN search (exact or IVF)",
    "n_lists": "IVF lists",
    "n_probes": "IVF lists probed",
    "recall": "recall@k against exact search",
    "ma": "MA (agreement where the network is right)",
    "md": "MD (agreement where the network is wrong)",
    "distance": "distance",
    # localization (Maini et al.)
    "neurons_zeroed": "units zeroed to flip",
    "units_zeroed": "units zeroed",
    "collateral_drop": "collateral accuracy drop",
    "grad_norm": "gradient norm",
    "cosine": "cosine (clean vs flipped gradient)",
    "flipped_acc": "flipped examples' accuracy",
    "clean_acc": "clean examples' accuracy",
    "test_acc": "test accuracy",
    "train_acc": "training accuracy",
    "subset": "examples",
    # exposure (Carlini et al.)
    "loss": "loss (nats)",
    "repeats": "times seen per epoch",
    "exposure": "exposure (bits)",
    "exposure_interpolation": "exposure (bits, interpolation)",
    "exposure_extrapolation": "exposure (bits, extrapolated from losses)",
    "exposure_extrapolation_log": "exposure (bits, extrapolated from log-losses)",
    "ceiling": "ceiling (bits)",
    # a text run's exposure (the Secret Sharer's own setting) and extraction
    "exposure_exact": "exposure (bits, exact rank among all secrets)",
    "rank": "rank among all secrets",
    "exact_available": "every secret ranked",
    "extracted": "extractable (greedy decoding gives the secret)",
    "extracted_share": "share extractable",
    "copies": "copies per epoch",
    "fit_floored": "fit on the references' loss floor",
    "floored": "fit on the references' loss floor",
    "capped": "fit on a cliff at the references' largest loss",
    "space": "fitted to",
    "shape": "skew-normal shape",
    "loc": "skew-normal location",
    "scale": "skew-normal scale",
    "n_references": "reference canaries",
    "accuracy_before": "accuracy before flipping",
    "accuracy_after": "accuracy after flipping",
    "hit_cap": "reached the unit cap",
    "share": "share of examples",
    "flipped": "flipped",
    "n": "examples",
    "n_examples": "examples",
    # studies of several runs (Arpit et al. 2017; Memorization Dissection; Kornblith et al.)
    "easiness": "easiness (share of seeds right)",
    "loss_sensitivity": "loss sensitivity (L1 norm of dLoss/dinput)",
    "curvature": "input-loss curvature (mean squared change of dLoss/dinput)",
    "critical": "critical sample ratio",
    # the proxies' scoreboard (derived/proxies.parquet, `memdash proxies`, the Proxies page)
    "knn_disagreement": "k-NN disagreement",
    "proxy": "proxy",
    "direction": "flagged end",
    "spearman": "Spearman",
    "spearman_lo": "Spearman, 95% low",
    "spearman_hi": "Spearman, 95% high",
    "interval": "95% interval",
    "auroc_flipped": "AUROC flips",
    "auroc_canary": "AUROC canaries",
    "precision_top": "precision at 5%",
    "seconds": "cost (s)",
    "cost_runs": "cost (runs)",
    "proxy_percentile": "proxy percentile",
    "ensemble_percentile": "memorization percentile",
    "rank_gap": "percentile gap",
    "cka": "linear CKA",
    "svcca": "SVCCA (mean canonical correlation)",
    "layer_a": "layer (first run)",
    "layer_b": "layer (second run)",
    "seeds": "seeds that get it right",
    "labels": "labels",
    "start": "start",
    # curves and axes
    "epoch": "epoch",
    "layer": "layer",
    "accuracy": "accuracy",
    "prob_label": "p(given label)",
    "margin": "margin (logits)",
    "x": "UMAP 1",
    "y": "UMAP 2",
    # text runs' own columns (examples.parquet, the trace)
    "text": "text",
    "n_tokens": "tokens",
    "prefix_len": "prefix (tokens)",
    "suffix_len": "suffix (tokens)",
    "duplicates": "copies per epoch",
    "secret": "secret",
    "log_perplexity": "log-perplexity (bits)",
    "token_accuracy": "token accuracy (share of tokens predicted)",
    "token_loss": "token loss (nats)",
}
# a text run's trace (docs/run-format.md, "Text runs"): ``correct`` is extractable (greedy
# decoding from the prefix reproduces the suffix, Carlini et al. 2023), ``loss`` the mean
# token loss, ``prob_label`` its exp(-loss); the trace scores read in those words
# each method of a text run's exposure in words, as the legends name it
TEXT_METHODS: dict[str, str] = {
    "exposure_exact": "exact (rank among all secrets)",
    "exposure_extrapolation": "extrapolated (skew-normal fit to log-perplexities)",
    "exposure_extrapolation_log": "extrapolated (skew-normal fit to log of log-perplexities)",
}
# each corruption of a classifier's labels or inputs (RunConfig's `corruption`) in words
CORRUPTION_WORDS: dict[str, str] = {
    "symmetric": "symmetric",
    "random_labels": "random labels",
    "random_inputs": "random inputs",
}
# the two measures of the training curves in a language model's words (Runs page)
TEXT_MEASURES: dict[str, str] = {"accuracy": "share extractable", "loss": "mean token loss"}
TEXT_LABELS: dict[str, str] = {
    "correct": "extractable",
    "loss": "mean token loss (nats)",
    "prob_label": "token probability (geometric mean)",
    "margin": "token margin (logits, mean over tokens)",
    "forgetting_events": "forgetting events (extractable -> not extractable)",
    "first_learned_epoch": "first extractable (epoch)",
    "learned_epoch": "extractable for good (epoch)",
    "never_learned": "never extractable",
    "unforgettable": "extractable throughout",
    "confidence": "confidence (mean token probability over epochs)",
    "variability": "variability (std of token probability over epochs)",
    "correctness": "extractability (share of epochs extractable)",
    "aum": "mean token margin over epochs (logits)",
    "mean_loss": "mean token loss over epochs (nats)",
}
# membership-inference attacks (derived/membership*.parquet's ``attack``): their names are
# analysis's (`measures.attack_names.ATTACK_NAMES`, which the findings' words use too)
# what each attack does, in a sentence (the Privacy page's legend of the table)
ATTACK_MEANINGS: dict[str, str] = {
    "online": "Gaussians of phi over the models that trained on the example and those that "
    "did not; the likelihood ratio of the target's phi",
    "offline": "the models that did not train on it only; how far the target's phi lies above them",
    "global": "phi alone, the same cut for every example (the baseline)",
    "rmia": "the target's probability of the label over its mean in the reference models, "
    "compared pairwise with population examples: the share of them it beats",
    "rmia_offline": "RMIA with models that did not train on it only, their mean scaled up "
    "by the paper's linear approximation (its a chosen on a reference model)",
}
# which end of an audit's figure is which (Privacy page): the end, and what it means
AUDIT_DIRECTIONS: dict[str, tuple[str, str]] = {
    "auc": ("higher", "a stronger attack"),
    "tpr_at_0.1%": ("higher", "a stronger attack"),
    "tpr_at_1%": ("higher", "a stronger attack"),
    "epsilon_lower": ("higher", "more privacy loss proved"),
    "shapiro_in_p": ("lower", "further from a Gaussian"),
    "shapiro_out_p": ("lower", "further from a Gaussian"),
}


def audit_direction_text(metric: str) -> str:
    """An audit figure's direction in words, e.g. "higher = a stronger attack"."""
    end, means = AUDIT_DIRECTIONS[metric]
    return f"{end} = {means}"


def attack_name(attack: str) -> str:
    """An attack in words ("online RMIA"); an unknown one as stored."""
    return ATTACK_NAMES.get(attack, attack)


# columns whose values are whole numbers: shown without decimals
INTEGER_COLUMNS = frozenset(
    {
        *("example_id", "label", "true_label", "canary_repeats", "forgetting_events"),
        *("first_learned_epoch", "learned_epoch", "n_epochs", "n_in", "n_out"),
        *("knn_pred", "dnn_pred", "neurons_zeroed", "units_zeroed", "epoch", "repeats"),
        *("seeds", "n_tokens", "prefix_len", "suffix_len", "duplicates", "models", "draw"),
        *("ssft", "second_epochs"),
    }
)


# columns that hold a share or a probability: their axes start at 0 and end at 1
RATIO_COLUMNS = frozenset(
    {
        *("accuracy", "knn_accuracy", "dnn_accuracy", "knn_true_accuracy", "dnn_true_accuracy"),
        *("p_same", "ma", "md", "flipped_acc", "clean_acc", "test_acc", "train_acc"),
        *("confidence", "correctness", "heldout_accuracy", "in_accuracy", "prob_label"),
        *("share", "vulnerability", "easiness", "critical", "cka", "svcca"),
        "token_accuracy",
    }
)


def direction_text(score: str) -> str:
    """The direction of `score` in words: "higher = more memorized", "lower = more
    memorized" or "not a memorization score"."""
    end = memorized_end(score)
    return f"{end} = more memorized" if end else "not a memorization score"


def ranking_text(score: str, *, text: bool = False) -> str:
    """How a page ranks examples by `score`, in words: "most memorized first (higher = more
    memorized)" for a memorization score; for any other, which end comes first and that it is
    the hard, atypical end, not a memorized one (named as on a text run if `text`)."""
    direction = DIRECTIONS[score.removesuffix("_train")]
    if direction.memorized:
        return f"Most memorized first ({direction_text(score)})"
    first = "highest" if direction.flagged == HIGHER else "lowest"
    return (
        f"{first.capitalize()} {label(score, text=text)} first: the hard, atypical end of a "
        "score that is "
        "not a memorization score"
    )


def label(column: str, *, text: bool = False) -> str:
    """The human label of a column (its words and unit); as a text run's trace means it
    (`TEXT_LABELS`) if `text`."""
    words = LABELS | TEXT_LABELS if text else LABELS
    if column in words:
        return words[column]
    for side in (" A", " B"):  # a score paired across two runs (Compare runs)
        if column.endswith(side):
            return f"{label(column.removesuffix(side), text=text)}, run{side}"
    if column.endswith("_train") and column.removesuffix("_train") in words:
        return f"{words[column.removesuffix('_train')]} (minibatches)"
    base, at, layer = column.partition("@")  # a per-layer score: knn_disagreement@fc1
    if at and base in words:
        return f"{words[base]} at {layer}"
    return column.replace("_", " ")


# the words of the training curves (charts.training_curves) as a text run means them
TEXT_CURVE_WORDS: dict[str, str] = {
    "accuracy (labels trained with)": "extractable (share of sequences)",
    "train (clean)": "train (plain and duplicate)",
}


def text_relabels() -> dict[str, str]:
    """What a chart drawn for a classifier says (the labels of `LABELS`, the training
    curves' words) -> what it says on a text run (`TEXT_LABELS`, `TEXT_CURVE_WORDS`), for
    the words a chart function writes itself."""
    return {LABELS[c]: TEXT_LABELS[c] for c in TEXT_LABELS if c in LABELS} | TEXT_CURVE_WORDS


def value_text(column: str, value: object) -> str:
    """One value for a person: integers without decimals, missing as n/a."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    if column in INTEGER_COLUMNS or isinstance(value, bool):
        return str(int(value)) if not isinstance(value, bool) else ("yes" if value else "no")
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def md_text(text: object) -> str:
    """`text` (a run name, a file path, an error) safe inside Streamlit markdown: every
    character markdown, HTML or LaTeX would act on is escaped, so it shows as written."""
    return _MARKDOWN.sub(r"\\\1", str(text))
