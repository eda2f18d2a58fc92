"""Learn: one page per concept, each with a plain explanation, a live chart from the sample
runs, a control to try something, the question it answers, and the paper."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.store.sources import SOURCE_SENTENCE
from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages import sensitivity, similarity
from memdash.dashboard.app_pages.common import (
    chosen_curves,
    easiness_chart,
    easiness_counts,
    pretraining_chart,
    study_groups,
)
from memdash.dashboard.labels import label

NOISE_RUNS = {"no noise": "clean", "20% flipped labels": "noise", "all labels shuffled": "random"}


def _roles() -> dict[str, Path]:
    return data.role_paths(data.run_roots())


def _intro(title: str, text: str, question: str, reference: str) -> None:
    st.title(title)
    st.markdown(text)
    st.info(f"**The question:** {question}")
    st.caption(f"Reference: {reference}")


def _need(paths: dict[str, Path], *roles: str) -> bool:
    missing = [r for r in roles if r not in paths]
    if missing:
        st.warning(
            "This lesson uses the sample suite (`make sample-runs`); the runs under "
            f"{', '.join(data.run_roots())} lack: {', '.join(missing)}."
        )
    return not missing


def _train_table(path: Path, *, trace: bool = True) -> pd.DataFrame:
    """The clean and flipped training examples; with `trace`, their trace scores from the
    chosen trace, after the sentence that says what the two traces are."""
    table = data.examples(path)
    if trace:
        st.markdown(SOURCE_SENTENCE)
        table = state.with_source(table)
    return table[table["kind"].isin(["clean", "flipped"])]


def memorization() -> None:
    _intro(
        "What memorization is",
        "A network *memorizes* an example when it gets that example right only because it "
        "saw it in training: it could not have predicted it from the other examples. Large "
        "networks can memorize anything, even labels chosen at random. That matters twice: "
        "memorized examples can leak private training data, and memorizing wrong labels "
        "hurts accuracy on new data. Pick a training set below and watch the training and "
        "test accuracy.",
        "Can a network fit labels that carry no information, and what does that cost on new data?",
        "Zhang et al. 2017, Understanding deep learning requires rethinking generalization; "
        "Feldman 2020, Does learning require memorization?",
    )
    paths = _roles()
    if not _need(paths, *NOISE_RUNS.values()):
        return
    choice = st.radio("Training labels", list(NOISE_RUNS), horizontal=True, key="learn_mem_noise")
    curves = chosen_curves([paths[NOISE_RUNS[choice]]])
    st.plotly_chart(charts.training_curves(curves), width="stretch", key="learn_mem_chart")
    final = curves[curves["epoch"] == curves["epoch"].max()].set_index("group")["accuracy"]
    st.markdown(
        "After the last epoch: "
        + ", ".join(f"**{g}** {v:.0%}" for g, v in final.items())
        + ". With shuffled labels the network still fits most training examples, but the "
        "test set stays at chance: what it learned is memorized, not understood."
    )


def order_of_fitting() -> None:
    _intro(
        "Label noise and the order of fitting",
        "Flip some training labels to a wrong class and train. The network first learns "
        "what the clean examples have in common: their accuracy rises within a few epochs "
        "while the flipped ones stay wrong. Only later does it memorize the flipped labels "
        "one by one, and test accuracy falls as it does. Dropout slows that memorization.",
        "Does a network learn patterns before it memorizes exceptions?",
        "Arpit et al. 2017, A closer look at memorization in deep networks",
    )
    paths = _roles()
    if not _need(paths, "noise", "dropout"):
        return
    dropout = st.toggle("Train with dropout 0.5", key="learn_order_dropout")
    path = paths["dropout" if dropout else "noise"]
    curves = chosen_curves([path])
    st.plotly_chart(charts.training_curves(curves), width="stretch", key="learn_order_chart")
    wide = curves.pivot(index="epoch", columns="group", values="accuracy")
    st.markdown(
        f"Test accuracy is highest at epoch **{int(wide['test'].idxmax())}** "
        f"({wide['test'].max():.0%}); by the last epoch the flipped examples are "
        f"**{wide['train (flipped)'].iloc[-1]:.0%}** fitted and the test set is at "
        f"**{wide['test'].iloc[-1]:.0%}**."
    )


def forgetting() -> None:
    _intro(
        "Forgetting events",
        "Between two epochs an example can go from right to wrong: a *forgetting event*. "
        "Most clean examples, once learned, are never forgotten. Examples with wrong labels "
        "flip back and forth as the network is pulled between the label and what similar "
        "examples say. Choose an example to follow it through training.",
        "Which examples does the network keep forgetting?",
        "Toneva et al. 2019, An empirical study of example forgetting during deep neural "
        "network learning",
    )
    paths = _roles()
    if not _need(paths, "noise"):
        return
    table = _train_table(paths["noise"])
    kind = st.radio("Examples", ["flipped", "clean"], horizontal=True, key="learn_forget_kind")
    ranked = table[table["kind"] == kind].sort_values("forgetting_events", ascending=False)
    rank = st.slider(
        "Rank by forgetting events (0 = forgotten most)",
        0,
        len(ranked) - 1,
        0,
        key="learn_forget_rank",
    )
    row = ranked.iloc[rank]
    st.plotly_chart(
        charts.trajectory(data.trajectory(paths["noise"], int(row["example_id"])).dropna()),
        width="stretch",
        key="learn_forget_chart",
    )
    means = table.groupby("kind")["forgetting_events"].mean()
    st.markdown(
        f"Example {int(row['example_id'])} was forgotten **{int(row['forgetting_events'])}** "
        f"times. On average a flipped example is forgotten {means['flipped']:.1f} times and a "
        f"clean one {means['clean']:.1f} times."
    )


def data_maps() -> None:
    _intro(
        "Data maps",
        "For each training example, average over epochs the probability the network gives "
        "its label (*confidence*) and how much that probability moves (*variability*). "
        "Easy examples sit at the top left; examples the network never believes sit at the "
        "bottom left. Wrong labels start there; once the network begins to memorize them "
        "their probability swings, and they drift right (ambiguous): below, most flipped "
        "examples of this run sit there. Move the threshold to flag the least-confident "
        "examples as suspicious.",
        "Can training dynamics alone find mislabeled examples?",
        "Swayamdipta et al. 2020, Dataset cartography",
    )
    paths = _roles()
    if not _need(paths, "noise"):
        return
    table = _train_table(paths["noise"])
    threshold = st.slider(
        "Flag examples with confidence below", 0.0, 1.0, 0.3, 0.05, key="learn_map_threshold"
    )
    flagged = table["confidence"] < threshold
    flipped = table["kind"] == "flipped"
    figure = charts.scatter(
        table,
        x="variability",
        y="confidence",
        color="kind",
        title="the data map of the 20% noise run",
    )
    charts.threshold_lines(figure, y=threshold, text=f"confidence {threshold:.2f}")
    charts.ring(figure, table[flagged], x="variability", y="confidence", name="flagged")
    st.plotly_chart(figure, width="stretch", key="learn_map_chart")
    caught = int((flagged & flipped).sum())
    st.markdown(
        f"**{int(flagged.sum())}** examples flagged: **{caught}** of the {int(flipped.sum())} "
        f"flipped ones (recall {caught / flipped.sum():.0%}), and "
        f"{int((flagged & ~flipped).sum())} clean ones."
    )


def heldout_score() -> None:
    _intro(
        "The held-out memorization score",
        "Train many networks, each on a random 70% of the training set. For one example, "
        "compare how often it is right in the networks that trained on it with the networks "
        "that did not. A typical example is right either way (score near 0). A memorized "
        "one is right only when it was trained on (score near 1).",
        "How much does getting this example right depend on having seen it?",
        "Feldman & Zhang 2020, What neural networks memorize and why",
    )
    paths = _roles()
    if not _need(paths, "noise"):
        return
    table = _train_table(paths["noise"], trace=False)
    if "mem_score" not in table.columns:
        st.warning("Run `memdash estimate --like` on the 20% noise run first.")
        return
    threshold = st.slider(
        "Call an example memorized above", 0.0, 1.0, 0.5, 0.05, key="learn_mem_threshold"
    )
    figure = charts.histograms(table, value="mem_score", group="kind")
    charts.threshold_lines(figure, x=threshold, text=f"memorized above {threshold:.2f}")
    st.plotly_chart(figure, width="stretch", key="learn_heldout_chart")
    share = table.assign(high=table["mem_score"] > threshold).groupby("kind")["high"].mean()
    st.markdown(
        f"Above {threshold:.2f}: **{share['flipped']:.0%}** of flipped examples and "
        f"**{share['clean']:.0%}** of clean ones."
    )


FPR_CHOICES = (0.001, 0.01, 0.1)


def membership() -> None:
    _intro(
        "Membership inference",
        "An attacker holds a trained model and one example, and asks: *was this example in "
        "the training set?* The attacker looks at how confident the model is in the "
        "example's label, phi = log(p / (1 - p)), and compares it with what models that "
        "did not train on it say, trained by the attacker on similar data (here: the other "
        "models of the estimate). A typical example gets about the same confidence either "
        "way: its membership stays hidden. A memorized one is confidently right only in the "
        "models that trained on it: its membership leaks. The attacker must accept some "
        "false alarms (members called where there were none); the fewer, the stronger the "
        "claim.",
        "Are the examples a network memorizes the ones whose presence in its training data "
        "can be told from the network?",
        "Carlini et al. 2022, Membership inference attacks from first principles",
    )
    paths = _roles()
    if not _need(paths, "noise"):
        return
    path = paths["noise"]
    table = _train_table(path, trace=False)
    if "vulnerability" not in table.columns:
        st.warning("Run `memdash estimate --like` on the 20% noise run first.")
        return
    alpha = st.select_slider(
        "False positives the attacker accepts",
        FPR_CHOICES,
        value=0.01,
        format_func=_percent,
        key="learn_membership_fpr",
    )
    phi, member = data.confidences(path)
    thresholds, exposed = _exposed_at(phi, member, alpha)
    columns = st.columns(2)
    for column, (kind, example_id) in zip(columns, _two_examples(table).items(), strict=True):
        threshold = float(thresholds[example_id])
        column.plotly_chart(
            charts.member_histograms(
                phi[member[:, example_id], example_id],
                phi[~member[:, example_id], example_id],
                threshold=threshold,
                title=f"a {kind} example (#{example_id})",
            ),
            width="stretch",
            key=f"learn_membership_{kind}",
        )
        column.caption(
            f"Called a member above the dashed line (phi {threshold:.1f}), where "
            f"{_percent(alpha)} of the models that held it out lie: "
            f"**{exposed[example_id]:.0%}** of the models that trained on it are caught."
        )
    table = table.assign(exposed=exposed[table["example_id"].to_numpy()])
    share = table.groupby("kind")["exposed"].mean()
    st.markdown(
        f"With {_percent(alpha)} false positives per example, the attacker catches **"
        f"{share.get('flipped', float('nan')):.0%}** of the memberships of flipped examples on "
        f"average, and **{share.get('clean', float('nan')):.0%}** of those of clean ones. The "
        "Privacy page draws the full attacks (online and offline LiRA) on log-log axes."
    )


def _percent(share: float) -> str:
    """0.001 -> "0.1%", 0.01 -> "1%"."""
    return f"{share:.1%}".replace(".0%", "%")


def _exposed_at(phi: np.ndarray, member: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Per example, the (1 - alpha) quantile of phi over the models that held it out (the
    attacker's threshold), and the share of the models that trained on it whose phi exceeds
    it: (N,) each, NaN where either side is empty."""
    out = np.where(member, np.nan, phi)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: never held out
        threshold = np.nanquantile(out, 1 - alpha, axis=0)
        caught = (phi > threshold) & member
        return threshold, caught.sum(0) / member.sum(0)


def _two_examples(table: pd.DataFrame) -> dict[str, int]:
    """The most memorized flipped example and a typical clean one (median mem_score)."""
    flipped = table[table["kind"] == "flipped"].dropna(subset=["mem_score"])
    clean = table[table["kind"] == "clean"].dropna(subset=["mem_score"])
    typical = (clean["mem_score"] - clean["mem_score"].median()).abs().idxmin()
    return {
        "flipped": int(flipped.nlargest(1, ["mem_score", "vulnerability"])["example_id"].iloc[0]),
        "clean": int(clean.loc[typical, "example_id"]),
    }


def exposure() -> None:
    _intro(
        "Exposure and canaries",
        "Insert *canaries*, random inputs with random labels, into the training set, some "
        "once, some many times per epoch. Keep other random inputs, never trained on, as "
        "references. Exposure counts in bits how far a canary's loss falls below the "
        "references': about 1.44 bits means no more than chance; the maximum, log2 of the "
        "number of references, means it is more familiar than every one of them.",
        "How much does repeating a secret in the training data expose it?",
        "Carlini et al. 2019, The secret sharer",
    )
    paths = _roles()
    if not _need(paths, "canaries"):
        return
    table = data.derived(paths["canaries"], "exposure.parquet")
    epochs = sorted(table["epoch"].unique())
    epoch = st.select_slider(
        "After epoch", epochs, value=epochs[min(1, len(epochs) - 1)], key="learn_exposure_epoch"
    )
    ceiling = float(table["ceiling"].iloc[0])
    st.plotly_chart(
        charts.exposure_chart(table, epoch=epoch, method="exposure_interpolation", ceiling=ceiling),
        width="stretch",
        key="learn_exposure_chart",
    )


def knn() -> None:
    _intro(
        "k-NN against the network",
        "At any layer, each example has neighbours: the training examples whose activations "
        "are closest. Let the 30 nearest vote on its class and compare with the network's "
        "answer. Where the two agree the layer represents the example like its class; where "
        "the network says the flipped label but the neighbours vote for the true class, the "
        "network has memorized a label its own features do not support.",
        "Does the network classify like its nearest neighbours, or does it memorize?",
        "Cohen, Sapiro and Giryes 2018, DNN or k-NN: that is the generalize vs. memorize question",
    )
    paths = _roles()
    if not _need(paths, "noise"):
        return
    k = data.derived(paths["noise"], "knn.parquet")
    subset = st.radio(
        "Training examples", ["flipped", "clean"], horizontal=True, key="learn_knn_subset"
    )
    rows = k[(k["split"] == "train") & (k["subset"] == subset)]
    long = rows.melt(
        id_vars=["epoch", "layer"],
        value_vars=["dnn_accuracy", "knn_true_accuracy"],
        var_name="measure",
        value_name="accuracy",
    )
    long["measure"] = long["layer"] + ": " + long["measure"].str.replace("_accuracy", "")
    st.plotly_chart(
        charts.lines(
            data.by_layer(paths["noise"], long),
            x="epoch",
            y="accuracy",
            color="measure",
            title="network (given label) and k-NN (true label) by epoch",
        ),
        width="stretch",
        key="learn_knn_chart",
    )


def localization() -> None:
    _intro(
        "Localization and example-tied dropout",
        "Where does a network keep a memorized label? Zero its neurons one at a time, most "
        "important for that example first, until the prediction changes: memorized examples "
        "change after a few neurons, spread over several layers. Example-tied dropout turns "
        "this around: each example may use only its own small set of neurons, which can be "
        "switched off after training.",
        "Can memorization be found in, and cut out of, a few neurons?",
        "Maini et al. 2023, Can neural network memorization be localized?",
    )
    paths = _roles()
    if not _need(paths, "noise", "tied"):
        return
    view = st.radio(
        "Show",
        ["neurons needed to flip an example", "example-tied dropout"],
        horizontal=True,
        key="learn_loc_view",
    )
    if view.startswith("neurons"):
        per = data.derived(paths["noise"], "localization.parquet")
        st.plotly_chart(
            charts.histograms(per, value="neurons_zeroed", group="kind"),
            width="stretch",
            key="learn_loc_chart",
        )
        med = per.groupby("kind")["neurons_zeroed"].median()
        st.markdown(
            f"Median: **{med['flipped']:g}** neurons for a flipped example, "
            f"**{med['clean']:g}** for a clean one."
        )
    else:
        result = data.run_meta(paths["tied"])["example_tied_dropout"]
        rows = [
            {"memorization neurons": m, "examples": name, "accuracy": result[m][key]}
            for m in ("keep", "drop")
            for key, name in (("noisy_acc", "flipped"), ("test_acc", "test"))
        ]
        st.plotly_chart(
            charts.lines(
                pd.DataFrame(rows), x="memorization neurons", y="accuracy", color="examples"
            ),
            width="stretch",
            key="learn_loc_chart",
        )


def _need_study(*roles: str) -> dict | None:
    """The study roles' runs (`data.study_paths`), or None after saying what is missing."""
    paths = data.study_paths(data.run_roots())
    return paths if _need(paths, *roles) else None


def one_way_to_learn() -> None:
    _intro(
        "One way to learn, N ways to memorize",
        "Train the same network three times from three seeds, and compare what the same "
        "layer computes in each: represent every example by the layer's activations and ask "
        "whether the examples that one network places close together are close in the other "
        "too (linear CKA, 1 = the same up to a rotation and a scale). With true labels, the "
        "three networks end up computing almost the same thing: there is one way to learn "
        "the data. With random labels, each network finds its own way to memorize them, "
        "and its later layers differ from the other seeds'.",
        "Do networks from different initializations learn the same representation, and does "
        "memorizing random labels change that?",
        "Neural Network Memorization Dissection; linear CKA: Kornblith et al. 2019, "
        "Similarity of neural network representations revisited",
    )
    paths = _need_study("true_group", "random_group")
    if paths is None:
        return
    groups = study_groups(paths)
    epochs = data.embedding_epochs(tuple(p for group in groups.values() for p in group))
    left, right = st.columns([1, 2])
    epoch = left.select_slider("After epoch", epochs, value=epochs[-1], key="learn_oneway_epoch")
    with right:
        measure = similarity.measure_control("learn_oneway_measure")
    lines = similarity.group_heatmaps(groups, epoch, measure, key="learn_oneway")
    last = lines.groupby("group")["value"].last()
    st.markdown(
        f"At the last layer after epoch {epoch}, two seeds agree at **{last['true labels']:.2f}** "
        f"with true labels and at **{last['random labels']:.2f}** with random labels. Move "
        "back to epoch 1: before the random labels are memorized, the two groups look "
        "more alike."
    )


def arpit_measures() -> None:
    _intro(
        "Easiness, loss sensitivity and critical samples",
        "Three ways to tell learning patterns from memorizing. **Easiness**: train several "
        "networks from different seeds and count, for each example, how many get it right "
        "after one epoch; with real labels most examples are right in every network or in "
        "none, because what is easy is easy for all. **Loss sensitivity**: how much the loss "
        "changes when the input moves a little; a network that memorizes an example keeps "
        "its answer on a knife edge. **Critical sample ratio**: the share of examples with "
        "an input of another class within a tiny box around them; memorizing bends the "
        "decision boundary close to every example.",
        "Do networks treat real data and noise differently, from the first epoch on?",
        "Arpit et al. 2017, A closer look at memorization in deep networks",
    )
    paths = _need_study("true_group", "random_group")
    if paths is None:
        return
    groups = study_groups(paths)
    last = min(data.epochs_completed(paths["true_group"] + paths["random_group"]))
    epoch = st.slider("Easiness after epoch", 0, last, 1, key="learn_arpit_epoch")
    both = easiness_counts(groups, epoch)
    st.plotly_chart(easiness_chart(both), width="stretch", key="learn_arpit_easiness")
    every = {
        name: (both.loc[both["labels"] == name, "seeds"] == len(group)).mean()
        for name, group in groups.items()
    }
    st.markdown(
        f"After epoch {epoch}, **{every['true labels']:.0%}** of the training examples are "
        f"right in every seed with true labels, against **{every['random labels']:.1%}** with "
        "random labels, where getting an example right is mostly luck."
    )
    measure = st.radio(
        "Over training",
        ["loss_sensitivity", "critical"],
        format_func=label,
        horizontal=True,
        key="learn_arpit_measure",
    )
    if not all(measure in data.trace_columns(Path(p)) for g in groups.values() for p in g):
        st.warning(f"The groups did not record {label(measure)}; see `make sample-runs`.")
        return
    st.plotly_chart(
        charts.lines(
            sensitivity.group_curves(groups, measure),
            x="epoch",
            y=measure,
            color="group",
            title="mean over training examples, averaged over seeds",
        ),
        width="stretch",
        key="learn_arpit_curves",
    )


def random_label_pretraining() -> None:
    _intro(
        "Pre-training on random labels",
        "Memorizing random labels looks like wasted work, yet the weights it leaves behind "
        "are not random: the first layers have adapted to the inputs. Train a network on "
        "the data with every label shuffled, then keep its weights (all but the output "
        "layer, drawn afresh), and train it on the true labels. Compare with the same "
        "network trained from scratch with the same seed and batches.",
        "Does memorizing random labels leave features that help later learning?",
        "Leveraging Random Label Memorization for Unsupervised Pre-Training (gains of 1.5 to "
        "5 points on video action recognition)",
    )
    paths = _need_study("pretrained", "scratch")
    if paths is None:
        return
    starts = {"from random-label weights": paths["pretrained"], "from scratch": paths["scratch"]}
    split = st.radio(
        "Accuracy on", ["test", "train (clean)"], horizontal=True, key="learn_pretrain_split"
    )
    st.plotly_chart(
        pretraining_chart(starts, split),
        width="stretch",
        key="learn_pretrain_chart",
    )
    source = data.run_meta(Path(paths["pretrained"])).get("init_from", {})
    found = {f.key: f for f in data.findings(data.run_roots())}["random_label_pretraining"]
    v = found.values
    fresh = ", ".join(source.get("reinit") or []) or "none"
    st.markdown(
        f"The pre-trained run started from `{source.get('run')}` after epoch "
        f"{source.get('epoch')} (layers drawn afresh: {fresh}). It reaches "
        f"{v['target']:.1%} test accuracy (98% of scratch's final) at epoch "
        f"**{v['pretrained_epochs']:.0f}** against **{v['scratch_epochs']:.0f}** from "
        f"scratch, and ends at **{v['pretrained_final']:.1%}** against "
        f"**{v['scratch_final']:.1%}**: {_pretraining_verdict(v)}."
    )


def _pretraining_verdict(v: dict[str, float]) -> str:
    """What the pre-training finding's numbers say, in words."""
    gap = v["pretrained_final"] - v["scratch_final"]
    if gap > 0.005:
        return f"memorizing random labels left a better network ({gap:+.1%})"
    if gap < -0.005:
        return f"the random-label weights cost accuracy here ({gap:+.1%})"
    ahead = v["scratch_epochs"] - v["pretrained_epochs"]
    if ahead > 0:
        return f"on these small digits the gain is a head start of {ahead:.0f} epochs"
    return "on these small digits it made no difference"


LESSONS = (
    ("what-is-memorization", "What memorization is", memorization),
    ("order-of-fitting", "Label noise and the order of fitting", order_of_fitting),
    ("forgetting", "Forgetting events", forgetting),
    ("data-maps", "Data maps", data_maps),
    ("heldout-score", "The held-out memorization score", heldout_score),
    ("membership", "Membership inference", membership),
    ("exposure", "Exposure and canaries", exposure),
    ("knn", "k-NN against the network", knn),
    ("localization", "Localization and example-tied dropout", localization),
    ("one-way-to-learn", "One way to learn, N ways to memorize", one_way_to_learn),
    ("arpit-measures", "Easiness, loss sensitivity and critical samples", arpit_measures),
    ("random-label-pretraining", "Pre-training on random labels", random_label_pretraining),
)
