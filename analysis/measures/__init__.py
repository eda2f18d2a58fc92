"""The measures of memorization: pure functions on arrays, one module per measure (training
dynamics, neighbours, projections, exposure, held-out scores, membership, similarity,
sensitivity, accuracy curves). They take arrays and return arrays or DataFrames; they never
read a run directory and import no other layer of memdash."""
