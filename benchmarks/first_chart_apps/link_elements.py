"""Streamlit alone with the elements of the page a link to an example opens (Examples,
example 5 of digits_mlp_noise20) and none of memdash's work (benchmarks/first_chart.py): the
same sidebar, then the example first (a heatmap titled "example 5", a static table, its
trajectory and membership charts, a k-NN table, 12 neighbour thumbnails with buttons), and
above it the lists (two multiselects, a select box and a slider, a data grid of 2,327 rows
by 45 columns with row selection, a download button, a gallery of 12 thumbnails with
buttons). The floor under the link's first chart."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

rng = np.random.default_rng(0)


def thumbnails(n, key):
    for row in range(n // 6):
        for i, cell in enumerate(st.columns(6)):
            cell.image(np.kron(rng.random((8, 8)), np.ones((8, 8))), caption=f"#{row}{i}")
            cell.button("open", key=f"{key}{row}{i}")


def example():
    st.subheader("One example")
    left, right = st.columns([1, 2])
    left.plotly_chart(
        go.Figure(go.Heatmap(z=rng.random((8, 8)), showscale=False)).update_layout(
            title="example 5"
        ),
        width="stretch",
    )
    left.table(pd.DataFrame({"fact": [f"fact {i}" for i in range(15)], "value": ["1.0"] * 15}))
    right.caption("Trajectory from the end-of-epoch eval pass.")
    epochs = list(range(61))
    right.plotly_chart(go.Figure([go.Scatter(x=epochs, y=rng.random(61)) for _ in range(3)]))
    right.plotly_chart(go.Figure([go.Histogram(x=rng.random(171)) for _ in range(4)]))
    st.markdown("**k-NN against the network** at epoch 60")
    st.dataframe(pd.DataFrame(rng.random((3, 5))))
    st.markdown("**Nearest training examples** at layer `out`")
    thumbnails(12, "near")


def lists():
    kinds, labels, score = st.columns(3)
    kinds.multiselect("Kinds", ["canary", "clean", "flipped", "reference"], ["canary", "clean"])
    labels.multiselect("Given labels", list(range(10)), default=list(range(10)))
    score.selectbox("Filter by score", ["memorization score"])
    score.slider("range", -0.02, 1.0, (-0.02, 1.0))
    table = pd.DataFrame(rng.random((2327, 45)), columns=[f"score {i}" for i in range(45)])
    st.dataframe(table, on_select="rerun", selection_mode="single-row", key="table")
    st.download_button("Download these examples as CSV", "id,score", "examples.csv")
    st.subheader("The examples a score flags")
    choice, toggle = st.columns([2, 1])
    choice.selectbox("By score", ["memorization score"])
    toggle.toggle("Include examples never trained on")
    thumbnails(12, "gallery")
    st.subheader("Easiness across seeds")


def examples():
    st.title("Examples")
    st.caption("Run **digits_mlp_noise20** (change it in the sidebar)")
    above = st.container()
    example()
    with above:
        lists()


st.set_page_config(page_title="elements", layout="wide")
pages = [st.Page(examples, title="Examples", url_path="examples", default=True)]
pages += [st.Page(lambda: None, title=f"Page {i}", url_path=f"page{i}") for i in range(26)]
page = st.navigation({"Explore": pages[:13], "Learn": pages[13:]})
st.sidebar.selectbox("Run", ["a", "b", "c"], index=None, key="run", bind="query-params")
st.sidebar.number_input("Example", min_value=0, value=5, step=1, key="example")
st.sidebar.radio("Trace", ["eval", "train"], captions=["eval pass", "minibatches"])
page.run()
