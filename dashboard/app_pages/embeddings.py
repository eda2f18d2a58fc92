"""Embeddings: every example's place in a layer's 2-D UMAP, aligned across epochs, coloured by
any score; select points to list them, pick one to open it.

Every example is drawn, a million included: above `charts.density.DENSITY_ABOVE` examples as a
density raster under a seeded sample of points, a box or lasso then selecting by its geometry
(`memdash.dashboard.charts.density` says why, with the measurements)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    choose_run,
    density_note,
    lacks_embeddings,
    offer_analysis,
    score_columns,
    selectable_scatter,
)
from memdash.dashboard.app_pages.detail import example_section, selection_list
from memdash.dashboard.charts.density import every_point
from memdash.dashboard.charts.text import for_text_run
from memdash.dashboard.data import points as map_data
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import label

EXTRA_COLOURS = ("kind", "label", "true_label", "knn_agrees")
TEXT_COLOURS = ("kind", "duplicates", "canary_repeats")  # a text run's: no labels


def render() -> None:
    st.title("Embeddings")
    path = choose_run(data.run_roots())
    if path is None:
        return
    if lacks_embeddings(path, "The embedding map"):
        return
    manifest = data.manifest(path)
    if "umap" not in manifest:
        offer_analysis(path, "Projections", ["umap"], "memdash analyze", "embeddings_compute")
        return
    files = manifest["umap"].get("files", [])
    layers = [f.split("/")[1].removesuffix(".parquet") for f in files]
    if not layers:
        st.info(
            "This run recorded no embeddings: train with `--embed-layers fc2,out "
            "--embed-epochs 0,10,30` to project them."
        )
        return
    table = data.examples(path)
    text = run_data.is_text(path)
    left, middle, right = st.columns(3)
    layer = left.selectbox("Layer", layers, index=len(layers) - 1, key="layer", bind="query-params")
    epochs = sorted(data.derived(path, f"umap/{layer}.parquet")["epoch"].unique().tolist())
    epoch = middle.select_slider(
        "Epoch", epochs, value=epochs[-1], key="epoch", bind="query-params"
    )
    extra = TEXT_COLOURS if text else EXTRA_COLOURS
    colours = [c for c in extra if c in table.columns] + score_columns(table)
    colour = right.selectbox(
        "Colour by", colours, format_func=lambda c: label(c, text=text), key="embeddings_colour"
    )
    at = map_data.map_points(path, layer, epoch, ("kind", *charts.HOVER_COLUMNS, colour))
    umap = every_point(at, x="x", y="y", color=colour, title=f"{layer} at epoch {epoch}")
    umap = charts.mark_example(umap, at, state.current_example(len(table)), x="x", y="y")
    if text:  # the colour's words and the kinds' colours as a text run means them
        umap = for_text_run(umap)
    chosen = selectable_scatter(umap, at, key="embeddings_map", x="x", y="y")
    density_note(umap, len(at), text=text)
    pool = data.run_meta(path)["config"].get("record", {}).get("embed_pool", "last")
    st.caption(
        (
            "Each point a sequence: the layer's hidden state "
            + ("at its last token. " if pool == "last" else "averaged over its tokens. ")
            if text
            else ""
        )
        + "Each epoch's projection starts from the next epoch's layout and is rotated onto it, "
        "so an example keeps its place while you move the slider unless its neighbourhood "
        "changed."
    )
    selection_list(path, map_data.rows_of(table, chosen["example_id"]), key="embeddings_selected")
    example_section(path, table, key="embeddings")
