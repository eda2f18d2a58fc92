"""The proxies' charts (dashboard/charts/proxies.py): a proxy against the memorization score,
coloured by kind, flagged end up, example ids in customdata; the scoreboard's dots and
intervals; the flagged end in words."""

import numpy as np
import pandas as pd
import pytest

from memdash.dashboard.charts.proxies import (
    axis_title,
    end_text,
    proxy_scatter,
    scoreboard_chart,
)
from memdash.dashboard.palette import KIND_COLORS

FIVE = pd.DataFrame(
    {
        "example_id": [10, 11, 12, 13, 14],
        "kind": ["clean", "clean", "flipped", "flipped", "canary"],
        "label": [0, 1, 2, 3, 4],
        "true_label": [0, 1, 0, 1, 4],
        "mem_score": [0.0, 0.1, 0.9, 0.7, 1.0],
        "confidence": [0.9, 0.8, 0.2, 0.3, 0.6],
        "mean_loss": [0.1, 0.2, 2.0, 1.5, 0.3],
        "aum": [3.0, 2.0, -1.0, -0.5, 1.0],
        "knn_disagreement@fc1": [0.0, 0.0, 1.0, 1.0, 0.0],
    }
)


def _trace(fig, name):
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


def test_end_text_names_the_flagged_end_from_the_direction_dictionary():
    assert end_text("mem_score") == "higher = more memorized"
    assert end_text("neurons_zeroed") == "lower = more memorized"
    assert end_text("confidence_train") == "lower = harder, more atypical"
    assert end_text("knn_disagreement@fc1") == "higher = harder, more atypical"
    assert end_text("knn_disagreement@fc1", short=True) == "higher = harder"
    assert end_text("neurons_zeroed", short=True) == "lower = more memorized"
    assert axis_title("aum") == "area under the margin<br>(lower = harder, more atypical)"
    with pytest.raises(ValueError, match="'no_such_score' has no direction"):
        end_text("no_such_score")


def test_proxy_scatter_colours_each_kind_and_carries_the_example_ids():
    fig = proxy_scatter(FIVE, proxy="mean_loss", title="t")
    assert sorted(t.name for t in fig.data) == ["canary", "clean", "flipped"]
    for kind in ("clean", "flipped", "canary"):
        trace = _trace(fig, kind)
        assert trace.marker.color == KIND_COLORS[kind]
        rows = FIVE[FIVE["kind"] == kind]
        assert np.asarray(trace.customdata)[:, 0].tolist() == rows["example_id"].tolist()
        assert list(trace.x) == rows["mem_score"].tolist()
        assert list(trace.y) == rows["mean_loss"].tolist()
    assert fig.layout.xaxis.title.text == (
        "memorization score (in minus out accuracy)<br>(higher = more memorized)"
    )
    assert fig.layout.yaxis.title.text == "mean loss (nats)<br>(higher = harder, more atypical)"
    assert fig.layout.yaxis.autorange is None and fig.layout.title.text == "t"


@pytest.mark.parametrize(
    ("proxy", "shown"), [("confidence", (1.02, 0)), ("aum", None)]
)  # a share keeps its 0-to-1 axis, reversed; any other score is reversed by autorange
def test_a_proxy_flagged_low_is_drawn_with_its_axis_reversed(proxy, shown):
    fig = proxy_scatter(FIVE, proxy=proxy)
    assert fig.layout.yaxis.title.text.endswith("(lower = harder, more atypical), axis reversed")
    if shown is None:
        assert fig.layout.yaxis.autorange == "reversed"
    else:
        assert tuple(fig.layout.yaxis.range) == shown


def test_a_whole_number_proxy_is_jittered_and_hovers_with_its_own_value():
    proxy = "knn_disagreement@fc1"
    fig = proxy_scatter(FIVE, proxy=proxy, title="disagreement")
    assert fig.layout.title.text == "disagreement (jittered: the values are whole numbers)"
    assert fig.layout.yaxis.title.text.startswith("k-NN disagreement at fc1<br>")
    flipped = _trace(fig, "flipped")
    y = np.asarray(flipped.y)
    assert np.all(np.abs(y - 1.0) < 0.3) and not np.all(y == 1.0)
    custom = np.asarray(flipped.customdata)
    assert custom[:, 0].tolist() == [12, 13] and custom[:, -1].tolist() == [1.0, 1.0]
    assert f"k-NN disagreement at fc1 %{{customdata[{custom.shape[1] - 1}]:d}}" in (
        flipped.hovertemplate
    )
    assert tuple(fig.layout.yaxis.range) == (-0.5, 1.5) and fig.layout.yaxis.dtick == 1
    again = proxy_scatter(FIVE, proxy=proxy, title="disagreement")  # seeded
    assert np.asarray(_trace(again, "flipped").y).tolist() == y.tolist()


BOARD = pd.DataFrame(
    {
        "proxy": ["mean_loss_train", "knn_disagreement@fc1", "neurons_zeroed"],
        "spearman": [0.8, 0.6, 0.5],
        "spearman_lo": [0.75, 0.5, 0.3],
        "spearman_hi": [0.85, 0.7, 0.6],
        "auroc_flipped": [0.99, 0.9, 0.8],
        "precision_top": [0.0, 0.2, 0.05],
    }
)


def test_scoreboard_chart_draws_each_proxy_in_words_with_its_interval_best_on_top():
    fig = scoreboard_chart(BOARD)
    spearman, precision = fig.data
    names = ["mean loss (nats) (minibatches)", "k-NN disagreement at fc1", "units zeroed to flip"]
    assert list(spearman.y) == names and list(precision.y) == names
    assert list(spearman.x) == [0.8, 0.6, 0.5]
    assert np.allclose(spearman.error_x.array, [0.05, 0.1, 0.1])
    assert np.allclose(spearman.error_x.arrayminus, [0.05, 0.1, 0.2])
    assert list(precision.x) == [0.0, 0.2, 0.05]
    assert spearman.name == "Spearman with the memorization score (95% interval)"
    assert precision.name == "precision at 5% (the proxy's top 5% in the ensemble's)"
    assert fig.layout.yaxis.autorange == "reversed"  # the board's first row at the top
    taller = scoreboard_chart(pd.concat([BOARD, BOARD], ignore_index=True))
    assert taller.layout.height > fig.layout.height


def test_scoreboard_chart_without_an_estimate_shows_the_flips_auroc():
    board = BOARD.assign(spearman=np.nan, spearman_lo=np.nan, spearman_hi=np.nan)
    (trace,) = scoreboard_chart(board).data
    assert list(trace.x) == [0.99, 0.9, 0.8]
    assert trace.name == "AUROC flips (flipped labels against clean)"


def test_widths_chart_draws_each_proxy_within_and_across_ordered_by_across():
    from memdash.dashboard.charts.proxies import widths_chart, widths_table
    from memdash.dashboard.labels import label

    values = {
        "across_confidence": 0.2,
        "within_confidence": 0.8,
        "across_aum": 0.4,
        "within_aum": 0.7,
        "best_across": 0.4,  # not a proxy's
        "share_falling": 0.6,
    }
    table = widths_table(values)
    assert table.set_index("proxy").to_dict("index") == {
        "confidence": {"across": 0.2, "within": 0.8},
        "aum": {"across": 0.4, "within": 0.7},
    }
    fig = widths_chart(table)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [list(t.x) for t in markers] == [[0.7, 0.8], [0.4, 0.2]]  # aum (best across) first
    assert list(markers[0].y) == [label("aum"), label("confidence")]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [list(t.x) for t in lines] == [[0.7, 0.4], [0.8, 0.2]]
