import numpy as np
import pandas as pd
import pytest

from memdash.analysis.curves import accuracy_curves, example_groups


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
