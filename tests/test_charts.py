import pandas as pd

from dashboard.charts import GROUP_COLORS, training_curves


def _curves(runs):
    rows = []
    for run in runs:
        for group in ("train (clean)", "train (flipped)", "test"):
            for epoch in range(3):
                rows.append(
                    {
                        "run": run,
                        "epoch": epoch,
                        "group": group,
                        "accuracy": epoch / 2,
                        "loss": 1.0 - epoch / 4,
                    }
                )
    return pd.DataFrame(rows)


def test_one_line_per_group_coloured_by_group():
    fig = training_curves(_curves(["a"]))
    assert [t.name for t in fig.data] == ["train (clean)", "train (flipped)", "test"]
    assert fig.data[1].line.color == GROUP_COLORS["train (flipped)"]
    assert list(fig.data[0].y) == [0.0, 0.5, 1.0]
    assert fig.layout.yaxis.range == (0, 1.02)


def test_overlaid_runs_differ_by_dash_and_name():
    fig = training_curves(_curves(["a", "b"]), metric="loss")
    assert len(fig.data) == 6
    assert fig.data[0].name == "a: train (clean)" and fig.data[3].name == "b: train (clean)"
    assert fig.data[0].line.dash != fig.data[3].line.dash
    assert list(fig.data[0].y) == [1.0, 0.75, 0.5]
    assert fig.layout.yaxis.title.text == "loss"


def test_empty_frame_gives_an_empty_figure():
    assert len(training_curves(_curves([]).iloc[0:0]).data) == 0
