"""`memdash analyze --backend ray`: each layer and epoch's k-NN and each layer's UMAP as Ray
tasks, the derived files the same byte for byte as the local backend's."""

import hashlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.steps.jobs import LocalJobs, jobs_for
from memdash.analysis.steps.pipeline import analyze
from memdash.analysis.store import Run

SAMPLE = Path(__file__).resolve().parents[1] / "sample_runs" / "digits_mlp_noise20"
PARTS = (
    *("knn.parquet", "knn_examples.parquet", "neighbors.parquet"),
    *("umap/fc1.parquet", "umap/fc2.parquet", "umap/out.parquet"),
)


def _hashes(run: Path) -> dict[str, str]:
    return {f: hashlib.sha256((run / "derived" / f).read_bytes()).hexdigest() for f in PARTS}


def _part(run, scale: int, *, progress) -> tuple:
    progress("working")
    return run, scale * 2


def test_local_jobs_run_the_parts_in_order_here_with_the_open_run():
    said = []
    results = LocalJobs().map(
        _part, "the run", [(1,), (5,), (3,)], labels=["a", "b", "c"], progress=said.append
    )
    assert results == [("the run", 2), ("the run", 10), ("the run", 6)]
    assert said == ["a", "a: working", "b", "b: working", "c", "c: working"]
    with pytest.raises(ValueError, match="unknown backend 'slurm'; valid: local, ray"):
        jobs_for("slurm")


@pytest.mark.slow
def test_the_sample_runs_knn_and_umap_on_ray_equal_the_local_backends(tmp_path):
    pytest.importorskip("ray", reason="make test installs the ray extra")
    for name in ("local", "ray"):
        shutil.copytree(SAMPLE, tmp_path / name)
    analyze(tmp_path / "local", only=["knn", "umap"], force=True)
    result = CliRunner().invoke(
        app,
        ["analyze", str(tmp_path / "ray"), "--only", "knn,umap", "--force"]
        + ["--backend", "ray", "--workers", "2"],
    )
    assert result.exit_code == 0, result.output
    assert "umap: computed" in result.output
    assert _hashes(tmp_path / "ray") == _hashes(tmp_path / "local")
    for run in ("local", "ray"):  # every layer at both epochs, searched exactly
        knn = Run.open(tmp_path / run).read_derived("knn.parquet")
        assert set(zip(knn["epoch"], knn["layer"], strict=True)) == {
            (e, layer) for e in (5, 60) for layer in ("fc1", "fc2", "out")
        }
        assert set(knn["method"]) == {"exact"}


def test_an_unknown_backend_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["analyze", str(SAMPLE), "--backend", "slurm"])
    assert result.exit_code == 2 and "--backend must be one of local, ray" in result.output
