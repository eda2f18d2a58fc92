"""The user's own .npz files, fuzzed with hypothesis: wrong keys, mismatched lengths, NaN
and huge inputs, labels of the wrong type or out of range, zero examples, odd shapes and
files that are not .npz archives at all. `memdash train --dataset npz` either trains a
valid run or ends in one message that names the file, with a non-zero exit, no traceback
and the user's file unchanged."""

import io
import zipfile

import numpy as np
import tally
from hypothesis import event, given
from hypothesis import strategies as st
from test_fuzz_cli import _clean, fuzz
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.record.data import load_npz
from memdash.analysis.store import Run

AREA = "the user's .npz files (hypothesis)"
# a file is drawn right in every part, or wrong in one part (so each fault is seen alone)
RIGHT = {
    "n": [40, 24],
    "features": [(4,), (1, 8), (1, 3, 3)],
    "dtype": ["float32", "float64", "int64", "bool"],
    "values": ["normal"],
    "labels": ["classes", "whole_float"],
    "extra_labels": [0],
    "keys": [("X", "y")],
    "split": ["none", "both"],
}
WRONG = {
    "n": [0, 1, 2, 5],
    "features": [(0,), (), (2, 1, 1, 2)],
    "dtype": ["complex64", "U1", "object"],
    "values": ["nan", "inf", "huge"],
    "labels": ["one_class", "negative", "huge", "float", "text", "2d"],
    "extra_labels": [-1, 1],
    "keys": [("x", "y"), ("X",), ("X", "labels"), ("y",)],
    "split": ["only_x", "short", "other_shape", "new_class"],
}


@st.composite
def arrays(draw):
    """A dict of arrays for np.savez: X, y and perhaps a test split, right or wrong."""
    wrong = draw(st.sampled_from([None, *WRONG]))
    pick = {k: draw(st.sampled_from((WRONG if k == wrong else RIGHT)[k])) for k in RIGHT}
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    x = rng.standard_normal((pick["n"], *pick["features"]))
    x[..., :1] *= {"normal": 1, "nan": np.nan, "inf": np.inf, "huge": 1e300}[pick["values"]]
    with np.errstate(over="ignore", invalid="ignore"):
        x = x.astype(pick["dtype"])
    n_y = max(0, pick["n"] + pick["extra_labels"])
    y = {
        "classes": np.arange(n_y) % 3,
        "one_class": np.zeros(n_y, int),
        "negative": np.arange(n_y) % 3 - 1,
        "huge": np.arange(n_y) % 3 * 10**9,
        "float": np.arange(n_y) % 3 + 0.5,
        "whole_float": (np.arange(n_y) % 3).astype(float),
        "text": np.array([str(i % 3) for i in range(n_y)]),
        "2d": (np.arange(2 * n_y) % 3).reshape(n_y, 2),
    }[pick["labels"]]
    found = dict(zip(pick["keys"], (x, y), strict=False))
    split = pick["split"]
    if split != "none" and "X" in found and "y" in found:
        found["X_test"] = x[:4, ..., :1] if split == "other_shape" and x.ndim > 1 else x[:4]
        if split != "only_x":
            y_test = y[:3] if split == "short" else y[:4]
            shifted = split == "new_class" and y.dtype.kind in "if"
            found["y_test"] = y_test + 7 if shifted else y_test
    return found


def _npz_bytes(found: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **found)
    return buffer.getvalue()


@st.composite
def files(draw):
    """The bytes of a file given as --data-path: an .npz, or something that is not one."""
    kind = draw(st.sampled_from(["npz"] * 10 + ["truncated", "garbage", "empty", "npy", "zip"]))
    if kind == "npz":
        return draw(arrays())
    valid = _npz_bytes({"X": np.ones((24, 4)), "y": np.arange(24) % 3})
    if kind == "truncated":
        return valid[: len(valid) // 2]
    if kind == "garbage":
        return np.random.default_rng(1).bytes(300)
    if kind == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.ones((24, 4)))
        return buffer.getvalue()
    if kind == "zip":  # a zip archive holding something that is not an array
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr("X.npy", b"not an array")
            z.writestr("y.npy", b"nor this")
        return buffer.getvalue()
    return b""


TRAIN = ["--epochs", "1", "--hidden", "8", "--batch-size", "8", "--no-record-train"]


@given(content=files())
@fuzz(90)
def test_an_npz_trains_or_gets_one_clear_message(content, tmp_path_factory):
    tally.case(AREA)
    folder = tmp_path_factory.mktemp("npz")
    path = folder / "own data.npz"
    raw = content if isinstance(content, bytes) else _npz_bytes(content)
    path.write_bytes(raw)
    out = folder / "run"
    result = CliRunner().invoke(
        app, ["train", "--dataset", "npz", "--data-path", str(path), "--out", str(out), *TRAIN]
    )
    _clean(result)
    assert path.read_bytes() == raw  # the user's file is never changed
    text = " ".join(result.output.split())
    event("trained" if result.exit_code == 0 else "refused with a message")
    if result.exit_code == 0:
        run = Run.open(out)
        assert run.status == "complete"
    elif "training diverged" not in text:  # finite but huge inputs can make the loss NaN
        assert "own data.npz" in text, text  # the message names the file
        assert not out.exists()  # no half-written run


@given(found=arrays())
@fuzz(150)
def test_load_npz_accepts_only_what_training_can_use(found, tmp_path_factory):
    """What load_npz accepts is fit to train on: float32, finite, at least one feature,
    two or more classes, integer labels 0..C-1 with C no more than the examples."""
    tally.case(AREA)
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    path.write_bytes(_npz_bytes(found))
    try:
        d = load_npz(str(path), seed=0)
    except ValueError as err:
        assert str(path) in str(err)
        event("refused: " + str(err).split(": ", 1)[1][:40])
        return
    event("accepted")
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == np.float32 and np.isfinite(x).all()
        assert y.dtype == np.int64 and len(x) == len(y) and y.min() >= 0
        assert y.max() < d.n_classes
    assert len(d.x_train) > 0 and len(d.x_test) > 0 and d.x_train[0].size > 0
    assert d.x_test.shape[1:] == d.x_train.shape[1:]
    assert 2 <= d.n_classes <= len(d.y_train) + len(d.y_test)
