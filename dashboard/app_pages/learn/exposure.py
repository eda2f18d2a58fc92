"""The Learn lesson "Exposure and canaries": how many bits of exposure canaries inserted once
or many times reach after a chosen epoch (Carlini et al. 2019)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import intro, need_roles, show

SLUG = "exposure"
TITLE = "Exposure and canaries"


def render() -> None:
    intro(
        TITLE,
        "Insert *canaries*, random inputs with random labels, into the training set, some "
        "once, some many times per epoch. Keep other random inputs, never trained on, as "
        "references. Exposure counts in bits how far a canary's loss falls below the "
        "references': about 1.44 bits means no more than chance; the maximum, log2 of the "
        "number of references, means it is more familiar than every one of them.",
        "How much does repeating a secret in the training data expose it?",
        "Carlini et al. 2019, The secret sharer",
    )
    paths = need_roles("canaries")
    if paths is None:
        return
    table = data.derived(paths["canaries"], "exposure.parquet")
    epochs = sorted(table["epoch"].unique())
    epoch = st.select_slider(
        "After epoch", epochs, value=epochs[min(1, len(epochs) - 1)], key="learn_exposure_epoch"
    )
    ceiling = float(table["ceiling"].iloc[0])
    show(
        charts.exposure_chart(table, epoch=epoch, method="exposure_interpolation", ceiling=ceiling),
        "learn_exposure_chart",
    )
