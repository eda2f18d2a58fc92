"""Where in the network memorization lives (Maini et al. 2023): rewinding and retraining
layers, and flipping the fewest units that change a prediction. Builds on record (models) and
measures; the steps layer runs these experiments on a run."""
