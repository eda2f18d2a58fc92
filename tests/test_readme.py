"""The README's own-loop example runs as written and records a valid run."""

import re
import subprocess
import sys
from pathlib import Path

from memdash.analysis.store import Run

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if b.startswith("# my_loop.py"))


def test_own_loop_example_is_short():
    lines = [line for line in _example().splitlines() if line.strip()]
    assert len(lines) <= 30


def test_own_loop_example_runs_as_written(tmp_path):
    (tmp_path / "my_loop.py").write_text(_example())
    subprocess.run([sys.executable, "my_loop.py"], cwd=tmp_path, check=True, timeout=300)
    run = Run.open(tmp_path / "runs" / "my_loop")
    run.validate()
    assert run.status == "complete" and run.epochs_completed == 20
    ex = run.examples()
    assert ex["is_noisy"].sum() == 150 and (ex["split"] == "test").sum() == 297
    assert run.embedding(20, "fc1").shape == (1797, 256)
    assert set(run.layer_grads()["layer"]) == {"fc1", "out"}
    # the flipped labels are being memorized: their accuracy rises above chance
    last = run.trace("eval", epochs=[20]).merge(ex, on="example_id")
    assert last[last.is_noisy]["correct"].mean() > 0.1
