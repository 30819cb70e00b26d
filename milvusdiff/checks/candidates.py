"""The brute force's candidate set: rows of the shadow snapshot that have a vector and pass the filter.

The filter is applied to the snapshot with the DuckDB translation (filters.to_duckdb), the same
semantics the shadow's PostgreSQL translation has, and the snapshot is streamed in record
batches so memory holds one block of vectors at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from milvusdiff.checks.stores import filter_columns
from milvusdiff.filters import to_duckdb
from milvusdiff.filters.to_duckdb import quote_ident
from milvusdiff.types.spec import CollectionSpec, FieldSpec

_LOOKUP_TABLE = "_milvusdiff_keys"


class Candidates:
    def __init__(
        self, con: duckdb.DuckDBPyConnection, snapshot: Path, spec: CollectionSpec, field: FieldSpec, expr: str | None
    ) -> None:
        """Translates `expr` first: a filter DuckDB cannot run raises FilterConversionError here."""
        self.con = con
        self.snapshot = str(snapshot)
        self.key = quote_ident(spec.primary.name)
        self.vector = quote_ident(field.name)
        if expr:
            where, self.params = to_duckdb(expr, filter_columns(spec), dynamic=spec.enable_dynamic_field)
            self.where = f"({where})"
        else:
            self.where, self.params = "TRUE", []

    def _select(self, condition: str) -> str:
        return f"SELECT {self.key}, {self.vector} FROM read_parquet(?) WHERE {self.vector} IS NOT NULL AND {condition}"

    def batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """(key, vector) batches of every candidate."""
        reader = self.con.sql(self._select(self.where), params=[self.snapshot, *self.params]).to_arrow_reader(rows)
        yield from reader

    def stored_keys(self) -> pa.Array:
        """Keys of every snapshot row with a vector (filter or not), in key order."""
        query = f"SELECT {self.key} FROM read_parquet(?) WHERE {self.vector} IS NOT NULL ORDER BY 1"
        return self.con.sql(query, params=[self.snapshot]).to_arrow_table().column(0).combine_chunks()

    def lookup(self, keys: Sequence[Any], *, filtered: bool) -> pa.Table:
        """(key, vector) of those `keys` that are candidates (`filtered`), or merely in the snapshot with a vector."""
        if not keys:
            return pa.table({"key": pa.array([], pa.null()), "vector": pa.array([], pa.null())})
        self.con.register(_LOOKUP_TABLE, pa.table({"k": list(keys)}))
        try:
            condition = f"{self.key} IN (SELECT k FROM {_LOOKUP_TABLE})"
            params: list[object] = [self.snapshot]
            if filtered:
                condition += f" AND {self.where}"
                params += self.params
            return self.con.sql(self._select(condition), params=params).to_arrow_table()
        finally:
            self.con.unregister(_LOOKUP_TABLE)
