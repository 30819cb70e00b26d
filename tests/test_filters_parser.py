"""The filter parser on a corpus of valid expressions (tree shape) and invalid ones (error position)."""

from __future__ import annotations

import pytest

from milvusdiff.errors import FilterConversionError
from milvusdiff.filters import parse
from milvusdiff.filters.ast import (
    And,
    Arith,
    ArrayLength,
    BoolLit,
    Compare,
    Contains,
    FloatLit,
    In,
    IntLit,
    IsNull,
    Like,
    ListLit,
    Neg,
    Not,
    Or,
    Ref,
    StrLit,
)

x, y, z = Ref("x"), Ref("y"), Ref("z")


def eq(left, right):
    return Compare("==", left, right)


VALID = [
    # comparisons and literals
    ("x == 1", eq(x, IntLit(1))),
    ("x != -1", Compare("!=", x, IntLit(-1))),
    ("x <= 1.5", Compare("<=", x, FloatLit(1.5))),
    ("x > .5", Compare(">", x, FloatLit(0.5))),
    ("x >= 5.", Compare(">=", x, FloatLit(5.0))),
    ("x < 1e3", Compare("<", x, FloatLit(1000.0))),
    ("x < 2.5E-1", Compare("<", x, FloatLit(0.25))),
    ("x == 0x1F", eq(x, IntLit(31))),
    ("x == 0b101", eq(x, IntLit(5))),
    ("x == 017", eq(x, IntLit(15))),
    ("x == 0", eq(x, IntLit(0))),
    ("x == -9223372036854775808", eq(x, IntLit(-(2**63)))),
    ("x == 9223372036854775807", eq(x, IntLit(2**63 - 1))),
    ("x == - 5", eq(x, IntLit(-5))),
    ("x == +5", eq(x, IntLit(5))),
    ("x == - -5", eq(x, Neg(IntLit(-5)))),
    ("1 == x", eq(IntLit(1), x)),
    ("x == y", eq(x, y)),
    ("x == true", eq(x, BoolLit(True))),
    ("x == True", eq(x, BoolLit(True))),
    ("x == FALSE", eq(x, BoolLit(False))),
    ("x == tRuE", eq(x, Ref("tRuE"))),
    # strings and escapes
    ('s == "a"', eq(Ref("s"), StrLit("a"))),
    ("s == 'a'", eq(Ref("s"), StrLit("a"))),
    ('s == ""', eq(Ref("s"), StrLit(""))),
    (r's == "q\"uo\'te"', eq(Ref("s"), StrLit("q\"uo'te"))),
    (r"s == 'it\'s'", eq(Ref("s"), StrLit("it's"))),
    (r's == "\\\n\t\r\a\b\f\v\?"', eq(Ref("s"), StrLit("\\\n\t\r\a\b\f\v?"))),
    (r's == "\x41\101\u00e9\U0001F600"', eq(Ref("s"), StrLit("AAé😀"))),
    ('s == "x\'; drop table t; --"', eq(Ref("s"), StrLit("x'; drop table t; --"))),
    ('s == "é ☃"', eq(Ref("s"), StrLit("é ☃"))),
    (r's == r"a\b\"c"', eq(Ref("s"), StrLit(r"a\b\"c"))),
    (r"s == R'\d+'", eq(Ref("s"), StrLit(r"\d+"))),
    # boolean operators and precedence: not > and > or
    ("x == 1 and y == 2", And((eq(x, IntLit(1)), eq(y, IntLit(2))))),
    ("x == 1 AND y == 2 && z == 3", And((eq(x, IntLit(1)), eq(y, IntLit(2)), eq(z, IntLit(3))))),
    ("x == 1 or y == 2 || z == 3", Or((eq(x, IntLit(1)), eq(y, IntLit(2)), eq(z, IntLit(3))))),
    ("x == 1 or y == 2 and z == 3", Or((eq(x, IntLit(1)), And((eq(y, IntLit(2)), eq(z, IntLit(3))))))),
    ("x == 1 and y == 2 OR z == 3", Or((And((eq(x, IntLit(1)), eq(y, IntLit(2)))), eq(z, IntLit(3))))),
    ("(x == 1 or y == 2) and z == 3", And((Or((eq(x, IntLit(1)), eq(y, IntLit(2)))), eq(z, IntLit(3))))),
    ("not x == 1", Not(eq(x, IntLit(1)))),
    ("NOT x == 1 and y == 2", And((Not(eq(x, IntLit(1))), eq(y, IntLit(2))))),
    ("!(x == 1) || y", Or((Not(eq(x, IntLit(1))), y))),
    ("not not x", Not(Not(x))),
    ("((x))", x),
    ("true", BoolLit(True)),
    # chained range comparisons
    ("1 < x < 5", And((Compare("<", IntLit(1), x), Compare("<", x, IntLit(5))))),
    ("1 <= x < 5", And((Compare("<=", IntLit(1), x), Compare("<", x, IntLit(5))))),
    ("5 > x >= 1", And((Compare(">", IntLit(5), x), Compare(">=", x, IntLit(1))))),
    ('1 < m["a"] <= 2', And((Compare("<", IntLit(1), Ref("m", ("a",))), Compare("<=", Ref("m", ("a",)), IntLit(2))))),
    # arithmetic: * / % bind tighter than + -, left associative, unary minus tightest
    ("x + 1 == 2", eq(Arith("+", x, IntLit(1)), IntLit(2))),
    ("x + y * 2 == 3", eq(Arith("+", x, Arith("*", y, IntLit(2))), IntLit(3))),
    ("(x + y) * 2 == 3", eq(Arith("*", Arith("+", x, y), IntLit(2)), IntLit(3))),
    ("x - y - z == 0", eq(Arith("-", Arith("-", x, y), z), IntLit(0))),
    ("x / 2 % 3 == 1", eq(Arith("%", Arith("/", x, IntLit(2)), IntLit(3)), IntLit(1))),
    ("-x == 5", eq(Neg(x), IntLit(5))),
    ("x*-1 < 0", Compare("<", Arith("*", x, IntLit(-1)), IntLit(0))),
    ("x-1 < 0", Compare("<", Arith("-", x, IntLit(1)), IntLit(0))),
    # in / not in
    ("x in [1, 2, 3]", In(x, ListLit((IntLit(1), IntLit(2), IntLit(3))))),
    ("x IN [1, 2,]", In(x, ListLit((IntLit(1), IntLit(2))))),
    ("x not in []", In(x, ListLit(()), negated=True)),
    ('x NOT IN ["a", -1.5, false]', In(x, ListLit((StrLit("a"), FloatLit(-1.5), BoolLit(False))), negated=True)),
    ("not x in [1]", Not(In(x, ListLit((IntLit(1),))))),
    # like
    ('s like "ab%"', Like(Ref("s"), "ab%")),
    ('s LIKE "%a_b%"', Like(Ref("s"), "%a_b%")),
    (r's like "100\\%"', Like(Ref("s"), "100\\%")),
    # is null / exists
    ("x is null", IsNull(x)),
    ("x IS NOT NULL", IsNull(x, negated=True)),
    ('m["a"] is null and y is not null', And((IsNull(Ref("m", ("a",))), IsNull(y, negated=True)))),
    ('exists m["a"]', IsNull(Ref("m", ("a",)), negated=True)),
    # JSON paths, array indexes, dynamic fields
    ('meta["a"]["b"] == 1', eq(Ref("meta", ("a", "b")), IntLit(1))),
    ('meta["arr"][0] == 1', eq(Ref("meta", ("arr", 0)), IntLit(1))),
    ("meta['k'][10] == 1", eq(Ref("meta", ("k", 10)), IntLit(1))),
    ("arr[0] > 1", Compare(">", Ref("arr", (0,)), IntLit(1))),
    ('$meta["x"] == 1', eq(Ref("$meta", ("x",)), IntLit(1))),
    ('$meta["x"]["y"] == "z"', eq(Ref("$meta", ("x", "y")), StrLit("z"))),
    ("_private == 1", eq(Ref("_private"), IntLit(1))),
    # functions
    ('json_contains(meta["tags"], "x")', Contains("one", Ref("meta", ("tags",)), StrLit("x"))),
    ("JSON_CONTAINS(m, 1)", Contains("one", Ref("m"), IntLit(1))),
    ('json_contains_all(m["t"], [1, "a"])', Contains("all", Ref("m", ("t",)), ListLit((IntLit(1), StrLit("a"))))),
    ("json_contains_any(m, [])", Contains("any", Ref("m"), ListLit(()))),
    ("array_contains(arr, -1)", Contains("one", Ref("arr"), IntLit(-1))),
    ("ARRAY_CONTAINS_ALL(arr, [1, 2])", Contains("all", Ref("arr"), ListLit((IntLit(1), IntLit(2))))),
    ("array_contains_any(arr, [true])", Contains("any", Ref("arr"), ListLit((BoolLit(True),)))),
    ("json_contains(m, [1, [2]])", Contains("one", Ref("m"), ListLit((IntLit(1), ListLit((IntLit(2),)))))),
    ("array_length(arr) == 0", eq(ArrayLength(Ref("arr")), IntLit(0))),
    ('ARRAY_LENGTH(m["a"]) > 1', Compare(">", ArrayLength(Ref("m", ("a",))), IntLit(1))),
    # whitespace is free
    ("\tx\n==\r\n1 ", eq(x, IntLit(1))),
    ("x==1&&y!=2", And((eq(x, IntLit(1)), Compare("!=", y, IntLit(2))))),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_valid_expressions_parse_to_the_expected_tree(text, expected):
    assert parse(text) == expected


def test_nodes_carry_the_position_of_their_construct():
    tree = parse('a == 1 and not b["k"] like "x%"')
    assert isinstance(tree, And)
    comparison, negation = tree.operands
    assert (tree.pos, comparison.pos, comparison.left.pos, comparison.right.pos) == (0, 2, 0, 5)
    assert isinstance(negation, Not) and negation.pos == 11
    assert (negation.operand.pos, negation.operand.operand.pos) == (22, 15)


INVALID = [
    # (expression, error position, construct)
    ("", 0, "expression"),
    ("   ", 0, "expression"),
    ("x ==", 4, "end of expression"),
    ("x == 1 and", 10, "end of expression"),
    ("(x == 1", 7, "end of expression"),
    ("x == 1)", 6, ")"),
    ("x = 1", 2, "="),
    ("x == 1 & y", 7, "&"),
    ("x | 1 == 3", 2, "|"),
    ("x ^ 1 == 3", 2, "^"),
    ("~x == 3", 0, "~"),
    ("x << 1 == 2", 2, "<<"),
    ("x >> 1 == 2", 2, ">>"),
    ("x ** 2 == 4", 2, "**"),
    ('s =~ "a.*"', 2, "=~"),
    ('s !~ "a.*"', 2, "!~"),
    ("x == {v}", 5, "{"),
    ("x == 1 ; drop table t", 7, "character"),
    ("x == #", 5, "character"),
    ("x == `a`", 5, "character"),
    ("x == $foo", 5, "character"),
    ("x == é", 5, "character"),
    ('s == "abc', 5, "string literal"),
    ("s == 'abc\"", 5, "string literal"),
    ('s == "a\nb"', 5, "string literal"),
    (r's == "a\%"', 7, "escape sequence"),
    (r's == "\q"', 6, "escape sequence"),
    (r's == "\xZZ"', 6, "escape sequence"),
    (r's == "\xe9"', 6, "escape sequence"),
    (r's == "\uD800"', 6, "escape sequence"),
    (r's == "\0"', 6, "escape sequence"),
    ("x == 09", 5, "number"),
    ("x == 1.2.3", 5, "number"),
    ("x == 1e", 5, "number"),
    ("x == 0x", 5, "number"),
    ("x == 1_000", 5, "number"),
    ("x == 12abc", 5, "number"),
    ("x == 1e999", 5, "number"),
    ("x == 9223372036854775808", 5, "number"),
    ("x == -9223372036854775809", 5, "number"),
    ("x == +y", 5, "unary +"),
    ("x == 1 == 2", 7, "comparison"),
    ("1 < x > 0", 6, "comparison"),
    ("1 < x < 5 < 7", 10, "comparison"),
    ("1 < x + 1 < 5", 6, "range comparison"),
    ("x in 1", 5, "integer"),
    ("x in [y]", 6, "identifier"),
    ("x in [1, 2", 10, "end of expression"),
    ("x in [1 2]", 8, "integer"),
    ("x like y", 7, "identifier"),
    ("x like 1", 7, "integer"),
    ("x + 1 is null", 6, "is null"),
    ("x is nul", 5, "identifier"),
    ("x is not 1", 9, "integer"),
    ("exists 1", 7, "integer"),
    ("x == [1, 2]", 5, "list literal"),
    ("m[-1] == 1", 2, "subscript"),
    ("m[1.5] == 1", 2, "subscript"),
    ("m[01] == 1", 2, "subscript"),
    ("m[x] == 1", 2, "subscript"),
    ('m["a" == 1', 6, "comparison operator"),
    ("$meta == 1", 0, "$meta"),
    ('text_match(s, "x")', 0, "text_match"),
    ('PHRASE_MATCH(s, "x")', 0, "PHRASE_MATCH"),
    ("random_sample(0.1)", 0, "random_sample"),
    ('st_contains(g, "POINT(0 0)")', 0, "st_contains"),
    ("Json_Contains(m, 1)", 0, "Json_Contains"),
    ("lower(s) == 'a'", 0, "lower"),
    ("json_contains(m)", 15, ")"),
    ("json_contains(1, m)", 14, "integer"),
    ("json_contains_all(m, 1)", 21, "integer"),
    ("array_contains_any(arr, [x])", 25, "identifier"),
    ("array_length(arr, 1) == 1", 16, ","),
    ("array_length(f(x)) == 1", 13, "identifier"),
    ("ts > ISO '2025-01-01T00:00:00Z'", 5, "ISO"),
    ("x == 1 x == 2", 7, "identifier"),
    ("and x == 1", 0, "and"),
]


@pytest.mark.parametrize(("text", "position", "construct"), INVALID, ids=[text for text, _, _ in INVALID])
def test_invalid_expressions_raise_with_position_and_construct(text, position, construct):
    with pytest.raises(FilterConversionError) as caught:
        parse(text)
    assert (caught.value.position, caught.value.construct) == (position, construct)
    assert str(caught.value).endswith(f"at position {position}")
