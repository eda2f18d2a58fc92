"""Measures over seed groups (Arpit et al.'s easiness, per-kind trace means) and how groups
are named and labelled, on hand-written runs whose answers are computed by hand."""

import numpy as np
import pandas as pd
import pytest

from memdash.analysis.store import Run, RunWriter
from memdash.analysis.store.groups import group_names, seed_groups, training_labels
from memdash.analysis.tables.studies import group_easiness, per_epoch_by, per_epoch_mean

# five examples: ids 0-3 train (3 flipped), 4 test
EXAMPLES = pd.DataFrame(
    {
        "example_id": np.arange(5, dtype=np.int64),
        "split": ["train"] * 4 + ["test"],
        "label": np.array([0, 1, 2, 0, 1], dtype=np.int64),
        "true_label": np.array([0, 1, 2, 1, 1], dtype=np.int64),
        "is_noisy": [False, False, False, True, False],
        "is_canary": [False] * 5,
    }
)
CONFIG = {"data": {"dataset": "synthetic", "noise": 0.0, "seed": 0}, "train": {"epochs": 1}}


def _run(path, seed, correct, sensitivity, *, config=CONFIG):
    """A complete run with epochs 0 and 1: `correct` and `sensitivity` are (2, 5) per epoch and
    example (NaN sensitivity: not measured)."""
    w = RunWriter.create(
        path,
        config=config | {"seed": seed},
        examples=EXAMPLES,
        inputs=np.zeros((5, 2), dtype=np.float32),
        n_classes=3,
    )
    for epoch in (0, 1):
        w.write_trace(
            "eval",
            epoch,
            pd.DataFrame(
                {
                    "source": ["eval"] * 5,
                    "epoch": np.full(5, epoch, dtype=np.int32),
                    "example_id": np.arange(5, dtype=np.int64),
                    "loss": np.ones(5, dtype=np.float32),
                    "prob_label": np.full(5, 0.5, dtype=np.float32),
                    "margin": np.zeros(5, dtype=np.float32),
                    "pred": np.zeros(5, dtype=np.int32),
                    "correct": np.asarray(correct[epoch], dtype=bool),
                    "loss_sensitivity": np.asarray(sensitivity[epoch], dtype=np.float32),
                }
            ),
        )
        w.commit_epoch(epoch)
    w.finish("complete")
    return Run.open(path)


NAN = float("nan")


@pytest.fixture
def group(tmp_path):
    right = [
        [[1, 0, 0, 0, 1], [1, 1, 0, 0, 1]],  # seed 0
        [[1, 0, 0, 1, 0], [1, 1, 1, 0, 0]],  # seed 1
        [[0, 0, 0, 0, 0], [1, 0, 0, 1, 1]],  # seed 2
    ]
    sens = [
        [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]],
        [[1, 2, 3, 4, 5], [2, 4, NAN, 8, 10]],
        [[1, 2, 3, 4, 5], [3, 6, 9, NAN, 15]],
    ]
    return [_run(tmp_path / "g" / f"seed_{s}", s, right[s], sens[s]) for s in range(3)]


def test_easiness_is_the_share_of_seeds_right_on_each_training_example(group):
    after_1 = group_easiness(group, 1)
    assert after_1["example_id"].tolist() == [0, 1, 2, 3]  # the test example left out
    # example 0: right in 3 of 3 seeds; 1: seeds 0 and 1; 2: seed 1; 3: seed 2
    assert after_1["easiness"].tolist() == pytest.approx([1, 2 / 3, 1 / 3, 1 / 3])
    assert group_easiness(group, 0)["easiness"].tolist() == pytest.approx([2 / 3, 0, 0, 1 / 3])


def test_trace_means_per_epoch_and_kind_skip_missing_values(group):
    kinds = pd.Series(["clean", "clean", "clean", "flipped", "test"], index=range(5))
    table = per_epoch_by(group[1], "loss_sensitivity", kinds).set_index(["epoch", "group"])
    # seed 1, epoch 1: clean 2, 4 and a NaN -> 3 over 2 examples; flipped 8; test 10
    assert table.loc[(1, "clean"), "value"] == pytest.approx(3.0)
    assert table.loc[(1, "clean"), "examples"] == 2
    assert table.loc[(1, "flipped"), "value"] == pytest.approx(8.0)
    assert table.loc[(0, "clean"), "value"] == pytest.approx(2.0)
    assert table.loc[(0, "test"), "value"] == pytest.approx(5.0)
    # examples missing from the groups are left out
    only = per_epoch_by(group[1], "loss_sensitivity", kinds.iloc[:1])
    assert set(only["group"]) == {"clean"} and only["value"].tolist() == pytest.approx([1, 2])
    # the training-split mean: (3 + 6 + 9) / 3 for seed 2 at epoch 1 (example 3 missing)
    assert per_epoch_mean(group[2], "loss_sensitivity")[1] == pytest.approx(6.0)


def test_groups_are_named_by_their_folder_or_first_run(group, tmp_path):
    shuffled = CONFIG | {"data": CONFIG["data"] | {"noise": 1.0, "corruption": "random_labels"}}
    right, sens = [[1] * 5, [1] * 5], [[1] * 5, [1] * 5]
    # two groups whose runs share one folder: named by the first run, with their seeds
    mixed = [_run(tmp_path / "mixed" / f"r{s}", s, right, sens, config=shuffled) for s in range(2)]
    mixed += [
        _run(tmp_path / "mixed" / f"n{s}", s, right, sens, config=CONFIG | {"x": 1})
        for s in range(2)
    ]
    named = group_names(seed_groups([*group, *mixed]))
    assert {name: [r.name for r in runs] for name, runs in named.items()} == {
        "g": ["seed_0", "seed_1", "seed_2"],
        "r0 (2 seeds)": ["r0", "r1"],
        "n0 (2 seeds)": ["n0", "n1"],
    }
    assert training_labels(group[0].config) == "true labels"
    assert training_labels(mixed[0].config) == "random labels"
    half = {"data": {"noise": 0.2, "corruption": "symmetric"}}
    assert training_labels(half) == "20% symmetric labels"


def test_a_repeated_group_name_gets_a_number(tmp_path):
    right, sens = [[1] * 5, [1] * 5], [[1] * 5, [1] * 5]
    a = [_run(tmp_path / "a" / "same" / f"s{s}", s, right, sens) for s in range(2)]
    other = CONFIG | {"x": 2}
    b = [_run(tmp_path / "b" / "same" / f"s{s}", s, right, sens, config=other) for s in range(2)]
    named = group_names(seed_groups([*a, *b]))
    assert list(named) == ["same", "same (2)"]
    assert [r.path.parent.parent.name for r in named["same (2)"]] == ["b", "b"]


def test_own_loop_configs_of_any_shape_group_and_label():
    """A TraceRecorder's config is the user's: no data section, or one that is not a dict."""
    from memdash.analysis.store.groups import group_key

    for config in ({"lr": 0.1}, {"data": "cifar10", "lr": 0.1}, {"data": None}):
        assert group_key(config | {"seed": 1}) == group_key(config | {"seed": 2})
        assert training_labels(config) == "true labels"
    assert group_key({"data": "a"}) != group_key({"data": "b"})
