import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from memdash.analysis.measures.dynamics import (
    first_learned_epoch,
    forgetting_events,
    learned_epoch,
    trace_scores,
)

NAN = np.nan
# 4 epochs x 4 examples, computed by hand below
CORRECT = np.array(
    [
        [1, 0, 0, 1],
        [1, 1, 0, 0],
        [1, 0, 0, 1],
        [1, 1, 0, NAN],
    ]
)
PROB = np.array(
    [
        [0.9, 0.2, 0.1, 0.8],
        [0.7, 0.6, 0.1, 0.4],
        [0.9, 0.4, 0.1, 0.8],
        [0.9, 0.8, 0.1, NAN],
    ]
)
EPOCHS = np.array([1, 2, 3, 4])


def _scores():
    return trace_scores(
        correct=CORRECT, prob_label=PROB, margin=PROB - 0.5, loss=-np.log(PROB), epochs=EPOCHS
    )


def test_forgetting_and_learning_times_by_hand():
    s = _scores()
    # ex0 always right; ex1 0 1 0 1 -> one 1->0; ex2 never; ex3 1 0 1 (missing) -> one
    assert s["forgetting_events"].tolist() == [0, 1, 0, 1]
    assert s["first_learned_epoch"].tolist()[:2] == [1.0, 2.0]
    assert np.isnan(s["first_learned_epoch"][2])
    assert s["learned_epoch"].tolist()[:2] == [1.0, 4.0]
    assert np.isnan(s["learned_epoch"][2]) and np.isnan(s["learned_epoch"][3])  # missing at end
    assert s["never_learned"].tolist() == [False, False, True, False]
    assert s["unforgettable"].tolist() == [True, False, False, False]


def test_cartography_aum_and_loss_by_hand():
    s = _scores()
    assert s["confidence"][0] == pytest.approx(0.85)
    # population std of (0.9, 0.7, 0.9, 0.9): mean 0.85, deviations .05 .15 .05 .05
    assert s["variability"][0] == pytest.approx(np.sqrt((3 * 0.05**2 + 0.15**2) / 4))
    assert s["correctness"].tolist()[:3] == [1.0, 0.5, 0.0]
    # ex3: the missing epoch is left out, never averaged in as 0
    assert s["confidence"][3] == pytest.approx(2 / 3)
    assert s["correctness"][3] == pytest.approx(2 / 3)
    assert s["n_epochs"].tolist() == [4, 4, 4, 3]
    assert s["aum"][1] == pytest.approx(0.5 - 0.5)
    assert s["mean_loss"][2] == pytest.approx(-np.log(0.1))


def test_epochs_must_increase():
    with pytest.raises(ValueError, match="increasing"):
        learned_epoch(CORRECT, np.array([1, 3, 2, 4]))


def _naive_forgetting(correct):
    counts = []
    for i in range(correct.shape[1]):
        n = 0
        for e in range(1, correct.shape[0]):
            if correct[e - 1, i] == 1 and correct[e, i] == 0:
                n += 1
        counts.append(n)
    return np.array(counts)


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 20)),
        elements=st.sampled_from([0.0, 1.0, NAN]),
    )
)
def test_vectorized_forgetting_equals_a_naive_loop(correct):
    assert np.array_equal(forgetting_events(correct), _naive_forgetting(correct))


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 20)),
        elements=st.sampled_from([0.0, 1.0]),
    )
)
def test_learned_epoch_equals_a_naive_loop(correct):
    epochs = np.arange(1, len(correct) + 1)
    got = learned_epoch(correct, epochs)
    for i in range(correct.shape[1]):
        col = correct[:, i]
        expect = next((epochs[e] for e in range(len(col)) if col[e:].all()), NAN)
        assert (np.isnan(got[i]) and np.isnan(expect)) or got[i] == expect


@settings(max_examples=100, deadline=None)
@given(
    st.data(),
    st.tuples(st.integers(1, 12), st.integers(1, 30)),
)
def test_fused_trace_scores_equal_the_numpy_definitions(data, shape):
    correct = data.draw(arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, NAN])))
    prob = data.draw(arrays(np.float64, shape, elements=st.floats(0, 1)))
    prob[np.isnan(correct)] = NAN  # absent (epoch, example) pairs are NaN in every column
    epochs = np.cumsum(data.draw(arrays(np.int64, shape[0], elements=st.integers(1, 3))))
    loss = 1 - prob
    loss[data.draw(arrays(bool, shape))] = NAN  # a NaN loss where the rest was recorded
    s = trace_scores(correct=correct, prob_label=prob, margin=prob - 0.5, loss=loss, epochs=epochs)
    np.testing.assert_array_equal(s["forgetting_events"], forgetting_events(correct))
    np.testing.assert_array_equal(s["first_learned_epoch"], first_learned_epoch(correct, epochs))
    np.testing.assert_array_equal(s["learned_epoch"], learned_epoch(correct, epochs))
    observed = ~np.isnan(correct)
    seen = observed.any(axis=0)
    np.testing.assert_array_equal(s["n_epochs"], observed.sum(axis=0))
    cols = np.flatnonzero(seen)
    close = {"rtol": 1e-9, "atol": 1e-12}  # sums in another order: last-bit differences
    np.testing.assert_allclose(s["confidence"][cols], np.nanmean(prob[:, cols], axis=0), **close)
    np.testing.assert_allclose(s["variability"][cols], np.nanstd(prob[:, cols], axis=0), atol=1e-7)
    np.testing.assert_allclose(s["aum"][cols], np.nanmean(prob[:, cols], axis=0) - 0.5, **close)
    np.testing.assert_allclose(
        s["correctness"][cols], np.nanmean(correct[:, cols], axis=0), **close
    )
    assert s.loc[~seen, ["confidence", "aum", "correctness"]].isna().all().all()
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN expected
        np.testing.assert_allclose(s["mean_loss"], np.nanmean(loss, axis=0), **close)
    np.testing.assert_array_equal(s["never_learned"], seen & ~(correct == 1).any(axis=0))


def test_trace_matrices_leave_absent_pairs_missing():
    import pandas as pd

    from memdash.analysis.measures.dynamics import trace_matrices

    trace = pd.DataFrame(
        {"epoch": [0, 1, 1, 3], "example_id": [0, 0, 2, 1], "loss": [9.0, 0.5, 0.7, 0.2]}
    )
    epochs, m = trace_matrices(trace, 3, ("loss",))
    assert epochs.tolist() == [1, 3]
    np.testing.assert_array_equal(m["loss"], [[0.5, NAN, 0.7], [NAN, 0.2, NAN]])


def test_sample_run_flipped_examples_are_found_and_forgotten_more():
    from pathlib import Path

    from sklearn.metrics import roc_auc_score

    from memdash.analysis.steps.scores import compute_scores
    from memdash.analysis.store import Run

    run = Run.open(Path(__file__).resolve().parents[1] / "sample_runs" / "digits_mlp_noise20")
    ex = run.examples()
    s = compute_scores(run)["scores.parquet"]
    train = (ex["split"] == "train").to_numpy()
    flipped = ex["is_noisy"].to_numpy()[train]
    assert roc_auc_score(flipped, 1 - s["confidence"][train]) >= 0.9
    forgetting = s["forgetting_events"][train]
    assert forgetting[flipped].mean() > forgetting[~flipped].mean()
