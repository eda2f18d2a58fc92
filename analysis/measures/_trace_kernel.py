"""One fused numba pass over the (E, N) trace arrays, for `measures.dynamics.trace_scores`.

Reading four (E, N) arrays once is the memory limit of the trace scores; the
numpy expressions in `memdash.analysis.measures.dynamics` each make their own passes and
temporaries. This kernel walks the examples in blocks (parallel over
blocks), each example's epochs in turn with its sums in registers; the cache
lines of neighbouring examples are reused, so every array is read once.
Its results equal the numpy definitions (tests compare them).
"""

from __future__ import annotations

import numba
import numpy as np

BLOCK = 2048  # examples per parallel task
FLOAT_COLUMNS = (
    "first_learned_epoch",
    "learned_epoch",
    "confidence",
    "variability",
    "correctness",
    "aum",
    "mean_loss",
)


@numba.njit(parallel=True, cache=True, nogil=True)
def trace_sums(correct, prob, margin, loss, epochs):  # pragma: no cover - compiled
    """Per example: the trace scores of `memdash.analysis.measures.dynamics.trace_scores`.

    Parameters
    ----------
    correct, prob, margin, loss : float64, shape (E, N), C order, NaN missing

    epochs : float64, shape (E,), the epoch of each row

    Returns
    -------
    ints : int64, shape (2, N): observed epochs, forgetting events
    floats : float64, shape (N, 7), columns FLOAT_COLUMNS; each mean is over
        that array's own non-NaN entries (NaN where there are none)
    """
    n_epochs, n = correct.shape
    ints = np.empty((2, n), np.int64)
    floats = np.empty((7, n), np.float64).T  # (N, 7), each column contiguous
    n_blocks = (n + BLOCK - 1) // BLOCK
    for b in numba.prange(n_blocks):
        for j in range(b * BLOCK, min((b + 1) * BLOCK, n)):
            count = events = 0
            first = last_bad = -1
            s_correct = s_prob = s_prob2 = s_margin = s_loss = 0.0
            n_prob = n_margin = n_loss = 0
            prev_ok = False
            for e in range(n_epochs):
                c = correct[e, j]
                ok = c == 1.0
                if c == c:  # not NaN
                    count += 1
                    s_correct += c
                if ok and first < 0:
                    first = e
                if not ok:
                    last_bad = e
                if prev_ok and c == 0.0:
                    events += 1
                prev_ok = ok
                p = prob[e, j]
                if p == p:
                    n_prob += 1
                    s_prob += p
                    s_prob2 += p * p
                m = margin[e, j]
                if m == m:
                    n_margin += 1
                    s_margin += m
                x = loss[e, j]
                if x == x:
                    n_loss += 1
                    s_loss += x
            ints[0, j], ints[1, j] = count, events
            floats[j, 0] = epochs[first] if first >= 0 else np.nan
            floats[j, 1] = epochs[last_bad + 1] if last_bad + 1 < n_epochs else np.nan
            nan = np.nan
            mean_prob = s_prob / n_prob if n_prob else nan
            floats[j, 2] = mean_prob
            floats[j, 3] = np.sqrt(max(s_prob2 / n_prob - mean_prob**2, 0.0)) if n_prob else nan
            floats[j, 4] = s_correct / count if count else nan
            floats[j, 5] = s_margin / n_margin if n_margin else nan
            floats[j, 6] = s_loss / n_loss if n_loss else nan
    return ints, floats
