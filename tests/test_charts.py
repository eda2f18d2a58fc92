import pandas as pd

from memdash.dashboard.charts import GROUP_COLORS, training_curves


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


# --- the builders of the other pages ------------------------------------------------------

import numpy as np  # noqa: E402

from memdash.dashboard.app_pages.common import flagged_first  # noqa: E402
from memdash.dashboard.app_pages.compare import mismatch, paired  # noqa: E402
from memdash.dashboard.charts import (  # noqa: E402
    example_input,
    exposure_chart,
    heatmap,
    lines,
    member_histograms,
    one_run_only,
    roc_curves,
    scatter,
    selected_example_ids,
    thumbnail,
    trajectory,
)
from memdash.dashboard.palette import KIND_COLORS  # noqa: E402


def test_colour_images_and_photographs_are_drawn_as_they_are():
    rgb = np.zeros((3, 2, 2), np.float32)
    rgb[0, 0, 0] = 1.0  # one red pixel, the rest black
    rgb[:, 1, 1] = 0.5
    image = thumbnail(rgb)
    assert image.shape == (2, 2, 3)
    np.testing.assert_allclose(image[0, 0], [1, 0, 0])
    np.testing.assert_allclose(image[1, 1], [0.5, 0.5, 0.5])
    fig = example_input(rgb)
    assert fig.data[0].type == "image" and fig.data[0].z[0, 0].tolist() == [255, 0, 0]
    grey = np.array([[[0.0, 1.0]]])  # a dark and a light pixel
    assert thumbnail(grey, photo=True).tolist() == [[0.0, 1.0]]  # as it is
    assert thumbnail(grey).tolist() == [[1.0, 0.0]]  # ink: dark on white
    assert example_input(grey, photo=True).data[0].reversescale is True


def test_thumbnails_of_images_and_signals():
    image = np.array([[[0.0, 2.0], [4.0, 4.0]]])  # (1, 2, 2): ink is high values
    np.testing.assert_allclose(thumbnail(image), [[1.0, 0.5], [0.0, 0.0]])
    line = thumbnail(np.array([[0.0, 1.0, 0.5]]), height=3)  # (1, L): a rasterized line
    assert line.shape == (3, 3)
    assert [int(np.argmin(line[:, i])) for i in range(3)] == [2, 0, 1]  # low values at the bottom


def test_trajectory_marks_forgetting_events():
    frame = pd.DataFrame(
        {
            "epoch": [0, 1, 2, 3],
            "prob_label": [0.1, 0.9, 0.2, 0.8],
            "loss": [2, 0.1, 1.6, 0.2],
            "correct": [0, 1, 0, 1],
        }
    )
    fig = trajectory(frame)
    events = [t for t in fig.data if t.name.startswith("forgetting event")]
    assert len(events) == 1 and list(events[0].x) == [2]  # right at 1, wrong at 2
    # right and wrong epochs are told apart by the marker's fill (a legend says which)
    assert list(fig.data[0].marker.symbol) == ["circle-open", "circle", "circle-open", "circle"]
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d"


def test_histograms_of_groups_share_their_bins_and_kind_colours():
    from memdash.dashboard.charts import histograms

    frame = pd.DataFrame({"kind": ["clean"] * 4 + ["flipped"] * 2, "v": [0, 1, 1, 2, 5, 7]})
    fig = histograms(frame, value="v", group="kind")
    bins = {(t.xbins.start, t.xbins.end, t.xbins.size) for t in fig.data}
    assert bins == {(-0.5, 7.5, 1.0)}  # integers: unit bins centred on whole numbers, shared
    assert [t.marker.color for t in fig.data] == [KIND_COLORS["clean"], KIND_COLORS["flipped"]]
    floats = histograms(frame.assign(v=frame["v"] / 10), value="v", group="kind")
    assert len({(t.xbins.start, t.xbins.size) for t in floats.data}) == 1
    assert floats.layout.xaxis.title.text == "v"


def test_palette_gives_every_kind_one_distinct_colour_and_groups_follow_it():
    from memdash.dashboard.palette import GROUP_COLORS

    colours = list(KIND_COLORS.values())
    assert set(KIND_COLORS) == {"clean", "flipped", "canary", "reference", "test", "duplicate"}
    assert len(set(colours)) == len(colours)

    def lab(hex_colour):
        """sRGB to CIELAB (D65): perceptual distances between colours."""
        c = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], float) / 255
        c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
        xyz = (
            np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
            @ c
            / np.array([0.9505, 1.0, 1.089])
        )
        f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])

    # no two kinds nearly alike: every pair at least 25 apart in CIELAB (delta E 76)
    gaps = [
        np.linalg.norm(lab(a) - lab(b)) for i, a in enumerate(colours) for b in colours[i + 1 :]
    ]
    assert min(gaps) > 25
    assert GROUP_COLORS["train (flipped)"] == KIND_COLORS["flipped"]
    assert GROUP_COLORS["test"] == KIND_COLORS["test"]


def test_heatmap_pivots_and_orders_rows():
    frame = pd.DataFrame(
        {
            "epoch": [0, 0, 5, 5],
            "layer": ["fc1", "out", "fc1", "out"],
            "p_same": [0.1, 0.2, 0.3, 0.4],
        }
    )
    fig = heatmap(frame, x="epoch", y="layer", value="p_same", y_order=["out", "fc1"])
    assert list(fig.data[0].y) == ["out", "fc1"] and list(fig.data[0].x) == ["0", "5"]
    np.testing.assert_allclose(fig.data[0].z, [[0.2, 0.4], [0.1, 0.3]])
    fig = heatmap(frame, x="epoch", y="layer", value="p_same", x_order=[5, 0, 9])
    assert list(fig.data[0].x) == ["5", "0"]  # a column without data is left out
    np.testing.assert_allclose(fig.data[0].z, [[0.3, 0.1], [0.4, 0.2]])


def test_lines_take_study_colours_and_given_ones():
    frame = pd.DataFrame(
        {
            "epoch": [0, 1] * 3,
            "cka": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "group": ["true labels"] * 2 + ["random labels"] * 2 + ["mine"] * 2,
        }
    )
    fig = lines(frame, x="epoch", y="cka", color="group", colors={"mine": "#123456"})
    colours = {t.name: t.line.color for t in fig.data}
    assert colours == {
        "true labels": KIND_COLORS["clean"],
        "random labels": KIND_COLORS["flipped"],
        "mine": "#123456",
    }


def test_scatter_colours_and_samples_and_selection_reads_example_ids():
    table = pd.DataFrame(
        {
            "example_id": range(10),
            "x": range(10),
            "y": range(10),
            "kind": ["clean"] * 7 + ["flipped"] * 3,
            "score": np.linspace(0, 1, 10),
        }
    )
    by_kind = scatter(table, x="x", y="y", color="kind")
    assert [t.name for t in by_kind.data] == ["clean", "flipped"]
    # the example id leads each point's customdata (selections read it), then the hover facts
    assert [row[0] for row in by_kind.data[1].customdata] == [7, 8, 9]
    assert by_kind.data[1].marker.color == KIND_COLORS["flipped"]
    assert "kind: clean" in by_kind.data[0].hovertemplate  # constant per trace: not sent per point
    assert by_kind.data[0].customdata.dtype == float  # numeric only: a packed typed array
    # never-trained kinds are drawn first, underneath the trained ones
    mixed = table.assign(kind=["test"] * 5 + ["clean"] * 5)
    assert [t.name for t in scatter(mixed, x="x", y="y", color="kind").data] == ["test", "clean"]
    by_score = scatter(table, x="x", y="y", color="score", max_points=4)
    # a numeric colour: one trace per kind on one shared scale, the value in the hover data
    assert sum(len(t.x) for t in by_score.data) == 4
    assert {t.marker.cmin for t in by_score.data} == {
        min(min(t.marker.color) for t in by_score.data)
    }
    assert "confidence" not in by_score.data[0].hovertemplate
    assert by_score.data[0].customdata.shape[1] == 2  # id, then the score
    event = {"selection": {"points": [{"customdata": 8}, {"customdata": [3, "clean"]}, {"x": 1}]}}
    assert selected_example_ids(event) == [3, 8]
    # a row of a packed (typed-array) customdata arrives as a dict keyed by position
    packed = {"selection": {"points": [{"customdata": {"0": 12.0, "1": 4.0, "2": 4.0}}]}}
    assert selected_example_ids(packed) == [12]
    assert selected_example_ids(None) == [] and selected_example_ids({"selection": {}}) == []


def test_exposure_chart_draws_the_ceiling_and_the_baseline():
    table = pd.DataFrame(
        {
            "epoch": [1, 1, 1],
            "kind": ["canary", "canary", "reference"],
            "example_id": [0, 1, 2],
            "repeats": [1, 50, 0],
            "exposure_interpolation": [1.0, 8.0, 1.4],
        }
    )
    fig = exposure_chart(table, epoch=1, method="exposure_interpolation", ceiling=8.97)
    assert [y for box in fig.data for y in box.y] == [1.0, 8.0]  # canaries only, a box a group
    texts = [a.text for a in fig.layout.annotations]
    assert any("8.97" in t for t in texts) and any("1.44" in t for t in texts)


def test_selection_helpers_of_the_pages():
    table = pd.DataFrame(
        {
            "example_id": [0, 1, 2, 3],
            "confidence": [0.9, 0.1, np.nan, 0.5],
            "mem_score": [0.0, 0.9, 0.5, np.nan],
        }
    )
    assert flagged_first(table, "confidence", 2)["example_id"].tolist() == [1, 3]  # low first
    assert flagged_first(table, "mem_score", 2)["example_id"].tolist() == [1, 2]  # high first
    a = pd.DataFrame(
        {
            "example_id": [0, 1, 2],
            "kind": ["clean"] * 3,
            "label": [0, 1, 2],
            "true_label": [0, 1, 2],
            "mem_score": [0.9, 0.1, 0.8],
        }
    )
    b = a.assign(mem_score=[0.2, 0.7, 0.9])
    both = paired(a, b, "mem_score")
    only_a, only_b = one_run_only(both, "mem_score", 0.5, "higher")
    assert only_a["example_id"].tolist() == [0] and only_b["example_id"].tolist() == [1]
    assert mismatch(a, b) == "" and "3 examples against 2" in mismatch(a, b.iloc[:2])
    assert "true labels differ" in mismatch(a, b.assign(true_label=[0, 1, 1]))


DERIVED = (
    *("knn.parquet", "exposure.parquet", "exposure_fits.parquet", "localization.parquet"),
    *("localization_layers.parquet", "rewinding.parquet", "retraining.parquet"),
    "heldout.parquet",
)


def test_every_column_a_page_shows_has_a_human_label():
    """Walk the sample suite: the example table (Examples, Forgetting, Embeddings, Compare),
    the derived tables (k-NN, Exposure, Localization) and the gradient accounting."""
    from pathlib import Path

    from memdash.analysis.store import Run, discover_runs
    from memdash.analysis.tables.examples import example_table
    from memdash.dashboard.labels import LABELS, label

    columns: set[str] = set()
    for path in discover_runs([Path(__file__).resolve().parents[1] / "sample_runs"]):
        run = Run.open(path)
        columns |= set(example_table(run).columns) | set(run.layer_grads().columns)
        for name in DERIVED:
            if run.derived_path(name).is_file():
                columns |= set(run.read_derived(name).columns)
    assert len(columns) > 60
    unlabelled = {c for c in columns if c not in LABELS and c.removesuffix("_train") not in LABELS}
    assert not unlabelled
    assert label("forgetting_events_train") == "forgetting events (minibatches)"
    assert label("mem_score A") == "memorization score (in minus out accuracy), run A"


def test_paired_scatter_jitters_whole_numbers_and_rings_the_flagged_points_where_they_are():
    from memdash.dashboard.charts import paired_scatter

    both = pd.DataFrame(
        {
            "example_id": [0, 1, 2, 3],
            "kinds": ["clean", "clean", "flipped", "test"],
            "label": [1, 2, 3, 4],
            "true_label": [1, 2, 0, 4],
            "forgetting_events A": [0, 3, 5, 0],
            "forgetting_events B": [0, 0, 5, 1],
        }
    )
    fig = paired_scatter(both, score="forgetting_events", threshold=2.5, end="higher", word="high")
    points = {
        row[0]: (x, y)
        for trace in fig.data[:-1]
        for row, x, y in zip(trace.customdata, trace.x, trace.y, strict=True)
    }
    assert abs(points[1][0] - 3) <= 0.3 and points[1][0] != 3  # jittered, by < half a unit
    ring = fig.data[-1]
    assert ring.name == "high in A only (1)"  # example 1: 3 in A, 0 in B (5 and 5 in both)
    assert (ring.x[0], ring.y[0]) == points[1]  # the ring sits on the jittered point
    assert [t.name for t in fig.data[:-1]] == ["test", "clean", "flipped"]  # test underneath
    assert {s.x0 for s in fig.layout.shapes if s.x0 == s.x1} == {2.5}


def test_roc_curves_are_log_log_with_chance_and_each_attack_in_its_colour():
    from memdash.dashboard.palette import ATTACK_COLORS

    curves = pd.DataFrame(
        {
            "attack": ["online"] * 3 + ["global"] * 3,
            "fpr": [1e-4, 1e-2, 1.0] * 2,
            "tpr": [0.0, 0.3, 1.0, 1e-4, 0.01, 1.0],
        }
    )
    fig = roc_curves(curves, fpr=0.01)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert list(fig.layout.xaxis.range) == [-4, 0]
    chance, online, global_ = fig.data
    assert chance.name == "chance" and list(chance.x) == [1e-4, 1]
    assert online.name == "online LiRA" and online.line.color == ATTACK_COLORS["online"]
    assert list(online.y) == [1e-4, 0.3, 1.0]  # a TPR of 0 sits at the axis' floor
    assert global_.name == "global threshold"
    assert fig.layout.shapes[0].x0 == 0.01  # the accepted false-positive rate


def test_member_histograms_share_bins_and_mark_the_threshold():
    fig = member_histograms(np.array([3.0, 4.0, 5.0]), np.array([-1.0, 0.0]), threshold=1.5)
    out, inside = fig.data
    assert out.name == "models that held it out" and inside.name == "models trained on it"
    assert out.xbins == inside.xbins and out.histnorm == "percent"
    assert fig.layout.shapes[0].x0 == 1.5
