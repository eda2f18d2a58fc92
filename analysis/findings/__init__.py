"""The papers' findings, checked on recorded runs: a statistic and a verdict for each.

Every finding is a small declaration (`registry.Check`) registered by its id: the runs it
needs (by role), what else they must hold, its measure, its statistic and its verdict rule.
One whose inputs are missing says so ("not enough data") instead of failing. The roles are
found from the runs' configs (`roles`): ``clean`` (no corruption), ``noise`` (symmetric
label noise, no dropout), ``dropout`` (the same with dropout), ``tied`` (example-tied
dropout), ``random`` (random labels), ``canaries`` (a run with canaries), ``text`` (a
language model's run), ``dp`` (a run trained with DP-SGD); the seed groups and
run pairs of the studies by `study_roles`.

The findings on trace scores and training curves use the trace chosen with
``source`` (`memdash.analysis.store.sources`: the end-of-epoch eval pass or the training
minibatches), falling back to the eval pass where a run recorded only that;
each `Finding` names the trace it used.

The findings live by family: `curves` (fitting order and speed), `scores` (forgetting, the
data map, memorization scores), `privacy` (membership inference, exposure),
`representations` (k-NN against the network), `localization` (flipping, example-tied
dropout), `studies` (seed groups, random-label pre-training), `text` (a language
model's exposure and extraction), `dp` (DP-SGD against plain training) and `proxies`
(single-run proxies against the held-out ensemble, within a run and across widths; the study
role ``widths`` is a width family).
"""

from memdash.analysis.findings.curves import (
    clean_before_flipped,
    dropout_slows_memorization,
    first_epoch,
    slower_with_noise,
    test_peaks_before_memorization,
)
from memdash.analysis.findings.dp import dp_bounds_membership, dp_reduces_memorization
from memdash.analysis.findings.localization import flipping, tied_dropout
from memdash.analysis.findings.privacy import exposure, membership_follows_memorization
from memdash.analysis.findings.proxies import proxies_across_widths, proxies_rank_memorization
from memdash.analysis.findings.registry import (
    ASKED,
    FAILS,
    HOLDS,
    MISSING,
    ORDER,
    REGISTRY,
    Check,
    Finding,
    Measured,
    Missing,
    check_all,
    register,
    registered,
)
from memdash.analysis.findings.representations import knn_versus_network
from memdash.analysis.findings.scores import data_map, forgetting, memorization_scores
from memdash.analysis.findings.selection import roles, study_roles
from memdash.analysis.findings.studies import (
    critical_sample_ratio,
    easiness_across_seeds,
    loss_sensitivity,
    one_way_to_learn,
    random_label_pretraining,
)
from memdash.analysis.findings.text import (
    exact_and_extrapolated_agree,
    extraction_grows_with_duplicates,
    memorization_before_overfitting,
    text_exposure_rises,
)

CHECKS = registered()  # every finding, in the order of the list
TRACE_CHECKS = tuple(c for c in CHECKS if c.trace == ASKED)  # those that take the trace asked

__all__ = [
    "ASKED",
    "CHECKS",
    "FAILS",
    "HOLDS",
    "MISSING",
    "ORDER",
    "REGISTRY",
    "TRACE_CHECKS",
    "Check",
    "Finding",
    "Measured",
    "Missing",
    "check_all",
    "clean_before_flipped",
    "critical_sample_ratio",
    "data_map",
    "dp_bounds_membership",
    "dp_reduces_memorization",
    "dropout_slows_memorization",
    "easiness_across_seeds",
    "exact_and_extrapolated_agree",
    "exposure",
    "extraction_grows_with_duplicates",
    "first_epoch",
    "flipping",
    "forgetting",
    "knn_versus_network",
    "loss_sensitivity",
    "memorization_before_overfitting",
    "membership_follows_memorization",
    "memorization_scores",
    "one_way_to_learn",
    "proxies_across_widths",
    "proxies_rank_memorization",
    "random_label_pretraining",
    "register",
    "registered",
    "roles",
    "slower_with_noise",
    "study_roles",
    "test_peaks_before_memorization",
    "text_exposure_rises",
    "tied_dropout",
]
