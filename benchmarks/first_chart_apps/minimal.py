"""The minimal Streamlit app of benchmarks/first_chart.py: one Plotly chart of three points."""

import plotly.graph_objects as go
import streamlit as st

st.title("minimal")
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])))
