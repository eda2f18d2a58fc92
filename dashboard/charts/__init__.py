"""Figures from DataFrames: pure functions, no Streamlit calls, unit-tested on their own.

One module per family of chart; this package re-exports each public name, so pages write
``charts.scatter(...)``.
"""

from __future__ import annotations

from memdash.dashboard.charts._common import DRAW_ORDER, RUN_DASHES
from memdash.dashboard.charts.compare import one_run_only, paired_scatter
from memdash.dashboard.charts.curves import bars, lines, training_curves, trajectory
from memdash.dashboard.charts.distributions import (
    histograms,
    layer_distribution,
    shared_bins,
    value_is_integer,
)
from memdash.dashboard.charts.exposure import exposure_chart, exposure_over_epochs, floored_spans
from memdash.dashboard.charts.heatmaps import heatmap
from memdash.dashboard.charts.inputs import example_input, thumbnail
from memdash.dashboard.charts.privacy import (
    BUDGET_METRICS,
    budget_chart,
    budget_leaders,
    budget_summary,
    epsilon_chart,
    gaussian_fit,
    member_histograms,
    normality_histograms,
    roc_curves,
)
from memdash.dashboard.charts.scatters import (
    HOVER_COLUMNS,
    mark_example,
    ring,
    scatter,
    threshold_lines,
)
from memdash.dashboard.charts.selection import point_example_id, selected_example_ids
from memdash.dashboard.palette import GROUP_COLORS

__all__ = [
    "BUDGET_METRICS",
    "DRAW_ORDER",
    "GROUP_COLORS",
    "HOVER_COLUMNS",
    "RUN_DASHES",
    "bars",
    "budget_chart",
    "budget_leaders",
    "budget_summary",
    "epsilon_chart",
    "example_input",
    "exposure_chart",
    "exposure_over_epochs",
    "floored_spans",
    "gaussian_fit",
    "heatmap",
    "histograms",
    "layer_distribution",
    "lines",
    "mark_example",
    "normality_histograms",
    "member_histograms",
    "one_run_only",
    "paired_scatter",
    "point_example_id",
    "ring",
    "roc_curves",
    "scatter",
    "selected_example_ids",
    "shared_bins",
    "thumbnail",
    "threshold_lines",
    "training_curves",
    "trajectory",
    "value_is_integer",
]
