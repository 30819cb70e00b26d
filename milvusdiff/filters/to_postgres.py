"""Milvus filter -> PostgreSQL WHERE clause over the shadow table.

Shadow columns (docs/ARCHITECTURE.md): scalars in native types, VARCHAR as text, JSON and `$meta`
as jsonb, ARRAY as typed arrays. Identifiers become psycopg.sql.Identifier and every value a `%s`
placeholder with its value in the returned parameter list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

from milvusdiff.filters import ast
from milvusdiff.filters.columns import ColumnResolver, ColumnType, Kind
from milvusdiff.filters.parser import parse
from milvusdiff.filters.sqlfrag import Frag, Ident, Param, param, sql
from milvusdiff.filters.translate import Dialect, LiteralValue, Translator


class PostgresDialect(Dialect):
    types: ClassVar[dict[Kind, str]] = {
        Kind.INT: "bigint",
        Kind.FLOAT: "double precision",
        Kind.STRING: "text",
        Kind.BOOL: "boolean",
    }
    exact_int = "numeric"

    def text_order(self, value: Frag) -> Frag:
        return sql('({} COLLATE "C")', value)

    def int_div(self, left: Frag, right: Frag) -> Frag:
        return sql("div({}, {})", left, right)

    def int_mod(self, left: Frag, right: Frag) -> Frag:
        return sql("mod({}, {})", left, right)

    def array_index(self, column: Frag, index: int) -> Frag:
        return sql("({})[CAST({} AS integer)]", column, param(index + 1))

    def array_length(self, column: Frag) -> Frag:
        return sql("cardinality({})", column)

    def member(self, value: Frag, array: Frag) -> Frag:
        return sql("({} = ANY({}))", value, array)

    def array_has(self, column: Frag, mode: str, values: Frag) -> Frag:
        return sql("({} @> {})" if mode == "all" else "({} && {})", column, values)

    def json_value(self, column: Frag, path: tuple[str | int, ...], pos: int) -> Frag:
        # One `->` per step, typed, so a key only matches objects and an index only arrays
        # (`#>` would let "0" index an array).
        value = column
        for step in path:
            step_type = "text" if isinstance(step, str) else "integer"
            value = sql(f"({{}} -> CAST({{}} AS {step_type}))", value, param(step))
        return value

    def json_is(self, value: Frag, json_type: str) -> Frag:
        return sql(f"(jsonb_typeof({{}}) = '{json_type}')", value)

    def json_missing(self, value: Frag) -> Frag:
        return sql("(COALESCE(jsonb_typeof({}), 'null') = 'null')", value)

    def json_number(self, value: Frag) -> Frag:
        return sql("CAST({} AS double precision)", value)

    def json_string(self, value: Frag) -> Frag:
        return sql("({} #>> '{{}}')", value)

    def json_bool(self, value: Frag) -> Frag:
        return sql("CAST({} AS boolean)", value)

    def json_array_length(self, value: Frag) -> Frag:
        return sql("jsonb_array_length({})", value)

    def json_contains(self, value: Frag, groups: dict[str, list[LiteralValue]], mode: str) -> Frag:
        # jsonb containment matches top-level elements by JSON equality (1 = 1.0, "1" != 1).
        items = [item for group in groups.values() for item in group]
        if mode == "all":
            return sql("({} @> CAST({} AS jsonb))", value, param(Jsonb(items)))
        return sql("({} @> ANY(CAST({} AS jsonb[])))", value, param([Jsonb([item]) for item in items]))


def to_postgres(
    node_or_expr: ast.Node | str, columns: Mapping[str, ColumnType], *, dynamic: bool = False
) -> tuple[pgsql.Composable, list[object]]:
    """Translate a filter (text or parsed tree) into a WHERE clause and its parameters.

    `columns` maps field names to Milvus type names (`("ARRAY", element)` for arrays); `dynamic`
    says whether names outside it are keys of the `$meta` JSON column.
    """
    node = parse(node_or_expr) if isinstance(node_or_expr, str) else node_or_expr
    frag = Translator(PostgresDialect(), ColumnResolver(columns, dynamic=dynamic)).predicate(node)
    parts: list[pgsql.Composable] = []
    params: list[object] = []
    for part in frag.parts:
        if isinstance(part, Ident):
            parts.append(pgsql.Identifier(part.name))
        elif isinstance(part, Param):
            parts.append(pgsql.Placeholder())
            params.append(part.value)
        else:
            parts.append(pgsql.SQL(part))
    return pgsql.Composed(parts), params
