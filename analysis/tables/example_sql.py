"""The example table of a run as SQL over its files: `examples.example_table` (and, on a
text run, the dashboard's text kinds: ``plain`` and ``duplicate``, no label columns) written
as one SELECT for DuckDB, of the columns asked for only.

examples.parquet gives each example its kind; derived/scores.parquet, the held-out
estimate's columns and LiRA's ``vulnerability``, the k-NN agreement at the last embedded
layer and ``neurons_zeroed`` are left-joined by example_id where the verified manifest lists
them, each only when a column asked for is its own. With source ``train`` the trace scores
come from the training minibatches under the plain names
(`memdash.analysis.store.sources.select_source`). A float's NaN reads as NULL (as in
`memdash sql`), so that a range and a sort treat it as pandas does: outside every range,
last.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis.store import Run
from memdash.analysis.store.files import check_part
from memdash.analysis.store.layout import EXAMPLES_COLUMNS
from memdash.analysis.store.sources import SUFFIX, TRACE_SCORES, check_source
from memdash.analysis.tables.example_filter import check_columns
from memdash.analysis.tables.examples import COUNTERFACTUAL_COLUMNS, HELDOUT_COLUMNS
from memdash.analysis.tables.sql import _literal

EXTRA = "memdash_extra"  # the name a caller's extra columns are registered under
NO_LABELS = ("label", "true_label", "is_noisy")  # a text run's table drops them
KIND_SQL = (
    "CASE WHEN e.is_canary AND e.split = 'train' THEN 'canary' WHEN e.is_noisy THEN 'flipped' "
    "WHEN e.split = 'train' THEN 'clean' ELSE e.split END"
)
TEXT_KIND_SQL = (  # the dashboard's text kinds (`memdash.dashboard.data.run.text_kinds`)
    f"CASE WHEN e.split = 'train' AND e.corruption = 'duplicate' THEN 'duplicate' "
    f"WHEN ({KIND_SQL}) = 'clean' THEN 'plain' ELSE ({KIND_SQL}) END"
)


class ExampleTable:
    """The example table's files as SQL: per column, the file (relation) that holds it and
    its expression; `sql` selects some columns, joining only their relations."""

    def __init__(self, run: Run, source: str, extra: pd.DataFrame | None) -> None:
        check_source(source)
        file = run.path / "examples.parquet"
        check_part(run.path, file, EXAMPLES_COLUMNS, None)
        schema = pq.read_schema(file)
        text = run.is_text
        kept = [c for c in schema.names if c != "example_id" and not (text and c in NO_LABELS)]
        self.relations = [_read(file)]  # examples.parquet, then what is joined to it
        found = [("example_id", (0, "e.example_id"))]
        found += [("kind", (0, TEXT_KIND_SQL if text else KIND_SQL))]
        found += [(c, (0, _value(f"e.{quoted(c)}", schema.field(c).type))) for c in kept]
        for i, (relation, fields) in enumerate(_derived(run, extra), start=1):
            self.relations.append(relation)
            found += [
                (f.name, (i, _value(f"{_alias(i)}.{quoted(f.name)}", f.type)))
                for f in fields
                if f.name != "example_id"
            ]
        self.columns = _swapped(dict(found), source)

    def sql(self, columns: list[str] | None = None) -> str:
        """SELECT `columns` (all when None) FROM examples.parquet and the relations they
        need (per-example tables: a row per example at most, so the rows are the same)."""
        wanted = list(self.columns) if columns is None else list(columns)
        check_columns(wanted, self.columns, "example table")
        used = sorted({self.columns[c][0] for c in wanted} - {0})
        listed = ", ".join(f"{self.columns[c][1]} AS {quoted(c)}" for c in wanted)
        joins = [
            f"LEFT JOIN {self.relations[i]} AS {_alias(i)} ON {_alias(i)}.example_id = e.example_id"
            for i in used
        ]
        return f"SELECT {listed} FROM {' '.join([f'{self.relations[0]} AS e', *joins])}"

    def ranges(self, columns: list[str]) -> str:
        """A SELECT of one row: the min and max of each of `columns` (``lo_I``, ``hi_I``),
        each over the file that holds it (a per-example file's ids are examples: its values
        are the table's), so that no join is made."""
        out = []
        for i, relation in enumerate(self.relations):
            mine = [(j, c) for j, c in enumerate(columns) if self.columns[c][0] == i]
            if mine:
                listed = ", ".join(
                    f"min({self.columns[c][1]})::DOUBLE AS lo_{j}, "
                    f"max({self.columns[c][1]})::DOUBLE AS hi_{j}"
                    for j, c in mine
                )
                out.append(f"(SELECT {listed} FROM {relation} AS {_alias(i)})")
        return f"SELECT * FROM {', '.join(out) or '(SELECT 1)'}"


def _swapped(columns: dict[str, tuple[int, str]], source: str) -> dict[str, tuple[int, str]]:
    """With source ``train``, the ``_train`` trace scores under the plain names, in their
    place (`memdash.analysis.store.sources.select_source`); the columns as they are for
    ``eval``."""
    if source == "eval":
        return columns
    suffix = SUFFIX[source]
    present = {s for s in TRACE_SCORES if f"{s}{suffix}" in columns}
    out = {}
    for name, value in columns.items():
        if name.removesuffix(suffix) in present and name.endswith(suffix):
            continue
        out[name] = columns[name + suffix] if name in present else value
    return out


def _derived(run: Run, extra: pd.DataFrame | None) -> list[tuple[str, pa.Schema]]:
    """The relations `examples.example_table` joins, each as (SQL, its schema)."""
    manifest = run.derived_manifest()
    out = []

    def add(name: str, wanted: tuple[str, ...] | None = None) -> None:
        file = run.derived_path(name)
        schema = pq.read_schema(file)
        keep = [f for f in schema if wanted is None or f.name in ("example_id", *wanted)]
        listed = ", ".join(quoted(f.name) for f in keep)
        out.append((f"(SELECT {listed} FROM {_read(file)})", pa.schema(keep)))

    if "scores" in manifest:
        add("scores.parquet")
    if "heldout" in manifest:
        files = manifest["heldout"].get("files", [])
        text = "counterfactual.parquet" in files
        add(
            "counterfactual.parquet" if text else "heldout.parquet",
            COUNTERFACTUAL_COLUMNS if text else HELDOUT_COLUMNS,
        )
        if "membership.parquet" in files:
            add("membership.parquet", ("vulnerability",))
    if "knn" in manifest:
        file = run.derived_path("knn_examples.parquet")
        last = _last_layer(run, file)
        if last is not None:
            rows = (
                f"(SELECT example_id, knn_pred, agrees AS knn_agrees, knn_is_true FROM "
                f"{_read(file)} WHERE layer = {_literal(last)})"
            )
            kinds = pq.read_schema(file)
            fields = [kinds.field("example_id"), kinds.field("knn_pred")]
            fields += [pa.field("knn_agrees", kinds.field("agrees").type)]
            out.append((rows, pa.schema([*fields, kinds.field("knn_is_true")])))
    if "flipping" in manifest:
        add("localization.parquet", ("neurons_zeroed",))
    if extra is not None:
        if "example_id" not in extra.columns:
            raise ValueError(f"extra columns need example_id; got {list(extra.columns)}")
        out.append((EXTRA, pa.Schema.from_pandas(extra, preserve_index=False)))
    return out


def _last_layer(run: Run, file: Path) -> str | None:
    """The last embedded layer of derived/knn_examples.parquet (None when it has no rows)."""
    names = pq.read_table(file, columns=["layer"]).column("layer").unique().to_pylist()
    return run.in_layer_order(names)[-1] if names else None


def _value(expression: str, dtype: pa.DataType) -> str:
    """A column's expression, a float's NaN as NULL."""
    if pa.types.is_floating(dtype):
        return f"CASE WHEN isnan({expression}) THEN NULL ELSE {expression} END"
    return expression


def _alias(relation: int) -> str:
    return "e" if relation == 0 else f"d{relation}"


def quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _read(file: Path) -> str:
    return f"read_parquet({_literal(str(Path(file).resolve()))})"
