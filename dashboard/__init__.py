"""The memdash Streamlit dashboard."""
