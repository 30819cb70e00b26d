"""Translation without a database: type errors point at their construct, values never reach SQL text."""

from __future__ import annotations

import pytest

from milvusdiff.errors import FilterConversionError
from milvusdiff.filters import parse, to_duckdb, to_postgres
from milvusdiff.filters.ast import Compare, IntLit, Ref

COLUMNS = {
    "i32": "INT32",
    "f": "FLOAT",
    "b": "BOOL",
    "s": "VARCHAR",
    "j": "JSON",
    "ai": ("ARRAY", "INT64"),
    "v": "FLOAT_VECTOR",
    "g": "GEOMETRY",
    "odd": ("ARRAY", "JSON"),
}
TRANSLATORS = [pytest.param(to_postgres, id="postgres"), pytest.param(to_duckdb, id="duckdb")]

ERRORS = [
    # (expression, dynamic field on, error position, construct)
    ("i32", True, 0, "boolean expression"),
    ("i32 and b", True, 0, "boolean expression"),
    ("b or s", True, 5, "boolean expression"),
    ("not i32", True, 4, "boolean expression"),
    ("dn", True, 0, "boolean expression"),
    ("s > 1", True, 2, "comparison"),
    ("b == 1", True, 2, "comparison"),
    ("i32 == true", True, 4, "comparison"),
    ("ai == 1", True, 3, "comparison"),
    ('j["a"] == dn', True, 7, "comparison"),
    ('j["a"] < ai', True, 7, "comparison"),
    ("j == 1", True, 0, "JSON field"),
    ("1 < j", True, 4, "JSON field"),
    ("j in [1]", True, 0, "JSON field"),
    ('j like "a%"', True, 0, "JSON field"),
    ("b + 1 > 0", True, 0, "arithmetic"),
    ("1 - s < 0", True, 4, "arithmetic"),
    ("-ai > 0", True, 1, "arithmetic"),
    ("f % 2 == 0", True, 2, "%"),
    ("dn % 2 == 1", True, 3, "%"),
    ('i32 in [1, "a"]', True, 11, "list item"),
    ("i32 in [1, [2]]", True, 11, "list literal"),
    ("ai in [1]", True, 3, "in"),
    ('i32 like "a%"', True, 4, "like"),
    ('s like "a\\\\"', True, 2, "like pattern"),
    ("json_contains(j, [1, 2])", True, 17, "contains"),
    ("json_contains_all(j, [[1]])", True, 22, "list literal"),
    ('array_contains(ai, "x")', True, 19, "list item"),
    ("array_contains(i32, 1)", True, 15, "contains"),
    ("array_contains(dn, [1])", True, 19, "contains"),
    ("array_length(s) > 1", True, 13, "array_length"),
    ("v == 1", True, 0, "field"),
    ('g == "POINT (0 0)"', True, 0, "field"),
    ("odd is null", True, 0, "field"),
    ("zz == 1", False, 0, "field"),
    ('$meta["x"] == 1', False, 0, "field"),
    ("i32[0] == 1", True, 0, "subscript"),
    ('s["k"] == 1', True, 0, "subscript"),
    ('ai["x"] == 1', True, 0, "subscript"),
    ("ai[0][1] == 1", True, 0, "subscript"),
    ("x == [1]", True, 5, "list literal"),
]


@pytest.mark.parametrize("translate", TRANSLATORS)
@pytest.mark.parametrize(("expr", "dynamic", "position", "construct"), ERRORS, ids=[e[0] for e in ERRORS])
def test_untranslatable_filters_raise_with_position_and_construct(translate, expr, dynamic, position, construct):
    with pytest.raises(FilterConversionError) as caught:
        translate(expr, COLUMNS, dynamic=dynamic)
    assert (caught.value.position, caught.value.construct) == (position, construct)


def test_duckdb_cannot_address_an_empty_json_key_but_postgres_can():
    assert "" in to_postgres('j[""] == 1', COLUMNS)[1]
    with pytest.raises(FilterConversionError) as caught:
        to_duckdb('j[""] == 1', COLUMNS)
    assert (caught.value.position, caught.value.construct) == (0, "JSON path")


HOSTILE = [
    ("s", "x'; drop table t; --"),
    ("s", '"); drop table t; --'),
    ("s", "%s %(x)s $1 ? :x"),
    ("s", "\\'; select 1; --"),
    ("s", "O'Reilly"),
]


@pytest.mark.parametrize(("field", "value"), HOSTILE)
def test_literal_values_only_travel_as_parameters(field, value):
    expr = f"{field} == {value!r} or {field} like {value!r} or json_contains(j, {value!r})"
    where, pg_params = to_postgres(expr, COLUMNS)
    text, duck_params = to_duckdb(expr, COLUMNS)
    pg_text = where.as_string()
    for marker in ("drop", "select", "Reilly", "$1"):
        assert marker not in pg_text and marker not in text
    assert pg_text.count("%s") == len(pg_params) and text.count("?") == len(duck_params)
    assert value in pg_params and value in duck_params


def test_identifiers_are_quoted_whatever_their_spelling():
    columns = {"order": "INT64", "CamelCase": "INT64", 'we"ird': "INT64"}
    node = Compare("==", Ref('we"ird'), IntLit(1))
    assert to_duckdb(node, columns)[0] == '("we""ird" = CAST(? AS BIGINT))'
    assert to_postgres(node, columns)[0].as_string() == '("we""ird" = CAST(%s AS bigint))'
    text, _ = to_duckdb("order == 1 and CamelCase == 2", columns)
    assert '"order"' in text and '"CamelCase"' in text


def test_a_parsed_tree_translates_like_its_text():
    expr = 'i32 > 1 and j["a"][0] in [1, "x"] or array_contains_any(ai, [1, 2])'
    assert to_duckdb(parse(expr), COLUMNS, dynamic=True) == to_duckdb(expr, COLUMNS, dynamic=True)
    pg_from_tree, pg_from_text = to_postgres(parse(expr), COLUMNS), to_postgres(expr, COLUMNS)
    assert (pg_from_tree[0].as_string(), pg_from_tree[1]) == (pg_from_text[0].as_string(), pg_from_text[1])
