"""Findings: the papers' claims checked on the runs under the roots, each with its figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.findings import REGISTRY
from memdash.analysis.store.sources import SOURCES
from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    chosen_curves,
    easiness_chart,
    easiness_counts,
    pretraining_chart,
    study_groups,
)
from memdash.dashboard.app_pages.compare import paired, reading
from memdash.dashboard.app_pages.privacy_audit import budget_figure, epsilon_bounds
from memdash.dashboard.app_pages.sensitivity import group_curves
from memdash.dashboard.charts import counterfactual as cf_charts
from memdash.dashboard.charts import exposure as text_charts
from memdash.dashboard.charts import proxies as proxy_charts
from memdash.dashboard.data import proxies as proxy_data
from memdash.dashboard.labels import label, md_text
from memdash.dashboard.palette import KIND_COLORS

BADGE = {"holds": ":green[holds]", "does not hold": ":red[does not hold]"}
ROW_HEIGHT = 35  # st.dataframe's row height in pixels
ROLE_NAMES = {
    "clean": "no label noise",
    "noise": "20% flipped labels",
    "dropout": "flipped labels with dropout",
    "tied": "example-tied dropout",
    "random": "random labels",
    "canaries": "canaries",
    "true_group": "seeds on true labels",
    "random_group": "seeds on random labels",
    "pretrained": "from random-label weights",
    "scratch": "from scratch",
    "text": "a language model with canaries and duplicated sequences",
    "dp": "trained with DP-SGD",
    "widths": "the same training at other hidden widths",
}


def render() -> None:
    st.title("Findings")
    roots = data.run_roots()
    results = data.findings(roots, state.trace_source())
    paths = data.role_paths(roots) | data.study_paths(roots)
    st.caption(
        "Each claim from the memorization papers, measured on the runs under "
        + ", ".join(f"`{r}`" for r in roots)
        + ". The same checks print with `memdash findings`."
    )
    summary = pd.DataFrame(
        [
            {
                "finding": f.title,
                "verdict": f.verdict,
                "trace": SOURCES.get(f.source, "n/a"),
                "reference": f.reference,
            }
            for f in results
        ]
    )
    st.dataframe(
        summary,
        hide_index=True,
        width="stretch",
        height=ROW_HEIGHT * (len(summary) + 1) + 3,  # every finding, no inner scroll
        # the verdict whole ("does not hold" was cut to "does not")
        column_config={"verdict": st.column_config.TextColumn(width=110)},
        key="findings_table",
    )
    titles = [f.title for f in results]
    chosen = st.selectbox("Look at", titles, key="findings_choice")
    finding = results[titles.index(chosen)]
    st.subheader(finding.title)
    st.markdown(
        f"**{BADGE.get(finding.verdict, ':orange[not enough data]')}** "
        f"({finding.reference}). {finding.statistic or finding.why}"
    )
    figure = FIGURES.get(finding.key)
    if figure is not None and finding.statistic:
        caption = figure_caption(finding.key, paths)
        if caption:
            st.caption(caption)
        st.plotly_chart(figure(paths, finding), width="stretch", key="findings_figure")


def figure_caption(key: str, paths: dict[str, Path | str | tuple[str, ...]]) -> str:
    """The runs a finding's figure draws, in words: the finding's own roles (its declaration
    in `memdash.analysis.findings.REGISTRY`, so caption and finding cannot disagree) that
    `paths` holds; "" when it holds none."""
    roles = [r for r in REGISTRY[key].roles if r in paths]
    if not roles:
        return ""
    return "Figure from " + ", ".join(_role_text(r, paths[r]) for r in roles) + "."


def _role_text(role: str, value: Path | str | tuple[str, ...]) -> str:
    """A run (``run NAME``) or a seed group (``group NAME, 3 seeds``) and its role."""
    if role == "widths":  # a width family, narrowest first: its runs by name
        what = "runs " + ", ".join(f"**{md_text(Path(p).name)}**" for p in value)
    elif isinstance(value, tuple):
        named = {paths: name for name, paths in data.seed_groups(data.run_roots()).items()}
        what = f"group **{md_text(named.get(value, '?'))}**, {len(value)} seeds"
    else:
        what = f"run **{md_text(Path(value).name)}**"
    return f"{what} ({ROLE_NAMES[role]})"


def _curves(paths: dict[str, Path], *roles: str):
    return charts.training_curves(chosen_curves([paths[r] for r in roles if r in paths]))


def _train_scores(paths: dict[str, Path], role: str) -> pd.DataFrame:
    table = state.with_source(data.examples(paths[role]))
    return table[table["kind"].isin(["clean", "flipped"])]


FIGURES = {
    "order": lambda p, f: _curves(p, "noise"),
    "noise_rate": lambda p, f: _curves(p, "clean", "noise", "random"),
    "early_peak": lambda p, f: _curves(p, "noise"),
    "dropout": lambda p, f: _curves(p, "noise", "dropout"),
    "forgetting": lambda p, f: charts.histograms(
        _train_scores(p, "noise"), value="forgetting_events", group="kind"
    ),
    "data_map": lambda p, f: charts.scatter(
        _train_scores(p, "noise"), x="variability", y="confidence", color="kind"
    ),
    "mem_score": lambda p, f: charts.histograms(
        _train_scores(p, "noise"), value="mem_score", group="kind"
    ),
    "membership_follows_memorization": lambda p, f: charts.roc_curves(
        data.derived(p["noise"], "membership_roc.parquet")
    ),
    "rmia_with_few_models": lambda p, f: budget_figure(p["noise"], metric="tpr_at_1%"),
    "dp_bounds_membership": lambda p, f: _dp_bounds(p["dp"]),
    "dp_reduces_memorization": lambda p, f: _dp_memorization(p["noise"], p["dp"]),
    "exposure": lambda p, f: charts.exposure_chart(
        data.derived(p["canaries"], "exposure.parquet"),
        epoch=1,
        method="exposure_interpolation",
        ceiling=float(data.derived(p["canaries"], "exposure.parquet")["ceiling"].iloc[0]),
    ),
    "knn": lambda p, f: charts.lines(
        _knn_flipped(p), x="layer", y="accuracy", color="measure", title="flipped examples"
    ),
    "flipping": lambda p, f: charts.histograms(
        data.derived(p["noise"], "localization.parquet"), value="neurons_zeroed", group="kind"
    ),
    "tied_dropout": lambda p, f: charts.lines(
        _tied(p), x="mode", y="accuracy", color="examples", title="example-tied dropout"
    ),
    "one_way_to_learn": lambda p, f: charts.lines(
        _same_layer(p, int(f.values["epoch"])),
        x="layer",
        y="cka",
        color="labels",
        title=f"the same layer in two seeds, after epoch {int(f.values['epoch'])}",
    ),
    "random_label_pretraining": lambda p, f: pretraining_chart(
        {"from random-label weights": p["pretrained"], "from scratch": p["scratch"]}
    ),
    "easiness_across_seeds": lambda p, f: easiness_chart(easiness_counts(study_groups(p), 1)),
    "loss_sensitivity": lambda p, f: _group_curves(p, "loss_sensitivity"),
    "critical_sample_ratio": lambda p, f: _group_curves(p, "critical"),
    "text_exposure_rises_with_repetitions": lambda p, f: _text_exposure(p, int(f.values["epoch"])),
    "memorization_before_overfitting": lambda p, f: _text_exposure(
        p, int(f.values["best_test_epoch"])
    ),
    "extraction_grows_with_duplicates": lambda p, f: text_charts.extraction_chart(
        text_charts.extraction_shares(
            data.derived(p["text"], "extraction.parquet"),
            epoch=int(f.values["epoch"]),
            kinds=["duplicate"],
        ),
        baseline=None,
        baseline_name="",
        title=f"duplicated sequences extractable at epoch {int(f.values['epoch'])}",
        color=KIND_COLORS["duplicate"],
    ),
    "exact_and_extrapolated_exposure_agree": lambda p, f: _text_agreement(p),
    "counterfactual_memorization_of_text": lambda p, f: cf_charts.counterfactual_by_copies(
        data.examples(p["text"]).query("split == 'train'")
    ),
    "proxies_rank_memorization": lambda p, f: proxy_charts.scoreboard_chart(
        proxy_data.proxy_scoreboard(p["noise"])[0]
    ),
    "proxies_across_widths": lambda p, f: proxy_charts.widths_chart(
        proxy_charts.widths_table(f.values)
    ),
}


def _dp_bounds(path: Path):
    """Each attack's empirical epsilon on the DP estimate against its accountant's (an
    attack without pairs, its epsilon None, left out by `epsilon_bounds`)."""
    entry = data.manifest(path)["heldout"]
    bounds = epsilon_bounds(entry["membership"])
    return charts.epsilon_chart(bounds, accountant=entry["params"].get("dp_epsilon"))


def _dp_memorization(plain: Path, private: Path):
    """Each training example's memorization score without DP (run A) against with DP-SGD
    (run B), coloured by kind, as Compare runs draws two runs."""
    score = "mem_score"
    both = paired(data.examples(plain), data.examples(private), score)
    both = both[both["kinds"].isin(["clean", "flipped"])]
    end, word = reading(score)
    fig = charts.paired_scatter(both, score=score, threshold=0.5, end=end, word=word)
    return fig.update_layout(
        title=f"{label(score)}: without DP (run A, across) against with DP-SGD (run B, up)"
    )


def _text_exposure(paths: dict[str, Path], epoch: int):
    """The secrets' median exact exposure over the checkpoint epochs, `epoch` shaded."""
    table = data.derived(paths["text"], "exposure.parquet")
    summary = text_charts.text_exposure_summary(table, methods=["exposure_exact"])
    ceiling = float(table["ceiling"].iloc[0])
    return text_charts.text_exposure_over_epochs(
        summary, methods=["exposure_exact"], ceiling=ceiling, epoch=epoch, statistic="median"
    )


def _text_agreement(paths: dict[str, Path]):
    """Exact against extrapolated exposure of every secret at every checkpoint epoch."""
    table = data.derived(paths["text"], "exposure.parquet")
    ceiling = float(table["ceiling"].iloc[0])
    points = text_charts.agreement(
        table[table["exact_available"]], method="exposure_extrapolation", ceiling=ceiling
    )
    fig = text_charts.exact_vs_extrapolated(
        points, method="exposure_extrapolation", ceiling=ceiling, epoch=0
    )
    return fig.update_layout(title="exact against extrapolated exposure, every checkpoint epoch")


def _knn_flipped(paths: dict[str, Path]) -> pd.DataFrame:
    k = data.derived(paths["noise"], "knn.parquet")
    rows = k[
        (k["split"] == "train") & (k["subset"] == "flipped") & (k["epoch"] == k["epoch"].max())
    ]
    return data.by_layer(paths["noise"], rows).melt(
        id_vars=["layer"],
        value_vars=["dnn_accuracy", "knn_true_accuracy"],
        var_name="measure",
        value_name="accuracy",
    )


def _tied(paths: dict[str, Path]) -> pd.DataFrame:
    result = data.run_meta(paths["tied"])["example_tied_dropout"]
    rows = []
    for mode in ("keep", "drop"):
        for key, name in (("clean_acc", "clean"), ("noisy_acc", "flipped"), ("test_acc", "test")):
            rows.append({"mode": mode, "examples": name, "accuracy": result[mode][key]})
    return pd.DataFrame(rows)


def _same_layer(paths: dict, epoch: int) -> pd.DataFrame:
    """Linear CKA between seeds at the same layer, for the true- and random-label groups."""
    frames = []
    for name, group in study_groups(paths).items():
        grid = data.similarity(group, epoch, "cka", symmetric=True)
        same = grid[grid["layer_a"] == grid["layer_b"]]
        frames.append(
            pd.DataFrame({"labels": name, "layer": same["layer_a"], "cka": same["value"]})
        )
    return data.by_layer(Path(paths["true_group"][0]), pd.concat(frames, ignore_index=True))


def _group_curves(paths: dict, measure: str):
    return charts.lines(
        group_curves(study_groups(paths), measure),
        x="epoch",
        y=measure,
        color="group",
        title="mean over training examples, averaged over seeds",
    )
