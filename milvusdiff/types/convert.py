"""Rows as pymilvus takes and returns them (a list of dicts) -> one Arrow table in snapshot form.

The same conversion serves the ShadowClient (rows being written) and the Milvus export (rows read
back by query_iterator), so a value written and the same value read back land in identical Arrow
form. Work is per column: one list of values per field, converted by the type map in one call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from milvusdiff.snapshot_format import KEY_META, META_COLUMN, PARTITION_COLUMN, SPEC_META, TYPE_META, format_metadata
from milvusdiff.types.canonical import canonical_json
from milvusdiff.types.spec import CollectionSpec, FieldSpec
from milvusdiff.types.typemap import arrow_field, rule

_EMPTY_JSON = canonical_json({})


def snapshot_schema(spec: CollectionSpec, *, with_partition: bool = False) -> pa.Schema:
    """Columns of a snapshot of this collection, with the key and the spec in the schema metadata."""
    fields = [arrow_field(f) for f in spec.fields]
    if spec.enable_dynamic_field:
        fields.append(pa.field(META_COLUMN, pa.string(), metadata={TYPE_META: b"JSON"}))
    if with_partition:
        fields.append(pa.field(PARTITION_COLUMN, pa.string()))
    metadata = {
        KEY_META: json.dumps([spec.primary.name]).encode(),
        SPEC_META: spec.to_json().encode(),
        **format_metadata(),
    }
    return pa.schema(fields, metadata=metadata)


def _with_default(values: list[Any], field: FieldSpec) -> list[Any]:
    """Milvus fills a field's default where a row leaves it out or gives None; so does the shadow."""
    if field.default_value is None:
        return values
    default = field.default_value
    return [default if v is None else v for v in values]


def _dynamic_values(rows: Sequence[Mapping[str, Any]], declared: set[str]) -> list[str]:
    out = []
    for row in rows:
        if not row.keys() - declared:  # the common case: no dynamic keys, no json.dumps per row
            out.append(_EMPTY_JSON)
            continue
        extra = {k: v for k, v in row.items() if k not in declared and k != META_COLUMN}
        nested = row.get(META_COLUMN)
        if isinstance(nested, Mapping):
            extra = {**nested, **extra}
        out.append(canonical_json(extra))
    return out


def rows_to_table(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    spec: CollectionSpec,
    *,
    partition: str | None = None,
    with_partition: bool = False,
) -> pa.Table:
    """Convert rows to the snapshot form; missing fields are null (or their default)."""
    if isinstance(rows, Mapping):
        rows = [rows]
    schema = snapshot_schema(spec, with_partition=with_partition)
    columns: list[pa.Array] = []
    for field in spec.fields:
        values = _with_default([row.get(field.name) for row in rows], field)
        try:
            columns.append(rule(field).from_python(values, field))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"field {field.name!r} ({field.type}): {exc}") from exc
    if spec.enable_dynamic_field:
        columns.append(pa.array(_dynamic_values(rows, set(spec.field_names())), pa.string()))
    if with_partition:
        columns.append(pa.array([partition] * len(rows), pa.string()))
    return pa.Table.from_arrays(columns, schema=schema)


def table_to_rows(table: pa.Table, spec: CollectionSpec) -> list[dict[str, Any]]:
    """The inverse of rows_to_table: rows pymilvus accepts, for writing snapshot rows back (repair).

    Meant for the few rows being repaired, not whole collections.
    """
    columns: dict[str, list[Any]] = {}
    for field in spec.fields:
        if field.name in table.column_names:
            columns[field.name] = rule(field).to_milvus(table.column(field.name).combine_chunks(), field)
    rows = (
        [dict(zip(columns, values, strict=False)) for values in zip(*columns.values(), strict=False)] if columns else []
    )
    if spec.enable_dynamic_field and META_COLUMN in table.column_names:
        for row, meta in zip(rows, table.column(META_COLUMN).to_pylist(), strict=False):
            row.update(json.loads(meta) if meta else {})
    return rows


def iter_tables(
    batches: Iterable[Sequence[Mapping[str, Any]]], spec: CollectionSpec, *, partition: str | None = None
) -> Iterable[pa.Table]:
    """Convert a stream of row batches (e.g. from query_iterator), one table per batch."""
    with_partition = partition is not None
    for batch in batches:
        if batch:
            yield rows_to_table(batch, spec, partition=partition, with_partition=with_partition)
