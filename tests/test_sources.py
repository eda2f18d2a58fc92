"""Which trace a score comes from: selecting the eval or the minibatch columns."""

import pandas as pd
import pytest

from memdash.analysis.store.sources import check_source, has_source, select_source

TABLE = pd.DataFrame(
    {
        "example_id": [0, 1],
        "forgetting_events": [1, 0],
        "confidence": [0.9, 0.2],
        "mem_score": [0.1, 0.8],
        "forgetting_events_train": [3, 2],
        "confidence_train": [0.7, 0.1],
    }
)


def test_the_train_source_moves_the_train_columns_under_the_plain_names():
    out = select_source(TABLE, "train")
    assert list(out.columns) == ["example_id", "forgetting_events", "confidence", "mem_score"]
    assert out["forgetting_events"].tolist() == [3, 2]
    assert out["confidence"].tolist() == [0.7, 0.1]
    assert out["mem_score"].tolist() == [0.1, 0.8]  # not a trace score: untouched
    assert TABLE["forgetting_events"].tolist() == [1, 0]  # the input is not modified


def test_the_eval_source_is_the_table_itself():
    assert select_source(TABLE, "eval") is TABLE


def test_a_missing_or_unknown_source_is_named():
    eval_only = TABLE.drop(columns=["forgetting_events_train", "confidence_train"])
    assert has_source(eval_only, "eval") and not has_source(eval_only, "train")
    with pytest.raises(ValueError, match="training minibatches"):
        select_source(eval_only, "train")
    with pytest.raises(ValueError, match="choose one of eval, train"):
        check_source("test")
