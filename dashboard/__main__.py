"""`python -m memdash.dashboard run APP [OPTIONS]`: Streamlit's command line with memdash's
preloading thread (`serve.py`); `memdash dashboard` runs this."""

from memdash.dashboard.serve import main

main()
