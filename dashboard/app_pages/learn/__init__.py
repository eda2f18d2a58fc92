"""Learn: one page per concept, each with a plain explanation, a live chart from the sample
runs, a control to try something, the question it answers, and the paper.

Each lesson is a module of this package holding its `SLUG` (the page's path after
"learn-"), its `TITLE` and its `render()`; `LESSONS` lists them in the order of the sidebar.
What the lessons share lives in `_common`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from memdash.dashboard.app_pages.learn import (
    arpit_measures,
    data_maps,
    exposure,
    forgetting,
    heldout_score,
    knn,
    localization,
    membership,
    memorization,
    one_way_to_learn,
    order_of_fitting,
    proxies,
    random_label_pretraining,
    secret_sharer,
)


class Lesson(NamedTuple):
    """One Learn page: where it lives, what it is called, and what draws it."""

    slug: str  # the page's URL path after "learn-"
    title: str  # the page's title in the sidebar and at its top
    render: Callable[[], None]  # draws the page


LESSONS = tuple(
    Lesson(module.SLUG, module.TITLE, module.render)
    for module in (
        memorization,
        order_of_fitting,
        forgetting,
        data_maps,
        heldout_score,
        membership,
        proxies,
        exposure,
        secret_sharer,
        knn,
        localization,
        one_way_to_learn,
        arpit_measures,
        random_label_pretraining,
    )
)
