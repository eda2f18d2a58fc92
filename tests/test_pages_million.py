"""Pages that draw every point of a large run (issue #27): selection by a box's or lasso's
geometry, the density chart above the threshold, and the Embeddings page and data map on a
synthetic 200,000-example run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memdash.dashboard.app_pages.detail import LISTED
from memdash.dashboard.charts import density
from memdash.dashboard.charts.density import (
    DENSITY_ABOVE,
    every_point,
    is_density,
    overlay_rows,
    raster_bins,
    raster_rgba,
)
from memdash.dashboard.charts.selection import in_box, in_polygon, in_selection
from memdash.dashboard.palette import KIND_COLORS


def write_map_run(path: Path, n: int, *, epochs: int = 2, seed: int = 0) -> Path:
    """A synthetic classifier run of `n` examples written with memdash's own writer, shaped
    for the map pages: 10 classes, a sixth held out, 10% of the training labels flipped, 0.5%
    canaries; an eval trace per epoch 0..`epochs`, the `out` layer's (2-wide) embeddings at
    the first and last, its trace scores computed (derived/scores.parquet) and a made-up 2-D
    map per embedded epoch (derived/umap/out.parquet: ten clusters, one per true label)."""
    import pyarrow as pa

    from memdash.analysis.steps.scores import compute_scores
    from memdash.analysis.store import Run, RunWriter

    rng = np.random.default_rng(seed)
    split = np.where(np.arange(n) < n - n // 6, "train", "test").astype(object)
    train = split == "train"
    true = rng.integers(0, 10, n)
    noisy = train & (rng.random(n) < 0.1)
    canary = train & ~noisy & (rng.random(n) < 0.005)
    label = np.where(noisy, (true + 1 + rng.integers(0, 9, n)) % 10, true)
    examples = pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "split": split,
            "label": label,
            "true_label": true,
            "is_noisy": noisy,
            "is_canary": canary,
        }
    )
    config = {
        "data": {"dataset": "synthetic", "n_examples": n, "shape": [4, 4]},
        "train": {"epochs": epochs},
        "record": {"embed_layers": ["out"], "embed_epochs": [0, epochs]},
    }
    inputs = rng.random((n, 4, 4), dtype=np.float32)
    writer = RunWriter.create(
        path, config=config, examples=examples, inputs=inputs, n_classes=10, layers=["out"]
    )
    learned = np.where(noisy | canary, epochs, rng.integers(1, epochs + 1, n))
    for epoch in range(epochs + 1):
        right = learned <= epoch
        loss = np.where(right, rng.exponential(0.1, n), rng.exponential(1.0, n) + 0.7)
        writer.write_trace(
            "eval",
            epoch,
            pa.table(
                {
                    "source": pa.array(["eval"] * n),
                    "epoch": np.full(n, epoch, np.int32),
                    "example_id": np.arange(n, dtype=np.int64),
                    "loss": loss.astype(np.float32),
                    "prob_label": np.exp(-loss).astype(np.float32),
                    "margin": np.where(right, 1.0, -1.0).astype(np.float32),
                    "pred": np.where(right, label, (label + 1) % 10).astype(np.int32),
                    "correct": right,
                }
            ),
        )
        if epoch in (0, epochs):
            writer.write_embedding(epoch, "out", rng.normal(size=(n, 2)).astype(np.float16))
        writer.commit_epoch(epoch)
    writer.finish("complete")
    run = Run.open(path)
    run.replace_derived("scores", compute_scores(run), {"synthetic": True})
    centres = rng.normal(scale=6.0, size=(10, 2))
    maps = []
    for epoch in (0, epochs):
        spread = 3.0 if epoch == 0 else 1.0
        xy = centres[true] + spread * rng.normal(size=(n, 2))
        xy[noisy] = centres[label[noisy]] + 0.5 * rng.normal(size=(int(noisy.sum()), 2))
        maps.append(
            pd.DataFrame(
                {
                    "epoch": np.full(n, epoch, np.int32),
                    "example_id": np.arange(n, dtype=np.int64),
                    "x": xy[:, 0].astype(np.float32),
                    "y": xy[:, 1].astype(np.float32),
                }
            )
        )
    run.replace_derived("umap", {"umap/out.parquet": pd.concat(maps)}, {"synthetic": True})
    return path


# six points: (0, 0), (1, 1), (2, 2), (3, 0), (1, 3) and one with no x
X = np.array([0.0, 1.0, 2.0, 3.0, 1.0, np.nan])
Y = np.array([0.0, 1.0, 2.0, 0.0, 3.0, 1.0])


def test_a_box_selects_the_points_between_its_corners():
    # corners given in either order; edges included; NaN never inside
    assert in_box(X, Y, [2.5, 0.5], [3.5, 0.5]).tolist() == [0, 1, 1, 0, 1, 0]
    assert in_box(X, Y, [1.0, 2.0], [1.0, 2.0]).tolist() == [0, 1, 1, 0, 0, 0]


def test_a_lasso_selects_the_points_inside_its_polygon():
    # a triangle: at y = 3 its left edge is at x = 1.67, right of (1, 3)
    triangle = ([-1.0, 5.0, 2.0], [-1.0, -1.0, 3.5])
    assert in_polygon(X, Y, *triangle).tolist() == [1, 1, 1, 1, 0, 0]
    # a C open to the right (even-odd: the notch between y = 1 and 2 is outside)
    c_shape = ([0, 4, 4, 1, 1, 4, 4, 0], [0, 0, 1, 1, 2, 2, 3, 3])
    x, y = np.array([0.5, 2, 2, 3, 5, 0.5]), np.array([0.5, 1.5, 2.5, 0.5, 1, 2.9])
    assert in_polygon(x, y, *c_shape).tolist() == [1, 0, 1, 1, 0, 1]
    assert not in_polygon(X, Y, [0, 1], [0, 1]).any()  # two vertices enclose nothing


def test_a_selection_event_unites_its_boxes_and_lassos():
    event = {
        "selection": {
            "points": [{"customdata": [4]}],
            "box": [{"xref": "x", "yref": "y", "x": [2.5, 3.5], "y": [-0.5, 0.5]}],
            "lasso": [
                {"xref": "x", "yref": "y", "x": [-0.5, 1.5, -0.5], "y": [-0.5, 0.5, 1.5]},
                {"xref": "x2", "yref": "y2", "x": [0, 9, 0], "y": [0, 0, 9]},  # other axes
            ],
        }
    }
    assert in_selection(X, Y, event).tolist() == [1, 0, 0, 1, 0, 0]
    click = {"selection": {"points": [{"customdata": [4]}], "box": [], "lasso": []}}
    assert in_selection(X, Y, click) is None and in_selection(X, Y, None) is None


def test_raster_bins_and_colours_are_hand_computed():
    # a 2 x 1 raster over x in [0, 2], y in [0, 1]: the right edge belongs to the last bin
    x, y = np.array([0.5, 1.5, 2.0, 3.0, np.nan]), np.array([0.5, 0.5, 1.0, 0.5, 0.5])
    bins = raster_bins(x, y, x_range=(0, 2), y_range=(0, 1), shape=(2, 1))
    assert bins.tolist() == [0, 1, 1, -1, -1]
    rgb = np.array([[255, 0, 0], [0, 0, 255], [0, 0, 55], [9, 9, 9], [9, 9, 9]], float)
    image = raster_rgba(bins, rgb, shape=(2, 1))
    assert image.shape == (1, 2, 4) and image.dtype == np.uint8
    # one point: alpha 255 * (0.35 + 0.65 * ln 2 / ln 3) = 193.8
    assert image[0, 0].tolist() == [255, 0, 0, 194]
    assert image[0, 1].tolist() == [0, 0, 155, 255]  # two points: their mean, opaque
    # 1 x 2 (one column, two rows): the image's first row is the top one
    tall = raster_bins(
        np.array([0.5]), np.array([0.2]), x_range=(0, 1), y_range=(0, 1), shape=(1, 2)
    )
    assert tall.tolist() == [0]  # row 0 at the bottom
    assert raster_rgba(tall, np.array([[1.0, 2.0, 3.0]]), shape=(1, 2))[:, 0, 3].tolist() == [
        0,
        255,
    ]


def test_points_take_their_kind_or_score_colour():
    table = pd.DataFrame({"kind": ["clean", "flipped", "mystery"], "s": [0.0, 1.0, np.nan]})
    colors = density.category_colors(table, "kind")
    assert list(colors) == ["clean", "flipped", "mystery"]
    rgb = density.point_rgb(table, "kind", colors=colors)
    assert rgb[1].tolist() == [0xD5, 0x5E, 0x00]  # the palette's flipped
    assert rgb[2].tolist() == [0x99, 0x99, 0x99]  # a kind the palette does not know
    scores = density.point_rgb(table, "s")  # Viridis from the lowest to the highest value
    assert scores[0].tolist() == [68, 1, 84] and scores[1].tolist() == [253, 231, 37]
    assert np.isnan(scores[2]).all()  # no value: drawn grey in the raster
    assert np.isnan(density.point_rgb(table.assign(s=np.nan), "s")).all()


def test_a_sample_keeps_every_rare_kind():
    kinds = np.array(["clean"] * 19_995 + ["canary"] * 5)
    table = pd.DataFrame({"example_id": np.arange(20_000), "kind": kinds})
    drawn = overlay_rows(table, "kind", n=2_000, seed=0)
    assert (drawn["kind"] == "canary").sum() == 5  # all five, though 2,000 of 20,000 is 10%
    assert 1_800 < len(drawn) < 2_200
    assert drawn["example_id"].is_monotonic_increasing  # in the table's order
    assert drawn.equals(overlay_rows(table, "kind", n=2_000, seed=0))  # seeded
    assert overlay_rows(table, None, n=50_000) is table  # no more rows than asked: all


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "example_id": np.arange(n),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "kind": rng.choice(["clean", "flipped", "test"], n),
            "label": rng.integers(0, 10, n),
            "true_label": rng.integers(0, 10, n),
            "score": rng.random(n),
        }
    )


@pytest.mark.parametrize("colour", ["kind", "score", "label"])
def test_a_chart_above_the_threshold_draws_density_and_no_per_point_strings(colour):
    table = _table(DENSITY_ABOVE + 5_000)
    fig = every_point(table, x="x", y="y", color=colour)
    assert is_density(fig)
    image = fig.layout.images[0]
    assert image.source.startswith("data:image/png;base64,") and image.layer == "below"
    assert list(fig.layout.xaxis.range) == [image.x, image.x + image.sizex]
    drawn = sum(len(t.x) for t in fig.data)
    assert drawn < len(table) and drawn >= density.OVERLAY_POINTS * 0.9
    for trace in fig.data:  # numbers only per point: nothing sent as a string per point
        assert trace.customdata.dtype.kind == "f"
        assert trace.text is None and trace.hovertext is None
    if colour == "kind":  # the points in the raster's colours
        assert {t.name: t.marker.color for t in fig.data}["flipped"] == KIND_COLORS["flipped"]
    if colour == "score":  # one colour scale, all the rows' span (not the sample's)
        assert fig.data[0].marker.cmin == table["score"].min()
    small = every_point(table.head(50), x="x", y="y", color=colour)
    assert not is_density(small) and sum(len(t.x) for t in small.data) == 50


def test_a_density_chart_refuses_a_selection_without_its_columns():
    from streamlit.testing.v1 import AppTest

    def script():
        import numpy as np
        import pandas as pd

        from memdash.dashboard.app_pages.common import selectable_scatter
        from memdash.dashboard.charts.density import every_point

        table = pd.DataFrame({"example_id": np.arange(30), "x": np.arange(30.0)})
        table["y"], table["kind"] = table["x"], "clean"
        fig = every_point(table, x="x", y="y", color="kind", density_above=10)
        selectable_scatter(fig, table, key="map")

    at = AppTest.from_function(script, default_timeout=60).run()
    assert "pass the x and y columns drawn" in str(at.exception[0].value)


@pytest.fixture(scope="module")
def big_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("million")
    write_map_run(root / "big", 200_000, epochs=2)
    return root


def _page(name):
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def _open(name: str, root: Path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MEMDASH_ROOTS", str(root))
    at = AppTest.from_function(_page, args=(name,), default_timeout=120)
    at.query_params["run"] = "big"
    return at.run()


def _shapes(**shapes) -> dict:
    selection = {"points": [], "box": [], "lasso": []}
    for kind, (xs, ys) in shapes.items():
        selection[kind] = [{"xref": "x", "yref": "y", "x": xs, "y": ys}]
    return {"selection": selection}


def test_the_embeddings_page_draws_200000_points_and_lists_a_lasso(big_root, monkeypatch):
    at = _open("embeddings", big_root, monkeypatch)
    assert not at.exception
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["layout"]["images"][0]["source"].startswith("data:image/png")
    assert len(chart.proto.spec) < 3_000_000  # the raster and a sample, not 200,000 points
    assert any("All 200,000 examples are drawn" in c.value for c in at.caption)
    umap = pd.read_parquet(big_root / "big" / "derived" / "umap" / "out.parquet")
    last = umap[umap["epoch"] == 2]
    lasso = ([0.0, 6.0, 0.0], [0.0, 0.0, 6.0])  # the triangle x, y >= 0, x + y < 6
    inside = (last["x"] >= 0) & (last["y"] >= 0) & (last["x"] + last["y"] < 6)
    expected = last.loc[inside, "example_id"].tolist()
    assert LISTED < len(expected) < 100_000  # more than the table lists: the first ones
    at.session_state["embeddings_map"] = _shapes(lasso=lasso)
    at.run()
    assert not at.exception
    assert any(f"{len(expected):,} selected examples" in m.value for m in at.markdown)
    assert at.dataframe[0].value["example_id"].tolist() == expected[:LISTED]
    assert any(f"(the first {LISTED:,} listed)" in m.value for m in at.markdown)


def test_the_data_map_of_200000_examples_lists_a_box(big_root, monkeypatch):
    at = _open("forgetting", big_root, monkeypatch)
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert spec["layout"]["images"] and spec["layout"]["xaxis"]["range"][0] == 0
    scores = pd.read_parquet(big_root / "big" / "derived" / "scores.parquet")
    examples = pd.read_parquet(big_root / "big" / "examples.parquet")
    train = scores[examples["split"].to_numpy() == "train"]
    box = ([0.3, 0.6], [0.2, 0.9])
    inside = train["variability"].between(*box[0]) & train["confidence"].between(*box[1])
    at.session_state["forgetting_map"] = _shapes(box=box)
    at.run()
    assert not at.exception
    listed = at.dataframe[0].value["example_id"].tolist()
    assert listed == train.loc[inside, "example_id"].tolist()[:LISTED] and len(listed) > 1_000


@pytest.mark.browser
def test_a_browser_draws_200000_points_and_lists_a_mouse_lasso(big_root):
    """The real lasso: Streamlit's frontend sends the polygon, the page lists every example
    inside (not only the sampled points the browser selected)."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, FLAGS, serve

    with serve(big_root) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/embeddings?run=big")
        page.wait_for_selector(".js-plotly-plot .imagelayer image", state="attached")
        area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
        r = area["height"] / 4
        page.mouse.move(cx - r, cy - r)
        page.mouse.down()
        for x, y in ((cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r), (cx - r, cy - r + 2)):
            page.mouse.move(x, y, steps=5)
        page.mouse.up()
        said = page.get_by_text("selected examples").first
        said.wait_for(timeout=60_000)
        selected = int(said.inner_text().split(" selected")[0].replace(",", ""))
        # the chart draws about 20,000 sampled points in all: far more are listed
        assert selected > 1.5 * density.OVERLAY_POINTS
        assert page.locator("[data-testid='stException']").count() == 0
        browser.close()
