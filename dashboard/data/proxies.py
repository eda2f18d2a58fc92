"""The proxies' scoreboard of a run (`memdash proxies`): the Proxies page and its Learn lesson.

Each read takes the run's path and caches on its stamps (`memdash.dashboard.data.stamps`): the
scoreboard is read from derived/proxies.parquet when the manifest says it is up to date, else
computed here without writing (a few seconds: the bootstrap of every proxy's Spearman).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.measures.proxy_scoreboard import orient
from memdash.analysis.store import Run
from memdash.dashboard.data.run import examples
from memdash.dashboard.data.stamps import derived_stamp, run_stamp

# what the scoreboard's table adds to each example: how the example table names it
KIND_COLUMNS = ("example_id", "kind", "label", "true_label")
FIXED = frozenset({"example_id", "is_noisy", "is_canary", "mem_score", *KIND_COLUMNS})


def proxy_scoreboard(path: Path) -> tuple[pd.DataFrame, bool]:
    """(board, stored): the run's scoreboard (`steps.proxies.scoreboard_of`'s columns, best
    first) and whether it was read from an up-to-date derived/proxies.parquet (False: computed
    here, not written; `memdash proxies RUN` stores it). Raises ValueError on a text run or
    one without trace scores."""
    return _scoreboard(str(path), run_stamp(path), derived_stamp(path))


@st.cache_data(show_spinner="ranking the proxies (a bootstrap per proxy)…", max_entries=16)
def _scoreboard(path: str, stamp: float, derived: float) -> tuple[pd.DataFrame, bool]:
    from memdash.analysis.steps.proxies import scoreboard_of

    board, computed = scoreboard_of(Run.open(path), write=False)
    return board, not computed


def proxy_values(path: Path) -> pd.DataFrame:
    """Every trained example's single-run scores (`tables.proxies.proxy_values`): ``example_id``,
    ``kind``, ``label``, ``true_label``, ``mem_score`` (NaN without an estimate) and one column
    per proxy (`proxy_names`), NaN where a proxy has no value. Raises ValueError as
    `proxy_scoreboard` does."""
    return _values(str(path), run_stamp(path), derived_stamp(path))


@st.cache_data(show_spinner=False, max_entries=16)
def _values(path: str, stamp: float, derived: float) -> pd.DataFrame:
    from memdash.analysis.tables.proxies import proxy_values as values_of

    table, _ = values_of(Run.open(path))
    kinds = examples(Path(path))[list(KIND_COLUMNS)]
    return table.merge(kinds, on="example_id", how="left", validate="one_to_one")


def proxy_names(table: pd.DataFrame) -> list[str]:
    """The proxies' columns of a `proxy_values` table, in its order."""
    return [c for c in table.columns if c not in FIXED]


def rank_gaps(table: pd.DataFrame, proxy: str, *, n: int) -> pd.DataFrame:
    """The `n` examples on which `proxy` and the held-out memorization score disagree most.

    Both are ranked among the examples that have both, as percentiles (100 = the proxy's
    flagged end, from the direction dictionary, `orient`; 100 = the most memorized; ties at
    their mean rank). Returns those rows of `table` with ``proxy_percentile``,
    ``ensemble_percentile`` and ``rank_gap`` (the first minus the second: positive where the
    proxy flags an example the ensemble does not call memorized), the largest absolute gap
    first (equal gaps in the table's order).
    """
    if proxy not in table.columns or proxy in FIXED:
        valid = ", ".join(proxy_names(table))
        raise ValueError(f"{proxy!r} is not a proxy of this table; valid: {valid}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    both = table.dropna(subset=[proxy, "mem_score"])
    flagged = pd.Series(orient(proxy, both[proxy].to_numpy()), index=both.index)
    out = both.assign(
        proxy_percentile=100 * flagged.rank(pct=True),
        ensemble_percentile=100 * both["mem_score"].rank(pct=True),
    )
    out["rank_gap"] = out["proxy_percentile"] - out["ensemble_percentile"]
    order = out["rank_gap"].abs().sort_values(ascending=False, kind="stable").index
    return out.loc[order].head(n).reset_index(drop=True)
