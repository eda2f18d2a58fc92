"""The exposure step: the canaries' exposure (Carlini et al. 2019) per recorded epoch.

Canaries are the trained canaries (``is_canary`` and ``split == "train"``);
references are the examples with ``split == "reference"``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from memdash.analysis.measures.exposure import (
    SPACES,
    exposure_interpolation,
    extrapolated_exposure,
    fit_references,
    reference_exposure,
)
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.store import Run

EXPOSURE_COLUMNS = ("epoch", "example_id", "kind", "repeats", "loss")
EXPOSURE_FIT_COLUMNS = (
    *("epoch", "space", "n_references", "shape", "loc", "scale"),
    *("floored", "capped"),  # the fit's cliff at the smallest, or largest, reference
)
# the column of each extrapolation (exposure.SPACES: the losses, the paper's; their logs)
EXTRAPOLATIONS = {"loss": "exposure_extrapolation", "log_loss": "exposure_extrapolation_log"}


def compute_exposure(
    run: Run, config: AnalysisConfig | None = None, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/exposure.parquet and exposure_fits.parquet, per recorded epoch (0 included).

    ``exposure.parquet``, per canary and reference: ``epoch``, ``example_id``,
    ``kind`` (canary or reference), ``repeats`` (0 for references), ``loss``,
    ``exposure_interpolation``, ``exposure_extrapolation`` (the paper's:
    skew-normal of the losses), ``exposure_extrapolation_log`` (skew-normal of
    the log-losses), ``ceiling`` (log2 #references) and ``fit_floored`` (the
    epoch's loss-space fit sits on the references' loss floor, so its
    extrapolation is a property of the fit's cliff). A reference's
    interpolation ranks it against the other references (the untrained
    baseline, about 1.44 bits); its extrapolations use the fits to all
    references. ``exposure_fits.parquet``, per epoch and ``space`` (``loss``
    or ``log_loss``): the fit's ``shape``, ``loc``, ``scale``,
    ``n_references``, ``floored`` and ``capped`` (the fit degenerates onto a
    cliff at the references' smallest, or largest, value in that space;
    `measures.skewnorm`). An epoch whose references cannot be
    fitted (all equal, or fewer than 3) gets NaN extrapolations and no fit row.
    """
    examples = run.examples()
    canary = (examples["is_canary"] & (examples["split"] == "train")).to_numpy()
    reference = (examples["split"] == "reference").to_numpy()
    columns = [
        *EXPOSURE_COLUMNS,
        "exposure_interpolation",
        *EXTRAPOLATIONS.values(),
        *("ceiling", "fit_floored"),
    ]
    if not canary.any() or reference.sum() < 2:
        return {
            "exposure.parquet": pd.DataFrame(columns=columns),
            "exposure_fits.parquet": pd.DataFrame(columns=list(EXPOSURE_FIT_COLUMNS)),
        }
    epochs, m = run.trace_grids("eval", ("loss",), first_epoch=0)
    ids = np.flatnonzero(canary | reference)
    repeats = examples["canary_repeats"].to_numpy(np.int64)
    frames, fits = [], []
    for e, epoch in enumerate(epochs):
        progress(f"epoch {epoch}")
        loss = m["loss"][e]
        refs = loss[reference]
        if np.isnan(refs).any():
            continue  # the eval pass did not cover this epoch
        interp = np.full(len(loss), np.nan)
        interp[canary] = exposure_interpolation(loss[canary], refs)
        interp[reference] = reference_exposure(refs)
        extrap, floored = {}, {}
        for space, column in EXTRAPOLATIONS.items():
            transform = SPACES[space]
            extrap[column], floored[space] = np.full(len(loss), np.nan), False
            with contextlib.suppress(ValueError):  # references all equal (or < 3): NaN
                fit = fit_references(transform(refs))
                extrap[column][ids] = extrapolated_exposure(transform(loss[ids]), fit)
                floored[space] = fit.floored
                fits.append(
                    (epoch, space, fit.n_references, fit.shape, fit.loc, fit.scale)
                    + (fit.floored, fit.capped)
                )
        frames.append(
            pd.DataFrame(
                {
                    "epoch": np.int32(epoch),
                    "example_id": ids,
                    "kind": np.where(canary[ids], "canary", "reference"),
                    "repeats": np.where(canary[ids], repeats[ids], 0),
                    "loss": loss[ids],
                    "exposure_interpolation": interp[ids],
                    **{column: values[ids] for column, values in extrap.items()},
                    "ceiling": np.log2(reference.sum()),
                    "fit_floored": floored["loss"],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    fit_table = pd.DataFrame(fits, columns=list(EXPOSURE_FIT_COLUMNS)).astype(
        {"epoch": np.int32, "n_references": np.int64, "floored": bool, "capped": bool}
    )
    return {"exposure.parquet": table, "exposure_fits.parquet": fit_table}
