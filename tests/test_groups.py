"""Seed groups: `memdash train --seeds` and their recognition."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.store import Run, discover_runs
from memdash.analysis.store.groups import group_key, seed_groups

TINY = ["--dataset", "synthetic", "--n-examples", "120", "--shape", "8", "--n-classes", "3"]
TINY += ["--noise", "0.2", "--hidden", "8", "--epochs", "2", "--no-record-train"]


def test_seeds_train_one_run_per_seed_on_the_same_data(tmp_path):
    result = CliRunner().invoke(app, ["train", *TINY, "--seeds", "0-1,4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    runs = [Run.open(p) for p in discover_runs([tmp_path])]
    assert [r.name for r in runs] == ["seed_0", "seed_1", "seed_4"]
    assert [r.config["seed"] for r in runs] == [0, 1, 4]
    assert {r.config["data"]["seed"] for r in runs} == {0}  # the first seed's data
    first = runs[0]
    for other in runs[1:]:  # the same examples, inputs and (noisy) labels ...
        assert np.array_equal(other.inputs(), first.inputs())
        assert other.examples().equals(first.examples())
        # ... and another initialization: different weights, so different losses
        assert not np.allclose(other.trace("eval")["loss"], first.trace("eval")["loss"])
    (group,) = seed_groups(runs).values()
    assert [r.name for r in group] == ["seed_0", "seed_1", "seed_4"]
    # info names the group, for a run of it and for the folder
    shown = " ".join(CliRunner().invoke(app, ["info", str(tmp_path / "seed_1")]).output.split())
    assert "seed group │ seeds 0, 1, 4 in" in shown
    result = CliRunner().invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert "3 runs under" in shown and "│ 0, 1, 4 │ 20% symmetric labels │ seed_0," in shown


def test_a_data_seed_and_what_makes_a_group(tmp_path):
    args = ["train", *TINY, "--seeds", "2,3", "--data-seed", "7", "--out", str(tmp_path / "g")]
    assert CliRunner().invoke(app, args).exit_code == 0
    single = ["train", *TINY, "--seed", "7", "--out", str(tmp_path / "single")]
    assert CliRunner().invoke(app, single).exit_code == 0
    runs = [Run.open(p) for p in discover_runs([tmp_path])]
    by_name = {r.name if r.name == "single" else f"g/{r.name}": r for r in runs}
    # seed 7 alone draws its data from seed 7 too: the group's data, so it joins the group
    assert np.array_equal(by_name["single"].inputs(), by_name["g/seed_2"].inputs())
    keys = {name: group_key(r.config) for name, r in by_name.items()}
    assert keys["single"] == keys["g/seed_2"]
    assert keys["g/seed_2"] == keys["g/seed_3"]
    groups = seed_groups(runs)
    assert sorted(r.config["seed"] for r in next(iter(groups.values()))) == [2, 3, 7]
    # another noise rate is another experiment
    config = dict(by_name["g/seed_2"].config)
    config["data"] = config["data"] | {"noise": 0.4}
    assert group_key(config) != keys["g/seed_2"]


def test_bad_seed_lists_get_one_message(tmp_path):
    for bad in ("3-1", "x", "0-5000", "-2"):
        result = CliRunner().invoke(app, ["train", *TINY, "--seeds", bad, "--out", str(tmp_path)])
        assert result.exit_code != 0 and "--seeds" in result.output, (bad, result.output)
        assert not any(tmp_path.iterdir())


def test_similarity_command_compares_every_layer_of_a_group(tmp_path):
    from memdash.analysis.measures.similarity import linear_cka, svcca

    group = tmp_path / "group"
    embed = ["--embed-layers", "fc1,out", "--embed-epochs", "0,2"]
    args = ["train", *TINY, *embed, "--seeds", "0-1", "--out", str(group)]
    assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(app, ["similarity", str(group), "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "s" / "similarity.parquet")
    assert len(table) == 1 * 2 * 4 * 2  # one pair, two epochs, 2 x 2 layers, two measures
    assert set(table["measure"]) == {"cka", "svcca"} and table["value"].between(0, 1).all()
    a, b = Run.open(group / "seed_0"), Run.open(group / "seed_1")
    row = table.query("epoch == 2 and layer_a == 'fc1' and layer_b == 'out'")
    cka = row[row["measure"] == "cka"]["value"].item()
    assert cka == pytest.approx(linear_cka(a.embedding(2, "fc1"), b.embedding(2, "out")))
    sv = row[row["measure"] == "svcca"]["value"].item()
    assert sv == pytest.approx(svcca(a.embedding(2, "fc1"), b.embedding(2, "out")))
    assert "mean over pairs, same layer" in " ".join(result.output.split())


def test_similarity_refuses_runs_of_other_examples(tmp_path):
    embed = ["--embed-layers", "fc1", "--embed-epochs", "2"]
    for seed in ("0", "1"):  # each its own data seed: other splits, other examples
        args = ["train", *TINY, *embed, "--seed", seed, "--out", str(tmp_path / seed)]
        assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(
        app, ["similarity", str(tmp_path / "0"), str(tmp_path / "1"), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 1 and "hold different examples" in result.output
    assert not (tmp_path / "s").exists()


def test_init_from_another_run_starts_from_its_weights(tmp_path):
    """Pre-train on random labels, then continue on the true labels from those weights with
    a fresh output layer: every other weight starts as the source's last checkpoint, the
    output layer as a scratch run's (the same seed), and run.json says where it came from."""
    from safetensors.torch import load_file

    shuffled = ["--corruption", "random_labels", "--noise", "1"]
    base = [a for a in TINY if a not in ("--noise", "0.2")]
    pre = ["train", *base, *shuffled, "--out", str(tmp_path / "pre")]
    assert CliRunner().invoke(app, pre).exit_code == 0
    args = ["train", *base, "--seed", "5", "--checkpoint-epochs", "0"]
    fine = [*args, "--init-from", str(tmp_path / "pre"), "--reinit", "out"]
    assert CliRunner().invoke(app, [*fine, "--out", str(tmp_path / "fine")]).exit_code == 0
    assert CliRunner().invoke(app, [*args, "--out", str(tmp_path / "scratch")]).exit_code == 0
    source = load_file(str(tmp_path / "pre" / "checkpoints" / "epoch_002.safetensors"))
    start = load_file(str(tmp_path / "fine" / "checkpoints" / "epoch_000.safetensors"))
    scratch = load_file(str(tmp_path / "scratch" / "checkpoints" / "epoch_000.safetensors"))
    assert set(start) == set(source)
    for name, tensor in start.items():
        expected = scratch[name] if name.startswith("out.") else source[name]
        assert torch.equal(tensor, expected), name
    run = Run.open(tmp_path / "fine")
    assert run.meta["init_from"] == {
        "run": str((tmp_path / "pre").resolve()),
        "name": "pre",
        "epoch": 2,
        "reinit": ["out"],
    }
    assert run.config["train"]["reinit"] == ["out"]
    shown = " ".join(CliRunner().invoke(app, ["info", str(tmp_path / "fine")]).output.split())
    assert "started from" in shown and "epoch 2 (drawn afresh: out)" in shown
    # an estimate of it trains its models from scratch, and says so
    estimate = ["estimate", "--like", str(tmp_path / "fine"), "--models", "2", "--workers", "1"]
    result = CliRunner().invoke(app, estimate)
    assert result.exit_code == 0, result.output
    assert "train from scratch" in " ".join(result.output.split())


def test_init_from_errors_name_the_problem(tmp_path):
    pre = ["train", *TINY, "--out", str(tmp_path / "pre")]
    assert CliRunner().invoke(app, pre).exit_code == 0
    cases = {
        "--init-epoch 1": (
            ["--init-from", str(tmp_path / "pre"), "--init-epoch", "1"],
            "not recorded",
        ),
        "--reinit nope": (["--init-from", str(tmp_path / "pre"), "--reinit", "nope"], "no layer"),
        "wider": (["--init-from", str(tmp_path / "pre"), "--hidden", "16"], "do not fit"),
        "no source": (["--init-from", str(tmp_path / "absent")], "--init-from"),
        "epoch alone": (["--init-epoch", "1"], "need --init-from"),
        "no checkpoint": (["--init-from", str(tmp_path / "bare")], "stored no checkpoint"),
    }
    shutil.copytree(tmp_path / "pre", tmp_path / "bare")
    shutil.rmtree(tmp_path / "bare" / "checkpoints")
    for what, (extra, message) in cases.items():
        out = tmp_path / what.replace(" ", "_")
        result = CliRunner().invoke(app, ["train", *TINY, *extra, "--out", str(out)])
        code = 2 if what == "epoch alone" else 1  # 2: an option that needs another, refused
        assert result.exit_code == code and message in " ".join(result.output.split()), (
            what,
            result.output,
        )
        assert "Traceback" not in result.output
