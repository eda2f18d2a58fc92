"""memdash dashboard entry point: `memdash dashboard [ROOT ...]` runs this with Streamlit."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import data, state
from memdash.dashboard.app_pages import (
    compare,
    embeddings,
    examples,
    exposure,
    findings,
    forgetting,
    knn,
    learn,
    localization,
    privacy,
    proxies,
    runs,
    sensitivity,
    similarity,
)
from memdash.dashboard.app_pages.common import guarded


def main() -> None:
    st.set_page_config(page_title="memdash", layout="wide")
    explore = [
        st.Page(guarded(runs.render), title="Runs", url_path="runs"),
        st.Page(guarded(examples.render), title="Examples", url_path="examples"),
        st.Page(guarded(forgetting.render), title="Forgetting and data map", url_path="forgetting"),
        st.Page(guarded(embeddings.render), title="Embeddings", url_path="embeddings"),
        st.Page(guarded(knn.render), title="k-NN vs network", url_path="knn"),
        st.Page(guarded(localization.render), title="Localization", url_path="localization"),
        st.Page(guarded(exposure.render), title="Exposure", url_path="exposure"),
        st.Page(guarded(privacy.render), title="Privacy", url_path="privacy"),
        st.Page(guarded(proxies.render), title="Proxies", url_path="proxies"),
        st.Page(guarded(compare.render), title="Compare runs", url_path="compare"),
        st.Page(guarded(similarity.render), title="Similarity", url_path="similarity"),
        st.Page(guarded(sensitivity.render), title="Sensitivity", url_path="sensitivity"),
        st.Page(guarded(findings.render), title="Findings", url_path="findings"),
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
