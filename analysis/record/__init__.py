"""Recording a run: its configuration, the data sets and their corruptions, the models,
training, and the recorder that writes per-example traces, embeddings and checkpoints through
the run store. Imports the store and the measures, never a layer above."""
