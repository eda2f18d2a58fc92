"""Streamlit alone with the elements of memdash's Runs page and none of its work
(benchmarks/first_chart.py): the same sidebar (the navigation's 27 pages, a select box, a
number input, a radio with captions), the same page (a title, captions, a multiselect, a
radio, a subheader, a static table of the sample suite's 18 runs by 14 columns, sent after a
chart of 4 curves over 61 epochs). What a Streamlit page of these elements costs, server and
browser: the floor under the Runs page's first chart."""

import plotly.graph_objects as go
import streamlit as st


def runs():
    st.title("Runs")
    st.caption("Runs found under `sample_runs`")
    table = st.container()
    st.multiselect("Runs to plot", ["a", "b", "c"], default=["a"])
    st.radio("Measure", ["accuracy", "loss"], horizontal=True)
    st.caption("Trace scores from the end-of-epoch eval pass. Switch the trace in the sidebar.")
    st.subheader("Training curves")
    st.caption("Measured with the labels the network was trained with.")
    epochs = list(range(61))
    lines = [go.Scatter(x=epochs, y=[(e * k % 7) / 7 for e in epochs]) for k in range(1, 5)]
    st.plotly_chart(go.Figure(lines), width="stretch")
    with table:
        st.table({f"column {j}": [f"cell {i}" for i in range(18)] for j in range(14)})
        st.caption("Trained with DP-SGD: one run.")


st.set_page_config(page_title="elements", layout="wide")
pages = [st.Page(runs, title="Runs", url_path="runs", default=True)]
pages += [st.Page(lambda: None, title=f"Page {i}", url_path=f"page{i}") for i in range(26)]
page = st.navigation({"Explore": pages[:13], "Learn": pages[13:]})
st.sidebar.selectbox("Run", ["a", "b", "c"], index=None, key="run", bind="query-params")
st.sidebar.number_input("Example", min_value=0, value=None, step=1, key="example")
st.sidebar.radio("Trace", ["eval", "train"], captions=["eval pass", "minibatches"])
page.run()
