"""One filter's result set from each store, streamed into a Parquet snapshot of the same form.

Milvus is read with query_iterator in large batches (per partition when the result carries
`$partition`) and converted by `rows_to_table`, as export does. The shadow is read through ADBC
with the translated WHERE clause: psycopg.sql quotes the identifiers, and every value travels as a
typed Arrow parameter, never as SQL text. ADBC binds `$n` placeholders, so the translator's `%s`
placeholders are numbered here, and parameters get explicit Arrow types (an empty list has none to
infer); the translator wraps every parameter in a CAST, so PostgreSQL receives the type it expects.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import adbc_driver_manager
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.types.json import Jsonb

from milvusdiff.checks.stores import CheckStores, milvus_call
from milvusdiff.errors import CheckError
from milvusdiff.export.sources import tag_source
from milvusdiff.snapshot_format import FILTER_META, META_COLUMN, PARTITION_COLUMN
from milvusdiff.types.convert import rows_to_table, snapshot_schema
from milvusdiff.types.spec import META_FIELD, CollectionSpec
from milvusdiff.types.typemap import coerce_pg_column

_INT64 = range(-(2**63), 2**63)


def result_schema(view: CollectionSpec, with_partition: bool, source: str, expr: str) -> pa.Schema:
    """A snapshot schema (key and spec metadata) that also records the store and the filter."""
    schema = tag_source(snapshot_schema(view, with_partition=with_partition), source)
    return schema.with_metadata({**(schema.metadata or {}), FILTER_META: expr.encode()})


def write_snapshot(path: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> int:
    """Stream tables into one Parquet file with `schema`; returns the rows written (an empty result is a valid file)."""
    rows = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema) as writer:
        for table in tables:
            writer.write_table(table.replace_schema_metadata(schema.metadata))
            rows += table.num_rows
    return rows


def milvus_output_fields(view: CollectionSpec, full: bool) -> list[str]:
    if full:
        return ["*"]
    return [f.name for f in view.fields] + ([META_COLUMN] if view.enable_dynamic_field else [])


def milvus_result(
    stores: CheckStores, view: CollectionSpec, expr: str, *, full: bool, batch_size: int
) -> Iterator[pa.Table]:
    """The rows Milvus selects with `expr`, in snapshot form; strong consistency so every acknowledged write counts."""
    fields = milvus_output_fields(view, full)
    for partition in stores.partitions:
        iterator = milvus_call(
            "the query",
            stores.client.query_iterator,
            view.name,
            batch_size=batch_size,
            filter=expr,
            output_fields=fields,
            partition_names=[partition] if partition else None,
            consistency_level="Strong",
        )
        try:
            while rows := milvus_call("the query", iterator.next):
                yield rows_to_table(rows, view, partition=partition, with_partition=stores.with_partition)
        finally:
            iterator.close()


def shadow_result(
    stores: CheckStores, view: CollectionSpec, where: sql.Composable, params: list[object]
) -> Iterator[pa.Table]:
    """The shadow rows the translated WHERE clause selects, read as Arrow and coerced by the type map."""
    query = stores.shadow.render(stores.shadow.select_sql(view, _numbered(where)))
    schema = snapshot_schema(view, with_partition=stores.with_partition)
    fields = [*view.fields, *([META_FIELD] if view.enable_dynamic_field else [])]
    try:
        with stores.arrow_reader().cursor() as cursor:
            cursor.execute(query, parameters=arrow_parameters(params))
            for batch in cursor.fetch_record_batch():
                columns = [coerce_pg_column(batch.column(f.name), f) for f in fields]
                if stores.with_partition:
                    columns.append(batch.column(PARTITION_COLUMN).cast(pa.string()))
                yield pa.Table.from_arrays(columns, schema=schema)
    except adbc_driver_manager.Error as exc:
        raise CheckError(f"the shadow query of {view.name!r} failed: {str(exc).strip().splitlines()[0]}") from exc


def _numbered(where: sql.Composable) -> sql.Composable:
    """psycopg's `%s` placeholders as the `$1, $2, ...` that ADBC binds, in order."""
    if not isinstance(where, sql.Composed):
        return where
    counter = itertools.count(1)
    return sql.Composed([sql.SQL(f"${next(counter)}") if isinstance(p, sql.Placeholder) else p for p in where])


def arrow_parameters(params: list[object]) -> pa.RecordBatch | None:
    """Translator parameters as one Arrow row with explicit types: ADBC sends each with that type."""
    if not params:
        return None
    arrays = []
    for value in params:
        if isinstance(value, list):
            typed = [_typed(item) for item in value]
            types = {arrow_type for arrow_type, _ in typed}
            if len(types) == 1:
                element = types.pop()
                items = [item for _, item in typed]
            else:  # empty, or integers beyond int64 among others: text, which the CAST parses
                element, items = pa.string(), [str(item) for _, item in typed]
            arrays.append(pa.array([items], pa.list_(element)))
        else:
            arrow_type, item = _typed(value)
            arrays.append(pa.array([item], arrow_type))
    return pa.record_batch(arrays, names=[f"p{i}" for i in range(len(arrays))])


def _typed(value: Any) -> tuple[pa.DataType, Any]:
    if isinstance(value, Jsonb):
        return pa.string(), json.dumps(value.obj, ensure_ascii=False)
    if isinstance(value, bool):
        return pa.bool_(), value
    if isinstance(value, int):
        return (pa.int64(), value) if value in _INT64 else (pa.string(), str(value))
    if isinstance(value, float):
        return pa.float64(), value
    return pa.string(), str(value)
