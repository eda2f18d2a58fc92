"""The cached analysis steps (one module per step) and the pipeline that runs what is missing
of them for a run, writing RUN/derived/."""
