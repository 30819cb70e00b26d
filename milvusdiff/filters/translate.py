"""The typed translation shared by the PostgreSQL and DuckDB back ends.

The Translator walks the tree once, decides every type question (which comparison, which cast,
which NULL rule) and asks a Dialect only for spellings. That keeps the two back ends semantically
identical by construction; they differ in how they reach into JSON and arrays, not in what a
filter means.

Semantics, chosen to match Milvus (Milvus Lite 3.x where the server is not observable here):

* SQL three-valued logic: a comparison with a NULL field is unknown, `not` of unknown is unknown,
  and the filter keeps only rows where it is true. `is null` is the way to select nulls.
* A JSON path (or dynamic-field key) that is missing, or holds JSON null, is NULL. A present value
  of another type than the literal compares unequal: `==` is false, `!=` is true, and ordering
  (`<` ...) is unknown. Numbers compare numerically (as doubles), strings by code point.
* `x in [...]` is `x == a or x == b ...`, so `x in []` is false for every row, NULL ones too.
* Contains functions on a present JSON document are false (not unknown) when the path is missing
  or not an array; on a NULL JSON or ARRAY field they are unknown.
* Integer `/` and `%` truncate toward zero (C, as Milvus computes them), computed exactly (no
  64-bit overflow); any float operand, or a JSON operand, makes the arithmetic double precision.
  Division by zero is NULL. FLOAT fields compare by their exact value widened to double.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from milvusdiff.errors import FilterConversionError
from milvusdiff.filters import ast
from milvusdiff.filters.columns import ColumnResolver, Kind, Resolved
from milvusdiff.filters.sqlfrag import Frag, ident, join, param, sql

_SQL_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_JSON_TYPES = {Kind.INT: "number", Kind.FLOAT: "number", Kind.STRING: "string", Kind.BOOL: "boolean"}
#: The kind a JSON value of each type is compared as: JSON numbers are doubles.
JSON_KINDS = {"number": Kind.FLOAT, "string": Kind.STRING, "boolean": Kind.BOOL}
_LITERAL_KINDS = {ast.IntLit: Kind.INT, ast.FloatLit: Kind.FLOAT, ast.StrLit: Kind.STRING, ast.BoolLit: Kind.BOOL}
_LIKE_ESCAPE = "!"


LiteralValue = int | float | str | bool


def json_groups(items: list[ast.Literal]) -> dict[str, list[LiteralValue]]:
    """Literal values by the JSON type they can equal (`number`, `string`, `boolean`), non-empty only."""
    groups: dict[str, list[LiteralValue]] = {}
    for item in items:
        groups.setdefault(_JSON_TYPES[_LITERAL_KINDS[type(item)]], []).append(item.value)
    return groups


class Dialect(ABC):
    """How one SQL engine spells the operations the Translator decided on."""

    #: SQL type names for INT, FLOAT, STRING, BOOL values.
    types: ClassVar[dict[Kind, str]]
    #: An integer type wide enough that filter arithmetic cannot overflow it.
    exact_int: str

    @abstractmethod
    def text_order(self, value: Frag) -> Frag:
        """`value` with code-point ordering for comparisons."""

    @abstractmethod
    def int_div(self, left: Frag, right: Frag) -> Frag:
        """Truncating integer division of exact integers."""

    @abstractmethod
    def int_mod(self, left: Frag, right: Frag) -> Frag:
        """Remainder with the sign of the dividend."""

    @abstractmethod
    def array_index(self, column: Frag, index: int) -> Frag:
        """Element `index` (0-based) of an ARRAY column, NULL when out of range."""

    @abstractmethod
    def array_length(self, column: Frag) -> Frag: ...

    @abstractmethod
    def member(self, value: Frag, array: Frag) -> Frag:
        """Whether `value` is an element of `array`: NULL when either is NULL."""

    @abstractmethod
    def array_has(self, column: Frag, mode: str, values: Frag) -> Frag:
        """Whether the ARRAY column holds all / any (`mode`) of the typed array `values`."""

    @abstractmethod
    def json_value(self, column: Frag, path: tuple[str | int, ...], pos: int) -> Frag:
        """The JSON value at `path` in a JSON column (SQL NULL when missing)."""

    @abstractmethod
    def json_is(self, value: Frag, json_type: str) -> Frag:
        """Whether a JSON value is a `number`, `string`, `boolean` or `array`."""

    @abstractmethod
    def json_missing(self, value: Frag) -> Frag:
        """Whether a JSON value is missing (SQL NULL) or JSON null."""

    @abstractmethod
    def json_number(self, value: Frag) -> Frag: ...

    @abstractmethod
    def json_string(self, value: Frag) -> Frag: ...

    @abstractmethod
    def json_bool(self, value: Frag) -> Frag: ...

    @abstractmethod
    def json_array_length(self, value: Frag) -> Frag: ...

    @abstractmethod
    def json_contains(self, value: Frag, groups: dict[str, list[LiteralValue]], mode: str) -> Frag:
        """Whether a JSON array holds all / any (`mode`) of the items, grouped by JSON type."""

    def column(self, name: str, pos: int) -> Frag:
        """A reference to the column `name`, which the filter names at `pos`."""
        return ident(name)

    def cast(self, value: Frag, kind: Kind, *, array: bool = False) -> Frag:
        return sql(f"CAST({{}} AS {self.types[kind]}{'[]' if array else ''})", value)


@dataclass(frozen=True)
class Value:
    """A translated sub-expression and what the Translator knows about it."""

    kind: Kind
    sql: Frag
    literal: bool = False  # a filter literal: never NULL
    element: Kind | None = None  # for ARRAY
    source: Resolved | None = None  # for JSON: the column and path it was read from


class Translator:
    def __init__(self, dialect: Dialect, resolver: ColumnResolver) -> None:
        self.d = dialect
        self.resolver = resolver

    def predicate(self, node: ast.Node) -> Frag:
        return self.boolean(node, "a filter").sql

    def boolean(self, node: ast.Node, context: str) -> Value:
        value = self.value(node)
        if value.kind is not Kind.BOOL:
            raise FilterConversionError(
                f"{context} must be a boolean expression, not {_describe(value)}",
                position=node.pos,
                construct="boolean expression",
            )
        return value

    def value(self, node: ast.Node) -> Value:
        match node:
            case ast.IntLit() | ast.FloatLit() | ast.StrLit() | ast.BoolLit():
                kind = _LITERAL_KINDS[type(node)]
                return Value(kind, self.d.cast(param(node.value), kind), literal=True)
            case ast.ListLit():
                raise FilterConversionError(
                    "a list literal is only allowed after 'in' or as an argument of a contains function",
                    position=node.pos,
                    construct="list literal",
                )
            case ast.Ref():
                return self.ref(node)
            case ast.Neg():
                return self.negate(node)
            case ast.Arith():
                return self.arith(node)
            case ast.Compare():
                return self.compare(node)
            case ast.In():
                return self.membership(node)
            case ast.Like():
                return self.like(node)
            case ast.IsNull():
                return self.is_null(node)
            case ast.Contains():
                return self.contains(node)
            case ast.ArrayLength():
                return self.array_length(node)
            case ast.Not():
                return Value(Kind.BOOL, sql("(NOT {})", self.boolean(node.operand, "the operand of 'not'").sql))
            case ast.And() | ast.Or():
                word = "AND" if isinstance(node, ast.And) else "OR"
                operands = [self.boolean(op, f"an operand of '{word.lower()}'").sql for op in node.operands]
                return Value(Kind.BOOL, sql("({})", join(f" {word} ", operands)))
        raise AssertionError(f"unhandled node {node!r}")

    # -- references -----------------------------------------------------------------------------

    def ref(self, node: ast.Ref) -> Value:
        resolved = self.resolver.resolve(node)
        column = self.d.column(resolved.column.name, node.pos)
        kind = resolved.column.kind
        assert kind is not None  # the resolver rejects unusable columns
        if kind is Kind.JSON:
            return Value(Kind.JSON, self.d.json_value(column, resolved.path, node.pos), source=resolved)
        if kind is Kind.ARRAY and resolved.path:
            element = resolved.column.element
            assert element is not None and isinstance(resolved.path[0], int)
            return Value(element, self.d.array_index(column, resolved.path[0]))
        return Value(kind, column, element=resolved.column.element)

    def json_scalar(self, value: Value, node: ast.Node) -> Frag:
        """The SQL of a JSON value that is compared as a scalar: a path, not a whole document."""
        assert value.source is not None
        if not value.source.path:
            name = value.source.column.name
            raise FilterConversionError(
                f'a whole JSON field cannot be compared; use a key, as in {name}["key"]',
                position=node.pos,
                construct="JSON field",
            )
        return value.sql

    # -- arithmetic -----------------------------------------------------------------------------

    def number(self, node: ast.Node) -> Value:
        value = self.value(node)
        if value.kind in (Kind.INT, Kind.FLOAT):
            return value
        if value.kind is Kind.JSON:
            x = self.json_scalar(value, node)
            return Value(
                Kind.FLOAT, sql("CASE WHEN {} THEN {} END", self.d.json_is(x, "number"), self.d.json_number(x))
            )
        raise FilterConversionError(
            f"arithmetic needs numbers, not {_describe(value)}", position=node.pos, construct="arithmetic"
        )

    def exact(self, value: Value) -> Frag:
        return sql(f"CAST({{}} AS {self.d.exact_int})", value.sql)

    def negate(self, node: ast.Neg) -> Value:
        operand = self.number(node.operand)
        if operand.kind is Kind.INT:
            return Value(Kind.INT, sql("(- {})", self.exact(operand)))
        return Value(Kind.FLOAT, sql("(- {})", self.d.cast(operand.sql, Kind.FLOAT)))

    def arith(self, node: ast.Arith) -> Value:
        left, right = self.number(node.left), self.number(node.right)
        if left.kind is Kind.INT and right.kind is Kind.INT:
            a, b = self.exact(left), self.exact(right)
            if node.op == "/":
                return Value(Kind.INT, self.d.int_div(a, sql("NULLIF({}, 0)", b)))
            if node.op == "%":
                return Value(Kind.INT, self.d.int_mod(a, sql("NULLIF({}, 0)", b)))
            return Value(Kind.INT, sql(f"({{}} {node.op} {{}})", a, b))
        if node.op == "%":
            raise FilterConversionError(
                "'%' needs integer operands (JSON numbers count as floats)", position=node.pos, construct="%"
            )
        a, b = self.d.cast(left.sql, Kind.FLOAT), self.d.cast(right.sql, Kind.FLOAT)
        if node.op == "/":
            b = sql("NULLIF({}, 0)", b)
        return Value(Kind.FLOAT, sql(f"({{}} {node.op} {{}})", a, b))

    # -- predicates -----------------------------------------------------------------------------

    def compare(self, node: ast.Compare) -> Value:
        left, right, op = self.value(node.left), self.value(node.right), node.op
        left_node = node.left
        if right.kind is Kind.JSON and left.kind is not Kind.JSON:
            left, right, op, left_node = right, left, _MIRRORED[op], node.right
        if left.kind is Kind.JSON:
            if right.kind is Kind.JSON:
                raise FilterConversionError(
                    "comparing two JSON values is not supported; compare a JSON value with a literal or field",
                    position=node.pos,
                    construct="comparison",
                )
            return self.json_compare(self.json_scalar(left, left_node), op, right, node)
        kind = _common_kind(left.kind, right.kind)
        if kind is None:
            raise FilterConversionError(
                f"cannot compare {_describe(left)} with {_describe(right)}", position=node.pos, construct="comparison"
            )
        a, b = left.sql, right.sql
        if kind is Kind.FLOAT:
            a, b = self.d.cast(a, Kind.FLOAT), self.d.cast(b, Kind.FLOAT)
        elif kind is Kind.STRING and op not in ("==", "!="):
            a = self.d.text_order(a)
        return Value(Kind.BOOL, sql(f"({{}} {_SQL_OPS[op]} {{}})", a, b))

    def json_compare(self, x: Frag, op: str, other: Value, node: ast.Node) -> Value:
        json_type = _JSON_TYPES.get(other.kind)
        if json_type is None:
            raise FilterConversionError(
                f"cannot compare a JSON value with {_describe(other)}", position=node.pos, construct="comparison"
            )
        typed, literal = self.json_typed(x, json_type), other.sql
        if json_type == "number":
            literal = self.d.cast(literal, Kind.FLOAT)
        elif json_type == "string" and op not in ("==", "!="):
            typed = self.d.text_order(typed)
        test = sql(f"({{}} {_SQL_OPS[op]} {{}})", typed, literal)
        is_type = self.d.json_is(x, json_type)
        if op not in ("==", "!="):
            return Value(Kind.BOOL, sql("CASE WHEN {} THEN {} END", is_type, test))
        # Equality against a value of another type is decided (false / true), not unknown.
        unknown_other = "" if other.literal else " WHEN {3} IS NULL THEN NULL"
        mismatch = "FALSE" if op == "==" else "TRUE"
        template = f"CASE WHEN {{0}} THEN NULL{unknown_other} WHEN {{1}} THEN {{2}} ELSE {mismatch} END"
        return Value(Kind.BOOL, sql(template, self.d.json_missing(x), is_type, test, other.sql))

    def json_typed(self, x: Frag, json_type: str) -> Frag:
        if json_type == "number":
            return self.d.json_number(x)
        if json_type == "string":
            return self.d.json_string(x)
        return self.d.json_bool(x)

    def membership(self, node: ast.In) -> Value:
        value = self.value(node.operand)
        items = _scalar_items(node.items.items)
        if value.kind is Kind.JSON:
            x = self.json_scalar(value, node.operand)
            whens = [self.json_in(x, json_type, group) for json_type, group in json_groups(items).items()]
            found = sql(
                "CASE WHEN {} THEN NULL " + "{} " * len(whens) + "ELSE FALSE END", self.d.json_missing(x), *whens
            )
        else:
            kind = self.common_item_kind(value, items, node)
            values = [float(item.value) if kind is Kind.FLOAT else item.value for item in items]
            operand = self.d.cast(value.sql, Kind.FLOAT) if kind is Kind.FLOAT else value.sql
            found = self.d.member(operand, self.d.cast(param(values), kind, array=True))
        if not items:
            found = sql("FALSE")  # an empty disjunction: false for every row, NULL ones included, as in SQL
        return Value(Kind.BOOL, sql("(NOT {})", found) if node.negated else found)

    def json_in(self, x: Frag, json_type: str, group: list[LiteralValue]) -> Frag:
        kind = JSON_KINDS[json_type]
        values = [float(v) for v in group] if kind is Kind.FLOAT else group
        member = self.d.member(self.json_typed(x, json_type), self.d.cast(param(values), kind, array=True))
        return sql("WHEN {} THEN {}", self.d.json_is(x, json_type), member)

    def common_item_kind(self, value: Value, items: list[ast.Literal], node: ast.Node) -> Kind:
        """The kind both a static value and every list item compare as; raise on a mismatch."""
        if value.kind not in _JSON_TYPES:
            raise FilterConversionError(
                f"cannot test membership of {_describe(value)}", position=node.pos, construct="in"
            )
        kind = value.kind
        for item in items:
            common = _common_kind(kind, _LITERAL_KINDS[type(item)])
            if common is None:
                raise FilterConversionError(
                    f"cannot compare {_describe(value)} with {item.value!r}",
                    position=item.pos,
                    construct="list item",
                )
            kind = common
        return kind

    def like(self, node: ast.Like) -> Value:
        pattern = self.d.cast(param(_like_pattern(node.pattern, node.pos)), Kind.STRING)
        value = self.value(node.operand)
        if value.kind is Kind.STRING:
            return Value(Kind.BOOL, sql(f"({{}} LIKE {{}} ESCAPE '{_LIKE_ESCAPE}')", value.sql, pattern))
        if value.kind is Kind.JSON:
            x = self.json_scalar(value, node.operand)
            template = (
                f"CASE WHEN {{}} THEN NULL WHEN {{}} THEN ({{}} LIKE {{}} ESCAPE '{_LIKE_ESCAPE}') ELSE FALSE END"
            )
            return Value(
                Kind.BOOL,
                sql(template, self.d.json_missing(x), self.d.json_is(x, "string"), self.d.json_string(x), pattern),
            )
        raise FilterConversionError(
            f"'like' needs a string, not {_describe(value)}", position=node.pos, construct="like"
        )

    def is_null(self, node: ast.IsNull) -> Value:
        value = self.value(node.operand)
        if value.kind is Kind.JSON:
            missing = self.d.json_missing(value.sql)
            return Value(Kind.BOOL, sql("(NOT {})", missing) if node.negated else missing)
        return Value(Kind.BOOL, sql(f"({{}} IS {'NOT ' if node.negated else ''}NULL)", value.sql))

    def contains(self, node: ast.Contains) -> Value:
        target = self.value(node.target)
        if node.mode == "one" and isinstance(node.value, ast.ListLit):
            raise FilterConversionError(
                "a contains function with a list as its value is not supported; use the _all/_any form",
                position=node.value.pos,
                construct="contains",
            )
        items = _scalar_items(node.value.items if isinstance(node.value, ast.ListLit) else (node.value,))
        if target.kind is Kind.ARRAY:
            assert target.element is not None
            kind = self.common_item_kind(Value(target.element, target.sql), items, node)
            values = [float(item.value) if kind is Kind.FLOAT else item.value for item in items]
            column = self.d.cast(target.sql, Kind.FLOAT, array=True) if kind is Kind.FLOAT else target.sql
            if node.mode == "one":
                return Value(Kind.BOOL, self.d.member(self.d.cast(param(values[0]), kind), column))
            return Value(Kind.BOOL, self.d.array_has(column, node.mode, self.d.cast(param(values), kind, array=True)))
        if target.kind is Kind.JSON:
            assert target.source is not None
            mode = "all" if node.mode == "one" else node.mode
            found = sql("COALESCE({}, FALSE)", self.d.json_contains(target.sql, json_groups(items), mode))
            if target.source.dynamic:
                return Value(Kind.BOOL, found)
            column = self.d.column(target.source.column.name, node.target.pos)
            return Value(Kind.BOOL, sql("CASE WHEN {} IS NULL THEN NULL ELSE {} END", column, found))
        raise FilterConversionError(
            f"contains functions need an ARRAY or JSON value, not {_describe(target)}",
            position=node.target.pos,
            construct="contains",
        )

    def array_length(self, node: ast.ArrayLength) -> Value:
        target = self.value(node.target)
        if target.kind is Kind.ARRAY:
            return Value(Kind.INT, self.d.array_length(target.sql))
        if target.kind is Kind.JSON:
            length = self.d.json_array_length(target.sql)
            return Value(Kind.INT, sql("CASE WHEN {} THEN {} END", self.d.json_is(target.sql, "array"), length))
        raise FilterConversionError(
            f"array_length needs an ARRAY or JSON value, not {_describe(target)}",
            position=node.target.pos,
            construct="array_length",
        )


_DESCRIPTIONS = {
    Kind.INT: "an integer",
    Kind.FLOAT: "a float",
    Kind.STRING: "a string",
    Kind.BOOL: "a boolean",
    Kind.JSON: "a JSON value",
    Kind.ARRAY: "an ARRAY field",
}


def _describe(value: Value) -> str:
    return _DESCRIPTIONS[value.kind]


def _common_kind(a: Kind, b: Kind) -> Kind | None:
    if a is b and a in _JSON_TYPES:
        return a
    if {a, b} == {Kind.INT, Kind.FLOAT}:
        return Kind.FLOAT
    return None


def _scalar_items(items: tuple[ast.Literal | ast.ListLit, ...]) -> list[ast.Literal]:
    for item in items:
        if isinstance(item, ast.ListLit):
            raise FilterConversionError(
                "nested lists are not supported here", position=item.pos, construct="list literal"
            )
    return [item for item in items if not isinstance(item, ast.ListLit)]


def _like_pattern(pattern: str, pos: int) -> str:
    """Milvus' like pattern (`%`, `_`, and `\\` escaping the next character) as a SQL LIKE pattern
    with `!` as its escape character, which no SQL string-escaping setting can disturb."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise FilterConversionError(
                    "a like pattern cannot end with a lone backslash", position=pos, construct="like pattern"
                )
            char, wildcard = escaped, False
        else:
            wildcard = char in "%_"
        out.append(char if wildcard or char not in "%_" + _LIKE_ESCAPE else _LIKE_ESCAPE + char)
    return "".join(out)
