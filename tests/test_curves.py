import numpy as np
import pandas as pd
import pytest

from memdash.analysis.measures.curves import (
    accuracy_curves,
    accuracy_curves_from_grids,
    example_groups,
)


def _examples():
    return pd.DataFrame(
        {
            "split": ["train", "train", "train", "train", "test", "reference"],
            "is_noisy": [False, False, True, False, False, False],
            "is_canary": [False, False, False, True, False, True],
        }
    )


def test_groups_by_hand():
    groups = example_groups(_examples())
    assert groups.tolist()[:5] == [
        "train (clean)",
        "train (clean)",
        "train (flipped)",
        "canaries",
        "test",
    ]
    assert pd.isna(groups.iloc[5])


def test_accuracy_curves_by_hand():
    trace = pd.DataFrame(
        {
            "epoch": [1] * 6 + [2] * 6,
            "example_id": list(range(6)) * 2,
            "correct": [True, False, False, True, True, True]
            + [True, True, True, False, False, True],
            "loss": [0.1, 2.0, 3.0, 0.2, 0.5, 9.0] + [0.1, 0.3, np.nan, 1.0, 2.0, 9.0],
        }
    )
    out = accuracy_curves(trace, _examples()).set_index(["epoch", "group"])
    assert out.loc[(1, "train (clean)"), "accuracy"] == 0.5
    assert out.loc[(1, "train (clean)"), "loss"] == pytest.approx(1.05)
    assert out.loc[(2, "train (clean)"), "accuracy"] == 1.0
    assert out.loc[(2, "train (flipped)"), "accuracy"] == 1.0
    assert np.isnan(out.loc[(2, "train (flipped)"), "loss"])  # a NaN loss is not averaged in
    assert out.loc[(2, "test"), "accuracy"] == 0.0
    assert out.loc[(1, "canaries"), "n"] == 1
    assert len(out) == 8  # the reference canary belongs to no group


def test_curves_from_grids_match_the_long_trace():
    # the same trace as above, less example 1 at epoch 2 (a minibatch part that lacks it)
    correct = np.array([[1, 0, 0, 1, 1, 1], [1, np.nan, 1, 0, 0, 1]], dtype=float)
    loss = np.array([[0.1, 2.0, 3.0, 0.2, 0.5, 9.0], [0.1, np.nan, np.nan, 1.0, 2.0, 9.0]])
    out = accuracy_curves_from_grids(np.array([1, 2]), correct, loss, _examples())
    indexed = out.set_index(["epoch", "group"])
    assert indexed.loc[(1, "train (clean)"), "accuracy"] == 0.5
    assert indexed.loc[(1, "train (clean)"), "loss"] == pytest.approx(1.05)
    assert indexed.loc[(2, "train (clean)"), "n"] == 1  # example 1 is absent at epoch 2
    assert indexed.loc[(2, "train (clean)"), "loss"] == pytest.approx(0.1)
    assert np.isnan(indexed.loc[(2, "train (flipped)"), "loss"])
    long = pd.DataFrame(
        {
            "epoch": [1] * 6 + [2] * 5,
            "example_id": list(range(6)) + [0, 2, 3, 4, 5],
            "correct": [True, False, False, True, True, True, True, True, False, False, True],
            "loss": [0.1, 2.0, 3.0, 0.2, 0.5, 9.0, 0.1, np.nan, 1.0, 2.0, 9.0],
        }
    )
    expected = accuracy_curves(long, _examples())
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)
