"""What the browser tour of issue 23 found on the pages, checked on what they render: commands
to copy as code blocks that run as shown, heatmaps sized to be read, facts that fit, a default
pair of runs that can be compared, seeds named with their group, pixels drawn as pixels, and
the exposure chart's labels on their lines."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from memdash.dashboard.labels import label

SAMPLES = Path(__file__).resolve().parents[1] / "sample_runs"


def _page(name):
    """A script that renders one page (AppTest runs a function's source as its script)."""
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def page_test(name: str) -> AppTest:
    return AppTest.from_function(_page, args=(name,), default_timeout=60)


def _spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def _title(figure: dict, axis: str | None = None) -> str:
    title = (figure["layout"].get(axis, {}) if axis else figure["layout"]).get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


@pytest.fixture
def workdir(tiny_run, tmp_path, monkeypatch):
    """The tiny run, unanalyzed, as ``runs/tiny`` under the working directory, the way a
    user starts `memdash dashboard runs` from the folder that holds it."""
    shutil.copytree(tiny_run, tmp_path / "runs" / "tiny")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMDASH_ROOTS", str((tmp_path / "runs").resolve()))
    return tmp_path


def _codes(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


# --------------------------------------------------------------- commands to copy


def test_privacy_command_is_a_code_block_that_runs_as_shown(workdir):
    at = page_test("privacy").run()
    assert not at.exception
    assert _codes(at) == ["memdash estimate --like runs/tiny"]
    assert all(c.language == "bash" for c in at.code)
    shown = " ".join([*_codes(at), *(i.value for i in at.info)])
    assert "\\" not in shown and str(workdir) not in shown  # no escapes, no machine path


def test_a_run_outside_the_working_directory_keeps_its_path_and_is_quoted(
    tiny_run, tmp_path, monkeypatch
):
    root = tmp_path / "my runs"
    shutil.copytree(tiny_run, root / "tiny")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv("MEMDASH_ROOTS", str(root))
    at = page_test("privacy").run()
    assert not at.exception
    # as the roots were given (absolute), quoted for the shell: it runs when pasted
    assert _codes(at) == [f"memdash estimate --like '{root / 'tiny'}'"]


@pytest.mark.parametrize(
    ("page", "command"),
    [
        ("knn", "memdash analyze runs/tiny"),
        ("exposure", "memdash analyze runs/tiny"),
        ("forgetting", "memdash analyze runs/tiny"),
        ("embeddings", "memdash analyze runs/tiny"),
        ("examples", "memdash analyze runs/tiny"),
        ("localization", "memdash localize runs/tiny"),
    ],
)
def test_every_page_that_offers_a_step_shows_its_command_as_code(workdir, page, command):
    at = page_test(page).run()
    assert not at.exception
    assert command in _codes(at)
    assert not any("\\" in c or str(workdir) in c for c in _codes(at))


def test_the_detail_shows_the_command_for_its_missing_neighbours(workdir):
    from memdash.analysis.steps.pipeline import analyze

    analyze(workdir / "runs" / "tiny", only=["scores"])
    at = page_test("examples")
    at.session_state["example"] = 3
    at.run()
    assert not at.exception
    assert "memdash analyze runs/tiny" in _codes(at)


def _fit_note_of(path):
    """A script that writes the Exposure page's note on a run whose exposure has no fits."""
    from pathlib import Path

    from memdash.dashboard.app_pages import exposure

    exposure._fit_note(Path(path), None, 0)


def test_exposure_without_fits_shows_the_command_that_records_them(workdir):
    run = workdir / "runs" / "tiny"
    at = AppTest.from_function(_fit_note_of, args=(str(run.resolve()),)).run()
    assert not at.exception
    assert _codes(at) == ["memdash analyze runs/tiny --only exposure --force"]


def test_the_runs_page_shows_its_commands_as_code(workdir, monkeypatch):
    meta = workdir / "runs" / "tiny" / "run.json"
    meta.write_text(json.dumps(json.loads(meta.read_text()) | {"status": "running"}))
    at = page_test("runs").run()
    assert not at.exception
    assert "memdash train --resume --out runs/tiny" in _codes(at)
    empty = workdir / "empty"
    empty.mkdir()
    monkeypatch.setenv("MEMDASH_ROOTS", str(empty))
    at = page_test("runs").run()
    assert not at.exception
    assert _codes(at) == [
        "memdash train --dataset digits --noise 0.2 --epochs 30 --out runs/first\n"
        "memdash dashboard runs"
    ]


# --------------------------------------------------------------- k-NN heatmaps


@pytest.fixture
def knn_run(workdir):
    from memdash.analysis.steps.pipeline import analyze

    analyze(workdir / "runs" / "tiny", only=["scores", "knn"])
    return workdir / "runs" / "tiny"


def test_knn_heatmaps_are_full_width_titled_in_words_and_readable(knn_run):
    at = page_test("knn").run()
    assert not at.exception
    heatmaps = [c for c in at.get("plotly_chart") if _spec(c)["data"][0]["type"] == "heatmap"]
    assert len(heatmaps) == 3
    for chart, metric in zip(heatmaps, ("p_same", "ma", "md"), strict=True):
        figure = _spec(chart)
        assert _title(figure) == label(metric)
        assert figure["layout"]["height"] >= 200
        assert figure["data"][0]["texttemplate"] == "%{z:.2f}"  # cell numbers drawn
        # a colourbar title short enough not to eat the plot's width
        bar = figure["data"][0]["colorbar"]["title"]["text"]
        assert max(len(line) for line in bar.split("<br>")) <= 14
    # each heatmap on the page's full width: none of them sits in a column
    assert not any(column.get("plotly_chart") for column in at.columns)
    captions = " ".join(c.value for c in at.caption)
    assert "knn_true_accuracy" not in captions and "dnn_accuracy" not in captions
    assert label("knn_true_accuracy") in captions


def test_heatmap_grows_with_its_rows_and_draws_numbers_only_where_they_fit():
    from memdash.dashboard.charts import heatmap

    def grid(layers: int, epochs: int) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"layer": f"l{i}", "epoch": e, "p_same": 0.5}
                for i in range(layers)
                for e in range(epochs)
            ]
        )

    two = heatmap(grid(2, 4), x="epoch", y="layer", value="p_same")
    many = heatmap(grid(12, 4), x="epoch", y="layer", value="p_same")
    assert two.layout.height >= 200
    assert many.layout.height >= 12 * 30 + 80  # at least 30 px a row, with room for the axes
    assert two.data[0].texttemplate == "%{z:.2f}"  # two decimals: 0.10, not 0.1
    # sixty epochs on one row: cells too narrow for a number, hover only
    assert heatmap(grid(2, 60), x="epoch", y="layer", value="p_same").data[0].texttemplate is None
    # the colourbar title: the label, in lines short enough to leave the plot its width
    title = two.data[0].colorbar.title.text
    assert title.replace("<br>", " ") == label("p_same")
    assert max(len(line) for line in title.split("<br>")) <= 14


# --------------------------------------------------------------- the example detail


def test_the_facts_table_shows_every_value_whole(knn_run):
    at = page_test("examples")
    at.session_state["example"] = 3
    at.run()
    assert not at.exception
    # a static table wraps its cells (a data grid clips them at its column width)
    assert not any(list(d.value.columns) == ["fact", "value"] for d in at.dataframe)
    facts = at.table[0].value
    assert list(facts.columns) == ["fact", "value"]
    assert label("kind") in facts["fact"].tolist()


# --------------------------------------------------------------- pixels as pixels


def test_thumbnail_upscales_by_whole_pixels():
    from memdash.dashboard.charts import thumbnail

    digit = np.arange(64, dtype=np.float32).reshape(8, 8)
    image = thumbnail(digit, width=72)
    assert image.shape == (72, 72)  # 9 screen pixels per input pixel
    blocks = image.reshape(8, 9, 8, 9)
    assert np.all(blocks == blocks[:, :1, :, :1])  # each block one value: no smoothing
    np.testing.assert_allclose(blocks[:, 0, :, 0], 1.0 - digit / 63.0)
    # a width that is no multiple: the largest whole factor that fits
    assert thumbnail(digit, width=84).shape == (80, 80)
    rgb = np.random.default_rng(0).random((3, 4, 4)).astype(np.float32)
    assert thumbnail(rgb, width=20).shape == (20, 20, 3)
    signal = np.linspace(0, 1, 40, dtype=np.float32)
    assert thumbnail(signal, width=84).shape == (56, 80)  # 28 rows, 2 pixels a sample
    assert thumbnail(digit).shape == (8, 8)  # no width: the input's own size


def test_gallery_and_neighbour_thumbnails_are_served_pixelated(monkeypatch):
    from PIL import Image
    from streamlit.testing.v1 import app_test

    stores = []

    class Recorded(app_test.MemoryMediaFileStorage):
        def __init__(self, endpoint):
            super().__init__(endpoint)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recorded)
    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))
    at = page_test("privacy")
    at.session_state["run"] = "digits_mlp_noise20"
    at.session_state["example"] = 5
    at.run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "mem_score" not in captions and label("mem_score") in captions  # words, not names
    urls = [img.url for element in at.image for img in element.proto.imgs]
    assert len(urls) == 16 + 12  # the most exposed examples and the neighbours
    for url in urls:
        png = stores[-1].get_file(url.rsplit("/", 1)[1]).content
        image = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        # the 8x8 digit upscaled by whole pixels to the thumbnail's width (64 to 72 px)
        assert image.shape[0] % 8 == 0 and image.shape[1] % 8 == 0
        factor = image.shape[1] // 8
        blocks = image.reshape(8, factor, 8, factor)
        assert factor >= 8 and np.all(blocks == blocks[:, :1, :, :1])


# --------------------------------------------------------------- exposure


def _exposure_table(at_ceiling: bool) -> pd.DataFrame:
    ceiling = float(np.log2(500))
    rows = []
    for repeats in (1, 10, 50):
        for i in range(4):
            value = ceiling if at_ceiling and repeats > 1 else 2.0 + i + repeats / 10
            rows.append(
                {
                    "epoch": 60,
                    "kind": "canary",
                    "repeats": repeats,
                    "example_id": repeats * 10 + i,
                    "exposure_interpolation": value,
                    "exposure_extrapolation_log": 20.0 * (i + 1),
                }
            )
    rows.append({"epoch": 60, "kind": "reference", "repeats": 0, "example_id": 999})
    return pd.DataFrame(rows).assign(ceiling=ceiling)


def _annotation(figure, start: str):
    (found,) = [a for a in figure.layout.annotations if a.text.startswith(start)]
    return found


@pytest.mark.parametrize("method", ["exposure_interpolation", "exposure_extrapolation_log"])
def test_exposure_levels_are_labelled_on_their_lines(method):
    from memdash.dashboard.charts import exposure_chart

    table = _exposure_table(at_ceiling=False)
    ceiling = float(table["ceiling"].iloc[0])
    figure = exposure_chart(table, epoch=60, method=method, ceiling=ceiling)
    log = figure.layout.yaxis.type == "log"
    assert log == (method != "exposure_interpolation")
    # a log axis places annotations at log10 of the value (plotly does not for add_hline)
    where = (lambda y: np.log10(y)) if log else (lambda y: y)
    assert _annotation(figure, "ceiling").y == pytest.approx(where(ceiling))
    assert _annotation(figure, "untrained").y == pytest.approx(where(np.log2(np.e)))
    # the y title fits beside a 380-px chart; the method is named in the chart's title
    assert figure.layout.height >= 380
    assert len(figure.layout.yaxis.title.text) <= 30
    assert figure.layout.title.text.startswith("exposure at epoch 60")
    assert label(method).split("(bits, ")[1].rstrip(")") in figure.layout.title.text


def test_exposure_boxes_take_the_colours_of_the_lines_and_show_the_ceiling():
    from memdash.dashboard.charts import exposure_chart, exposure_over_epochs

    table = _exposure_table(at_ceiling=True)
    ceiling = float(table["ceiling"].iloc[0])
    boxes = exposure_chart(table, epoch=60, method="exposure_interpolation", ceiling=ceiling)
    lines = exposure_over_epochs(table, method="exposure_interpolation", floored=[])
    colour = {t.name: t.line.color for t in lines.data}
    assert [t.name for t in boxes.data] == [f"canaries seen {r}x" for r in (1, 10, 50)]
    assert all(t.marker.color == colour[t.name] for t in boxes.data)
    # the level lines lie under the boxes, and the axis leaves room above the ceiling
    assert all(shape.layer == "below" for shape in boxes.layout.shapes)
    assert boxes.layout.yaxis.range[1] > ceiling * 1.05
    # each box centred on its own group, and the canaries at the ceiling counted under it
    assert boxes.layout.boxmode == "overlay"
    assert list(boxes.layout.xaxis.ticktext) == [
        "1",
        "10<br>4 of 4 at the ceiling",
        "50<br>4 of 4 at the ceiling",
    ]
    over = exposure_over_epochs(table, method="exposure_extrapolation_log", floored=[])
    assert len(over.layout.yaxis.title.text) <= 36
    # log ticks written out in full (plotly alone writes a bare "5" for 50 and for 0.5)
    assert list(over.layout.yaxis.ticktext) == ["50", "100"]  # around the medians, 50 bits


# --------------------------------------------------------------- similarity


@pytest.fixture
def suite(monkeypatch):
    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))


def test_similarity_two_runs_defaults_to_a_pair_that_can_be_compared(suite):
    at = page_test("similarity").run()  # the sidebar's run: digits_mlp_noise20
    at.radio(key="similarity_mode").set_value("two runs").run()
    assert not at.exception
    assert not at.warning
    (chart,) = at.get("plotly_chart")
    assert _spec(chart)["data"][0]["type"] == "heatmap"
    a, b = at.selectbox(key="similarity_run_a").value, at.selectbox(key="similarity_run_b").value
    assert a != b
    # every seed named with its group, in the choices and in what the page writes
    for options in (at.selectbox(key="similarity_run_a").options,):
        assert not any(o.startswith("seed_") and "(" not in o for o in options)
    assert _title(_spec(chart)).startswith(f"{a} against {b}")


def test_similarity_names_seeds_with_their_group_in_its_warning(suite):
    at = page_test("similarity")
    at.session_state["run"] = "seed_0 (digits_random)"
    at.run()
    at.radio(key="similarity_mode").set_value("two runs").run()
    at.selectbox(key="similarity_run_b").set_value("digits_mlp_noise20").run()
    assert not at.exception
    (warning,) = at.warning
    assert "seed_0 (digits_random)" in warning.value.replace("\\", "")
    assert "different examples" in warning.value


def test_similarity_legend_names_the_groups_as_the_headings_do(suite):
    at = page_test("similarity").run()
    assert not at.exception
    *heatmaps, same_layer = at.get("plotly_chart")
    headings = [_title(_spec(h)).split(":")[0] for h in heatmaps]
    assert headings == ["digits_true", "digits_random"]
    assert [t["name"] for t in _spec(same_layer)["data"]] == headings
