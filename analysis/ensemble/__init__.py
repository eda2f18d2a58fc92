"""Many models trained at once on subsets (Feldman & Zhang's estimator, LiRA's shadow models):
the batched ensembles and `memdash estimate`, which writes RUN/heldout/."""
