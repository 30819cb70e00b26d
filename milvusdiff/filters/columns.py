"""The column resolver: what a name in a filter denotes in a given collection schema.

Built from a CollectionSpec-like mapping {field name: Milvus type name}, with `("ARRAY", element)`
for ARRAY fields, plus whether the dynamic field is on. A name the schema lacks is then a key of
the dynamic field (the `$meta` JSON column), as Milvus reads it; without a dynamic field it is an
error. Types a filter cannot use (vectors, GEOMETRY, TIMESTAMPTZ, anything unknown) are accepted in
the mapping and rejected only when a filter refers to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from milvusdiff.errors import FilterConversionError
from milvusdiff.filters import ast
from milvusdiff.snapshot_format import META_COLUMN


class Kind(Enum):
    """Value kinds a filter computes with; INT and FLOAT cover all Milvus integer/float widths."""

    INT = "integer"
    FLOAT = "float"
    STRING = "string"
    BOOL = "boolean"
    JSON = "JSON"
    ARRAY = "array"


_SCALAR_KINDS = {
    "BOOL": Kind.BOOL,
    "INT8": Kind.INT,
    "INT16": Kind.INT,
    "INT32": Kind.INT,
    "INT64": Kind.INT,
    "FLOAT": Kind.FLOAT,
    "DOUBLE": Kind.FLOAT,
    "VARCHAR": Kind.STRING,
    "TEXT": Kind.STRING,
    "JSON": Kind.JSON,
}

ColumnType = str | tuple[str, str]


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    kind: Kind | None  # None: a type filters cannot use
    element: Kind | None = None  # ARRAY element kind


@dataclass(frozen=True)
class Resolved:
    """A Ref bound to a column: for JSON (and dynamic) columns `path` walks into the document;
    for an ARRAY it is empty or a single element index."""

    column: Column
    path: tuple[str | int, ...]
    dynamic: bool


class ColumnResolver:
    def __init__(self, columns: Mapping[str, ColumnType], *, dynamic: bool) -> None:
        self.columns = {name: _column(name, spec) for name, spec in columns.items()}
        self.dynamic = dynamic

    def resolve(self, ref: ast.Ref) -> Resolved:
        if ref.name == META_COLUMN or ref.name not in self.columns:
            if not self.dynamic:
                what = "$meta" if ref.name == META_COLUMN else f"field {ref.name!r}"
                raise FilterConversionError(
                    f"unknown {what}: the collection has no such field and no dynamic field",
                    position=ref.pos,
                    construct="field",
                )
            path = ref.path if ref.name == META_COLUMN else (ref.name, *ref.path)
            return Resolved(Column(META_COLUMN, "JSON", Kind.JSON), path, dynamic=True)
        column = self.columns[ref.name]
        if column.kind is None:
            raise FilterConversionError(
                f"field {ref.name!r} has type {column.type_name}, which filters cannot use",
                position=ref.pos,
                construct="field",
            )
        if column.kind is Kind.ARRAY and ref.path and (len(ref.path) > 1 or not isinstance(ref.path[0], int)):
            raise FilterConversionError(
                f"ARRAY field {ref.name!r} takes a single integer index, as in {ref.name}[0]",
                position=ref.pos,
                construct="subscript",
            )
        if column.kind not in (Kind.ARRAY, Kind.JSON) and ref.path:
            raise FilterConversionError(
                f"field {ref.name!r} of type {column.type_name} cannot be subscripted",
                position=ref.pos,
                construct="subscript",
            )
        return Resolved(column, ref.path, dynamic=False)


def _column(name: str, spec: ColumnType) -> Column:
    if isinstance(spec, tuple):
        type_name, element_name = (part.upper() for part in spec)
        element = _SCALAR_KINDS.get(element_name)
        usable = type_name == "ARRAY" and element not in (None, Kind.JSON)
        return Column(name, f"{type_name}({element_name})", Kind.ARRAY if usable else None, element if usable else None)
    type_name = spec.upper()
    return Column(name, type_name, _SCALAR_KINDS.get(type_name))
