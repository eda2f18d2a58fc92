"""The schema of run.json (docs/run-format.md): every key memdash reads, its type and range.

`Run.open` checks a run's run.json against `RUN_JSON` (`checks.read_run_json`) and
`RunWriter.create` checks the one it is about to write, so a run whose run.json holds a
wrong type (``"last_epoch": [0.5]``, ``config.data`` a string) or a value out of range (a
negative ``epochs_completed``) is refused where it is opened, with a message naming the key,
never deep inside a page or a command. Keys the schema does not name are left alone (a
user's own loop stores its own ``config``); the ones it names must have its types.

The schema is written by hand as data: a `Value` per key says which JSON kinds it may take
and, per kind, its range, its choices or what its items and keys must be.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from memdash.analysis.store.inputs import FILES, FORMS, SOURCE_KINDS
from memdash.analysis.store.layout import PLAIN_NAME, STATUSES

MAX_EPOCHS = 1_000_000  # no run trains longer; a larger count is damage, not a run
# JSON kinds by the names messages use
KINDS = ("int", "number", "string", "bool", "list", "object", "null")


@dataclass(frozen=True)
class Value:
    """What one JSON value must be.

    Parameters
    ----------
    kinds : the JSON kinds it may take, of KINDS (``number`` takes an int too; ``int`` and
        ``number`` never take true or false)
    low, high : numbers: the range, inclusive unless `open_low` / `open_high`
    choices : strings: the values allowed
    name_like : strings: a plain file name (letters, digits, ``_ . -``)
    timestamp : strings: an ISO 8601 time
    nonempty : strings: not ``""``
    items : lists: what every item must be
    keys : objects: the keys it knows, each with what its value must be
    required : objects: the keys that must be present
    other : objects: what the value of a key it does not know must be (None: anything)
    """

    kinds: tuple[str, ...]
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()
    name_like: bool = False
    timestamp: bool = False
    nonempty: bool = False
    items: Value | None = None
    keys: Mapping[str, Value] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    other: Value | None = None


def _int(low: int = 0, *, high: int | None = None, null: bool = False) -> Value:
    return Value(("int", "null") if null else ("int",), low=low, high=high)


def _number(low: float | None, high: float | None = None, **options: bool) -> Value:
    return Value(("number",), low=low, high=high, **options)


def _string(*choices: str, null: bool = False, **options: bool) -> Value:
    return Value(("string", "null") if null else ("string",), choices=choices, **options)


def _list(items: Value, *, null: bool = False) -> Value:
    return Value(("list", "null") if null else ("list",), items=items)


def _object(keys: Mapping[str, Value], *, required: tuple[str, ...] = (), other=None) -> Value:
    return Value(("object",), keys=keys, required=required, other=other)


BOOL = Value(("bool",))
SHARE = _number(0.0, 1.0)  # an accuracy, a fraction of examples
EPOCH = _int(0, high=MAX_EPOCHS)
DELTA = _number(0.0, 1.0, open_low=True, open_high=True)  # DP's delta
ACCURACIES = _object(
    {f"{group}_acc": SHARE for group in ("train", "clean", "noisy", "test")},
    other=Value(("number",)),
)

# config: what `memdash train` stores (record/config.py's RunConfig); an own loop's config
# may hold other keys, but these sections and their fields, when present, are memdash's
DATA = _object(
    {
        "dataset": _string(),
        "path": _string(null=True),
        "image_size": _list(_int(1), null=True),
        "image_column": _string(),
        "label_column": _string(),
        "test_fraction": _number(0.0, 1.0, open_low=True, open_high=True),
        "n_examples": _int(1, null=True),
        "shape": _list(_int(1)),
        "n_classes": _int(1),
        "corruption": _string(),
        "noise": SHARE,
        "canaries": _int(0),
        "canary_repeats": _list(_int(1)),
        "reference_canaries": _int(0),
        "seed": _int(0, null=True),
        "text_corpus": _string(),
        "text_column": _string(null=True),
        "seq_len": _int(1),
        "chunking": _string(),
        "tokenizer": _string(),
        "vocab_size": _int(1),
        "canary_format": _string(),
        "duplicate_sequences": _int(0),
        "duplicate_counts": _list(_int(1)),
        "prefix_len": _int(1),
        "suffix_len": _int(1),
    }
)
MODEL = _object(
    {
        "name": _string(),
        "hidden": _list(_int(1)),
        "channels": _list(_int(1)),
        "width": _int(1),
        "dropout": _number(0.0, 1.0, open_high=True),
        "example_tied_dropout": BOOL,
        "p_fixed": SHARE,
        "p_mem": SHARE,
        "n_layers": _int(1),
        "n_heads": _int(1),
        "context": _int(0),
        "model_path": _string(null=True),
    }
)
TRAIN = _object(
    {
        "epochs": EPOCH,
        "batch_size": _int(1),
        "optimizer": _string(),
        "lr": _number(0.0, open_low=True),
        "momentum": SHARE,
        "weight_decay": _number(0.0),
        "device": _string(),
        "init_from": _string(null=True),
        "init_epoch": _int(0, null=True),
        "reinit": _list(_string()),
        # DP-SGD's options (record/dp.py); null for a plain run
        "dp": Value(
            ("object", "null"),
            keys={
                "epsilon": Value(("number", "null"), low=0.0, open_low=True),
                "delta": DELTA,
                "clip": _number(0.0, open_low=True),
                "noise_multiplier": Value(("number", "null"), low=0.0),
            },
        ),
    }
)
RECORD = _object(
    {
        "record_train": BOOL,
        "grad_accounting": Value(("bool", "null")),
        "embed_layers": _list(_string(name_like=True)),
        "embed_epochs": _list(EPOCH),
        "checkpoint_epochs": _list(EPOCH),
        "embed_dtype": _string("float16", "float32"),
        "eval_batch_size": _int(1),
        "loss_sensitivity": BOOL,
        "critical_examples": _int(0),
        "critical_radius": _number(0.0),
        "critical_steps": _int(0),
        "curvature": BOOL,
        "curvature_directions": _int(1),
        "curvature_step": _number(0.0, open_low=True),
        "embed_pool": _string("last", "mean"),
        "store_inputs": _string("auto", *FORMS),
    }
)
CONFIG = _object(
    {
        "data": DATA,
        "model": MODEL,
        "train": TRAIN,
        "record": RECORD,
        "seed": _int(0),
        "command": _string(),
    }
)
RUN_JSON = _object(
    {
        "schema_version": _int(1),
        "name": _string(nonempty=True),
        "status": _string(*STATUSES),
        "epochs_completed": EPOCH,
        "config": CONFIG,
        "created_at": _string(timestamp=True),
        "memdash_version": _string(),
        "epochs_planned": EPOCH,
        "n_classes": _int(1),
        "layers": _list(_string()),
        "last_epoch": _object({"epoch": EPOCH, **ACCURACIES.keys}, other=Value(("number",))),
        "updated_at": _string(timestamp=True),
        "error": _string(),
        "estimate_only": BOOL,
        "modality": _string("text"),
        "text": _object(
            {
                "tokenizer": _string("byte", "bpe", "hf"),
                "vocab_size": _int(1),
                "bos_id": _int(0),
                "entropy_bits": Value(("number", "null"), low=0.0),
            }
        ),
        "example_tied_dropout": _object({"keep": ACCURACIES, "drop": ACCURACIES}),
        # a DP run: the accountant's epsilon spent so far (null: no noise, no bound), its delta
        "dp_epsilon": Value(("number", "null"), low=0.0),
        "dp_delta": DELTA,
        "init_from": _object(
            {"run": _string(), "name": _string(), "epoch": EPOCH, "reinit": _list(_string())},
            required=("run", "epoch"),
        ),
        # inputs stored other than in full (store/inputs.py): their form and how to read them
        "inputs": _object(
            {
                "form": _string(*FORMS),
                "file": _string(*FILES.values()),
                "shape": _list(_int(1)),
                "thumbnail_shape": _list(_int(1)),
                "scale": _number(0.0, open_low=True),
                "offset": Value(("number",)),
                "root": _string(),
                "source": _string(*SOURCE_KINDS),
                "column": _string(),
            },
            required=("form", "file"),
        ),
        # seconds per part of an epoch summed over the epochs so far (record/timing.py)
        "timing": _object({}, other=_number(0.0)),
    },
    required=(
        "schema_version",
        "name",
        "status",
        "epochs_completed",
        "config",
        "created_at",
        "memdash_version",
    ),
)


def problem(value: Any, spec: Value = RUN_JSON, key: str = "") -> str | None:
    """The first way `value` breaks `spec`, as a message naming the dotted key (``key
    'config.data' must be object, got 'digits'``); None when it fits."""
    kind = kind_of(value)
    if kind not in spec.kinds and not (kind == "int" and "number" in spec.kinds):
        return f"key {key!r} must be {' or '.join(spec.kinds)}, got {_shown(value)}"
    if kind in ("int", "number"):
        return _range_problem(value, spec, key)
    if kind == "string":
        return _string_problem(value, spec, key)
    if kind == "list" and spec.items is not None:
        for i, item in enumerate(value):
            found = problem(item, spec.items, f"{key}[{i}]")
            if found:
                return found
    if kind == "object":
        return _object_problem(value, spec, key)
    return None


def kind_of(value: Any) -> str:
    """The JSON kind of a value read by `json.loads`, by the names of KINDS."""
    kinds = {bool: "bool", int: "int", float: "number", str: "string", list: "list", tuple: "list"}
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    return kinds.get(type(value), type(value).__name__)


def _range_problem(value: float, spec: Value, key: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"key {key!r} must be a finite number, got {value!r}"
    low, high = spec.low, spec.high
    if low is not None and high is not None:
        inside = (low < value if spec.open_low else low <= value) and (
            value < high if spec.open_high else value <= high
        )
        if not inside:
            brackets = ("(" if spec.open_low else "[", ")" if spec.open_high else "]")
            return (
                f"key {key!r} must lie in {brackets[0]}{_num(low)}, {_num(high)}{brackets[1]}, "
                f"got {value!r}"
            )
    elif low is not None and (value <= low if spec.open_low else value < low):
        return f"key {key!r} must be {'>' if spec.open_low else '>='} {_num(low)}, got {value!r}"
    elif high is not None and value > high:
        return f"key {key!r} must be <= {_num(high)}, got {value!r}"
    return None


def _string_problem(value: str, spec: Value, key: str) -> str | None:
    leaf = key.rsplit(".", 1)[-1]
    if spec.choices and value not in spec.choices:
        return f"key {key!r}: unknown {leaf} {value!r}; expected one of {', '.join(spec.choices)}"
    if spec.nonempty and not value:
        return f"key {key!r} must not be empty"
    if spec.name_like and not PLAIN_NAME.match(value):
        return (
            f"key {key!r} must be a plain file name (letters, digits, _ . -), got {_shown(value)}"
        )
    if spec.timestamp:
        try:
            _dt.datetime.fromisoformat(value)
        except ValueError:
            return f"key {key!r} must be an ISO 8601 time, got {_shown(value)}"
    return None


def _object_problem(value: dict[str, Any], spec: Value, key: str) -> str | None:
    prefix = f"{key}." if key else ""
    for name in spec.required:
        if name not in value:
            return f"missing key {prefix + name!r}"
    for name, item in value.items():
        inner = spec.keys.get(name, spec.other)
        found = problem(item, inner, prefix + name) if inner is not None else None
        if found:
            return found
    return None


def _num(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _shown(value: Any) -> str:
    """A value as a message quotes it, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
