"""memdash dashboard entry point: `memdash dashboard [ROOT ...]` runs this with Streamlit."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import streamlit as st

from memdash.dashboard import data, state
from memdash.dashboard.app_pages import learn
from memdash.dashboard.app_pages.common import guarded

# the pages of Explore: (module of memdash.dashboard.app_pages, title, URL path). A page's
# module is imported when the page is first shown, so that the first chart waits for its
# own page's imports only (docs/architecture.md; benchmarks/first_chart.py)
EXPLORE = (
    ("runs", "Runs", "runs"),
    ("examples", "Examples", "examples"),
    ("forgetting", "Forgetting and data map", "forgetting"),
    ("embeddings", "Embeddings", "embeddings"),
    ("knn", "k-NN vs network", "knn"),
    ("localization", "Localization", "localization"),
    ("exposure", "Exposure", "exposure"),
    ("privacy", "Privacy", "privacy"),
    ("proxies", "Proxies", "proxies"),
    ("compare", "Compare runs", "compare"),
    ("similarity", "Similarity", "similarity"),
    ("sensitivity", "Sensitivity", "sensitivity"),
    ("findings", "Findings", "findings"),
)


def page_render(module: str) -> Callable[[], None]:
    """The `render` of page module `module`, imported when the page is first drawn."""

    def render() -> None:
        importlib.import_module(f"memdash.dashboard.app_pages.{module}").render()

    render.__name__ = render.__qualname__ = module
    return render


def main() -> None:
    st.set_page_config(page_title="memdash", layout="wide")
    explore = [
        st.Page(guarded(page_render(module)), title=title, url_path=url_path)
        for module, title, url_path in EXPLORE
    ]
    lessons = [
        st.Page(guarded(render), title=title, url_path=f"learn-{slug}")
        for slug, title, render in learn.LESSONS
    ]
    # "/" forwards to "/runs" (with the URL's parameters and the run shown), so every page,
    # Runs included, is reached by a path of its own: a link to /runs never finds "Page not
    # found"; it forwards before the sidebar's widgets are drawn, which bind (and then forbid
    # setting) their parameters
    home = st.Page(
        lambda: st.switch_page(explore[0], query_params=state.unbound_params()),
        title="memdash",
        url_path="home",
        default=True,
        visibility="hidden",
    )
    pages = {"": [home], "Explore": explore, "Learn": lessons}
    page = st.navigation(pages)
    summaries = data.run_summaries(data.run_roots())
    if page is home and not state.sidebar_bound():
        st.switch_page(explore[0], query_params=state.forward_params(summaries))
    state.run_control(summaries)
    state.example_control(summaries)
    state.source_control()
    page.run()


main()
