"""Pick the rows of a Parquet dataset whose key is in a (small) set of keys, keeping their exact Arrow types.

Digests are computed from exact bits, so the rows must come back exactly as stored: pyarrow's
dataset scan with a pushed-down filter does that, where an engine round trip could change types.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds


def key_filter(dataset: ds.Dataset, names: list[str], keys: pa.Table) -> ds.Expression:
    """A superset filter (each key column in its value set), pushed down into the Parquet scan."""
    expr: ds.Expression | None = None
    for name, column in zip(names, keys.columns, strict=True):
        values = pc.unique(column.combine_chunks()).cast(dataset.schema.field(name).type)
        term = pc.field(name).isin(values)
        expr = term if expr is None else expr & term
    assert expr is not None
    return expr


def select_keys(table: pa.Table, names: list[str], keys: pa.Table) -> pa.Table:
    """Rows of `table` whose key (columns `names`) is in `keys` (columns named after the plan)."""
    probe = (
        table.select(names)
        .rename_columns(keys.column_names)
        .append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    )
    probe = probe.cast(pa.schema([*keys.schema, pa.field("__row", pa.int64())]))
    hits = probe.join(keys, keys=keys.column_names, join_type="inner").column("__row")
    return table.take(hits.combine_chunks().sort())


def fetch_rows(files: list[str], names: list[str], keys: pa.Table, columns: list[str] | None = None) -> pa.Table:
    """Rows of the Parquet files whose key columns `names` match a row of `keys`: `columns` (default all)."""
    dataset = ds.dataset(files, format="parquet")
    table = dataset.to_table(columns=columns, filter=key_filter(dataset, names, keys))
    return select_keys(table, names, keys)
