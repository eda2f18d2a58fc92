"""Exposure: how far each canary's loss has fallen below that of never-trained references
(Carlini et al. 2019)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.common import choose_run, offer_analysis, shell_path, show_command

METHODS = {
    "exposure_interpolation": "rank among the references: at most log2(#references)",
    "exposure_extrapolation": "the paper's: a skew-normal fitted to the references' losses; "
    "can pass the ceiling, but degenerates where losses pile up at 0",
    "exposure_extrapolation_log": "memdash's tail model: the same fit to log(loss), "
    "which has no floor",
}
SPACES = {"exposure_extrapolation": "loss", "exposure_extrapolation_log": "log_loss"}


def render() -> None:
    st.title("Exposure")
    path = choose_run(data.run_roots())
    if path is None:
        return
    table = data.derived(path, "exposure.parquet")
    if table is None:
        offer_analysis(path, "Exposure", ["exposure"], "memdash analyze", "exposure_compute")
        return
    if table.empty:
        st.info("No canaries in this run: train with `--canaries 10` to measure exposure.")
        return
    epochs = sorted(table["epoch"].unique())
    left, right = st.columns(2)
    methods = [m for m in METHODS if m in table.columns]
    method = left.radio(
        "Exposure",
        methods,
        format_func=lambda m: m.removeprefix("exposure_").replace("_", " "),
        key="exposure_method",
        help=" ".join(f"{m.removeprefix('exposure_')}: {METHODS[m]}." for m in methods),
    )
    epoch = right.select_slider("Epoch", epochs, value=epochs[-1], key="epoch", bind="query-params")
    ceiling = float(table["ceiling"].iloc[0])
    st.plotly_chart(
        charts.exposure_chart(table, epoch=epoch, method=method, ceiling=ceiling),
        width="stretch",
        key="exposure_box",
    )
    fits = data.derived(path, "exposure_fits.parquet")
    if fits is not None and method in SPACES:
        fits = fits[fits["space"] == SPACES[method]]
    floored = (  # a degenerate fit: a cliff at the smallest reference, or at the largest
        fits.loc[fits["floored"] | fits.get("capped", False), "epoch"].astype(int).tolist()
        if fits is not None and method in SPACES
        else []
    )
    if method in SPACES:
        _fit_note(path, fits, epoch)
    statistic = st.radio("Per group", ["median", "mean"], horizontal=True, key="exposure_statistic")
    st.plotly_chart(
        charts.exposure_over_epochs(table, method=method, floored=floored, statistic=statistic),
        width="stretch",
        key="exposure_lines",
    )
    st.caption(
        "References are scored against the other references: their mean stays near "
        "log2(e) = 1.44 bits (their median near 1 bit), the exposure of a canary the model "
        "never saw."
        + (
            f" Shaded: the {len(floored)} epoch{'s' * (len(floored) != 1)} whose skew-normal "
            "fit is degenerate, a cliff at the references' loss floor (their smallest loss) or "
            "at their largest loss."
            if floored
            else ""
        )
    )


def _fit_note(path, fits, epoch: int) -> None:
    """The epoch's skew-normal fit, with a warning when it sits on the loss floor."""
    if fits is None or fits.empty:
        st.caption("This run's exposure was computed before fits were recorded: rerun")
        show_command(f"memdash analyze {shell_path(path)} --only exposure --force")
        return
    row = fits[fits["epoch"] == epoch]
    if row.empty:
        st.caption(f"No skew-normal fit at epoch {epoch} (reference losses all equal).")
        return
    fit = row.iloc[0]
    text = (
        f"Epoch {epoch}: skew-normal fitted to {int(fit['n_references'])} references' "
        f"{fit['space'].replace('_', '-')}es, shape "
        f"{fit['shape']:.3g}, location {fit['loc']:.3g}, scale {fit['scale']:.3g}."
    )
    if fit["floored"]:
        st.warning(
            text + " This fit sits on the references' loss floor: it puts a cliff at the "
            "smallest reference loss, so extrapolated exposure there measures the cliff, not "
            "how unusual the canary is among the references. Read interpolated exposure for "
            "this epoch."
        )
    elif fit.get("capped", False):
        st.warning(
            text + " This fit is degenerate the other way: it puts a cliff at the largest "
            "reference value, so below it the fit is a half-normal and extrapolated exposure "
            "is that half-normal's tail, not the references' own skew. Compare with "
            "interpolated exposure for this epoch."
        )
    else:
        st.caption(text)
