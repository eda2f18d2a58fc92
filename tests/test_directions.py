"""The one dictionary of score directions (analysis/measures/directions.py), which analysis
reads and the dashboard's label dictionary re-exports."""

from memdash.analysis.measures import directions
from memdash.analysis.measures.directions import HIGHER, LOWER, flagged_end, memorized_end
from memdash.dashboard import labels


def test_the_dashboard_reads_analysis_dictionary():
    assert labels.DIRECTIONS is directions.DIRECTIONS
    assert labels.memorized_end is directions.memorized_end


def test_flagged_end_of_proxies_per_layer_and_minibatch_scores():
    assert flagged_end("curvature") == HIGHER  # mislabeled, atypical: high curvature
    assert flagged_end("ssft") == LOWER  # forgotten soonest
    assert flagged_end("knn_disagreement@fc1") == HIGHER
    assert flagged_end("confidence_train") == LOWER
    assert flagged_end("neurons_zeroed") == LOWER
    assert flagged_end("no_such_score") is None


def test_proxies_are_not_memorization_scores_but_flips_are():
    assert memorized_end("curvature") is None
    assert memorized_end("ssft") is None
    assert memorized_end("neurons_zeroed") == LOWER
