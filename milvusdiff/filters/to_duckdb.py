"""Milvus filter -> DuckDB SQL over a Parquet snapshot.

Snapshot columns (docs/ARCHITECTURE.md): JSON and `$meta` are canonical JSON text, read with
DuckDB's json functions; ARRAY columns are lists. Identifiers are double-quoted (embedded quotes
doubled) and every value is a `?` placeholder with its value in the returned parameter list.
DuckDB cannot address two columns whose names differ only in letter case; a filter naming one
raises FilterConversionError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from milvusdiff.errors import FilterConversionError
from milvusdiff.filters import ast
from milvusdiff.filters.columns import META_COLUMN, ColumnResolver, ColumnType, Kind
from milvusdiff.filters.parser import parse
from milvusdiff.filters.sqlfrag import Frag, Ident, Param, join, param, sql
from milvusdiff.filters.translate import JSON_KINDS, Dialect, LiteralValue, Translator

_JSON_TYPES = {
    "number": "IN ('BIGINT', 'UBIGINT', 'DOUBLE')",
    "string": "= 'VARCHAR'",
    "boolean": "= 'BOOLEAN'",
    "array": "= 'ARRAY'",
}
_ELEMENT_VALUES = {
    "number": "CAST(el AS DOUBLE)",
    "string": "json_extract_string(el, '$')",
    "boolean": "CAST(el AS BOOLEAN)",
}


class DuckDBDialect(Dialect):
    types: ClassVar[dict[Kind, str]] = {
        Kind.INT: "BIGINT",
        Kind.FLOAT: "DOUBLE",
        Kind.STRING: "VARCHAR",
        Kind.BOOL: "BOOLEAN",
    }
    exact_int = "HUGEINT"

    def __init__(self, column_names: Iterable[str]) -> None:
        self.by_folded_name: dict[str, list[str]] = {}
        for name in (*column_names, META_COLUMN):
            self.by_folded_name.setdefault(name.lower(), []).append(name)

    def column(self, name: str, pos: int) -> Frag:
        # DuckDB matches identifiers case-insensitively, quoted or not, and renames the second of
        # two Parquet columns that differ only in case: neither can be addressed reliably.
        twins = [other for other in self.by_folded_name[name.lower()] if other != name]
        if twins:
            raise FilterConversionError(
                f"field {name!r} differs from {twins[0]!r} only in letter case, which DuckDB cannot tell apart",
                position=pos,
                construct="field",
            )
        return super().column(name, pos)

    def text_order(self, value: Frag) -> Frag:
        return value  # DuckDB's default collation is binary: UTF-8 byte order is code-point order

    def int_div(self, left: Frag, right: Frag) -> Frag:
        return sql("({} // {})", left, right)

    def int_mod(self, left: Frag, right: Frag) -> Frag:
        return sql("({} % {})", left, right)

    def array_index(self, column: Frag, index: int) -> Frag:
        return sql("list_extract({}, CAST({} AS BIGINT))", column, param(index + 1))

    def array_length(self, column: Frag) -> Frag:
        return sql("len({})", column)

    def member(self, value: Frag, array: Frag) -> Frag:
        # Not `= ANY(...)`: that is FALSE for a NULL list, and DuckDB plans it as a join that
        # evaluates `value` outside the CASE guarding its cast.
        return sql("list_contains({}, {})", array, value)

    def array_has(self, column: Frag, mode: str, values: Frag) -> Frag:
        return sql(f"list_has_{mode}({{}}, {{}})", column, values)

    def json_value(self, column: Frag, path: tuple[str | int, ...], pos: int) -> Frag:
        if not path:
            return sql("CAST({} AS JSON)", column)
        if "" in path:
            raise FilterConversionError(
                "an empty JSON key cannot be addressed in DuckDB", position=pos, construct="JSON path"
            )
        # A quoted key only matches objects and [n] only arrays, as Milvus paths do.
        steps = (f"[{step}]" if isinstance(step, int) else '."' + _escape_key(step) + '"' for step in path)
        return sql("json_extract({}, CAST({} AS VARCHAR))", column, param("$" + "".join(steps)))

    def json_is(self, value: Frag, json_type: str) -> Frag:
        return sql(f"(json_type({{}}) {_JSON_TYPES[json_type]})", value)

    def json_missing(self, value: Frag) -> Frag:
        return sql("(COALESCE(json_type({}), 'NULL') = 'NULL')", value)

    def json_number(self, value: Frag) -> Frag:
        return sql("CAST({} AS DOUBLE)", value)

    def json_string(self, value: Frag) -> Frag:
        return sql("json_extract_string({}, '$')", value)

    def json_bool(self, value: Frag) -> Frag:
        return sql("CAST({} AS BOOLEAN)", value)

    def json_array_length(self, value: Frag) -> Frag:
        return sql("json_array_length({})", value)

    def json_contains(self, value: Frag, groups: dict[str, list[LiteralValue]], mode: str) -> Frag:
        # DuckDB's json_contains tells 1 from 1.0, so compare typed element lists instead: one
        # list per JSON type, other elements mapped to NULL (which equals nothing).
        elements = sql("json_extract({}, '$[*]')", value)
        tests = [self.json_is(value, "array")] if mode == "all" else []
        for json_type, group in groups.items():
            kind = JSON_KINDS[json_type]
            values = [float(v) for v in group] if kind is Kind.FLOAT else group
            typed = sql(
                f"list_transform({{}}, lambda el: CASE WHEN json_type(el) {_JSON_TYPES[json_type]}"
                f" THEN {_ELEMENT_VALUES[json_type]} END)",
                elements,
            )
            tests.append(sql(f"list_has_{mode}({{}}, {{}})", typed, self.cast(param(values), kind, array=True)))
        return sql("({})", join(" AND " if mode == "all" else " OR ", tests)) if tests else sql("FALSE")


def _escape_key(key: str) -> str:
    return key.replace("\\", "\\\\").replace('"', '\\"')


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def to_duckdb(
    node_or_expr: ast.Node | str, columns: Mapping[str, ColumnType], *, dynamic: bool = False
) -> tuple[str, list[object]]:
    """Translate a filter (text or parsed tree) into a DuckDB boolean expression and its parameters.

    `columns` maps field names to Milvus type names (`("ARRAY", element)` for arrays); `dynamic`
    says whether names outside it are keys of the `$meta` JSON column.
    """
    node = parse(node_or_expr) if isinstance(node_or_expr, str) else node_or_expr
    frag = Translator(DuckDBDialect(columns), ColumnResolver(columns, dynamic=dynamic)).predicate(node)
    text: list[str] = []
    params: list[object] = []
    for part in frag.parts:
        if isinstance(part, Ident):
            text.append(quote_ident(part.name))
        elif isinstance(part, Param):
            text.append("?")
            params.append(part.value)
        else:
            text.append(part)
    return "".join(text), params
