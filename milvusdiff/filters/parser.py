"""Recursive-descent parser: Milvus filter text -> ast.Node.

Precedence, loosest first: `or`, `and`, `not`, predicates (comparisons, `in`, `like`, `is null`),
`+ -`, `* / %`, unary minus, primaries. `not` binds looser than a comparison, so `not a == 1`
means `not (a == 1)`, as Milvus Lite and SQL read it. Comparisons do not associate; the only chain
is Milvus' range form `lo < x < hi` (both operators `<`/`<=`, or both `>`/`>=`).
"""

from __future__ import annotations

from collections.abc import Callable

from milvusdiff.errors import FilterConversionError
from milvusdiff.filters import ast
from milvusdiff.filters.tokens import INT64_MAX, T, Token, tokenize

_CONTAINS_MODES = {
    "json_contains": "one",
    "array_contains": "one",
    "json_contains_all": "all",
    "array_contains_all": "all",
    "json_contains_any": "any",
    "array_contains_any": "any",
}
_UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "text_match",
        "phrase_match",
        "random_sample",
        "element_filter",
        "match_all",
        "match_any",
        "match_least",
        "match_most",
        "match_exact",
        "st_equals",
        "st_touches",
        "st_overlaps",
        "st_crosses",
        "st_contains",
        "st_intersects",
        "st_within",
        "st_dwithin",
        "st_isvalid",
    }
)
_RANGE_OPS = ({"<", "<="}, {">", ">="})


def parse(text: str) -> ast.Node:
    """Parse a Milvus filter expression; raise FilterConversionError with the failing position."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, kind: T, context: str) -> Token:
        token = self.peek()
        if token.kind is not kind:
            raise _unexpected(token, f"expected {kind.value!r} {context}")
        return self.take()

    def parse(self) -> ast.Node:
        if self.peek().kind is T.EOF:
            raise FilterConversionError("empty filter expression", position=0, construct="expression")
        node = self.parse_or()
        if self.peek().kind is not T.EOF:
            raise _unexpected(self.peek(), "expected an operator or the end of the expression")
        return node

    def parse_or(self) -> ast.Node:
        return self.parse_flat(T.OR, self.parse_and, ast.Or)

    def parse_and(self) -> ast.Node:
        return self.parse_flat(T.AND, self.parse_not, ast.And)

    def parse_flat(
        self, kind: T, parse_operand: Callable[[], ast.Node], node_type: type[ast.And] | type[ast.Or]
    ) -> ast.Node:
        """`a op b op c` as one n-ary node (a lone operand stays as it is)."""
        first = self.peek()
        operands = [parse_operand()]
        while self.peek().kind is kind:
            self.take()
            operands.append(parse_operand())
        return operands[0] if len(operands) == 1 else node_type(tuple(operands), pos=first.pos)

    def parse_not(self) -> ast.Node:
        if self.peek().kind is T.NOT:
            token = self.take()
            return ast.Not(self.parse_not(), pos=token.pos)
        return self.parse_predicate()

    def parse_predicate(self) -> ast.Node:
        if self.peek().kind is T.EXISTS:
            token = self.take()
            return ast.IsNull(self.parse_ref_operand("exists"), negated=True, pos=token.pos)
        left = self.parse_additive()
        token = self.peek()
        if token.kind is T.CMP:
            return self.parse_comparison(left)
        if token.kind is T.IN or (token.kind is T.NOT and self.peek(1).kind is T.IN):
            negated = self.take().kind is T.NOT
            if negated:
                self.take()
            return ast.In(left, self.parse_list("after 'in'"), negated=negated, pos=token.pos)
        if token.kind is T.LIKE:
            self.take()
            pattern = self.expect(T.STRING, "(a string literal pattern) after 'like'")
            return ast.Like(left, str(pattern.value), pos=token.pos)
        if token.kind is T.IS:
            return self.parse_is_null(left)
        return left

    def parse_comparison(self, left: ast.Node) -> ast.Node:
        ops = [self.take()]
        operands = [left, self.parse_additive()]
        while self.peek().kind is T.CMP:
            ops.append(self.take())
            operands.append(self.parse_additive())
        if len(ops) == 1:
            return ast.Compare(ops[0].text, left, operands[1], pos=ops[0].pos)
        pair = {ops[0].text, ops[1].text}
        if len(ops) > 2 or not any(pair <= allowed for allowed in _RANGE_OPS):
            raise FilterConversionError(
                "comparisons do not chain, except a range with '<'/'<=' or '>'/'>=' on both sides",
                position=ops[-1].pos,
                construct="comparison",
            )
        middle = operands[1]
        if not isinstance(middle, ast.Ref):
            raise FilterConversionError(
                "the middle of a range comparison must be a field or JSON path",
                position=middle.pos,
                construct="range comparison",
            )
        lower = ast.Compare(ops[0].text, left, middle, pos=ops[0].pos)
        upper = ast.Compare(ops[1].text, middle, operands[2], pos=ops[1].pos)
        return ast.And((lower, upper), pos=left.pos)

    def parse_is_null(self, operand: ast.Node) -> ast.Node:
        token = self.take()
        if not isinstance(operand, ast.Ref):
            raise FilterConversionError(
                "'is null' applies to a field or JSON path only", position=token.pos, construct="is null"
            )
        negated = self.peek().kind is T.NOT
        if negated:
            self.take()
        self.expect(T.NULL, "after 'is'" if not negated else "after 'is not'")
        return ast.IsNull(operand, negated=negated, pos=token.pos)

    def parse_additive(self) -> ast.Node:
        return self.parse_left_assoc((T.PLUS, T.MINUS), self.parse_term)

    def parse_term(self) -> ast.Node:
        return self.parse_left_assoc((T.MULDIV,), self.parse_unary)

    def parse_left_assoc(self, kinds: tuple[T, ...], parse_operand: Callable[[], ast.Node]) -> ast.Node:
        node = parse_operand()
        while self.peek().kind in kinds:
            op = self.take()
            node = ast.Arith(op.text, node, parse_operand(), pos=op.pos)
        return node

    def parse_unary(self) -> ast.Node:
        token = self.peek()
        if token.kind not in (T.MINUS, T.PLUS):
            return self.parse_primary()
        self.take()
        if self.peek().kind in (T.INT, T.FLOAT):
            return self.number(self.take(), negative=token.kind is T.MINUS, pos=token.pos)
        if token.kind is T.PLUS:
            raise FilterConversionError(
                "unary '+' is only supported before a number", position=token.pos, construct="unary +"
            )
        return ast.Neg(self.parse_unary(), pos=token.pos)

    def parse_primary(self) -> ast.Node:
        token = self.peek()
        if token.kind in (T.INT, T.FLOAT, T.STRING, T.BOOL):
            return self.literal(self.take())
        if token.kind is T.LPAREN:
            self.take()
            node = self.parse_or()
            self.expect(T.RPAREN, "to close the '(' at position " + str(token.pos))
            return node
        if token.kind is T.IDENT and self.peek(1).kind is T.LPAREN:
            return self.parse_call()
        if token.kind is T.IDENT and token.text.lower() in ("iso", "interval") and self.peek(1).kind is T.STRING:
            raise FilterConversionError(
                "TIMESTAMPTZ literals (ISO / INTERVAL) are not supported", position=token.pos, construct=token.text
            )
        if token.kind in (T.IDENT, T.META):
            return self.parse_ref()
        if token.kind is T.LBRACKET:
            raise FilterConversionError(
                "a list literal is only allowed after 'in' or as an argument of a contains function",
                position=token.pos,
                construct="list literal",
            )
        raise _unexpected(token, "expected a value, field or '('")

    def parse_ref(self) -> ast.Ref:
        token = self.take()
        path: list[str | int] = []
        while self.peek().kind is T.LBRACKET:
            self.take()
            key = self.take()
            if key.kind is T.STRING:
                path.append(str(key.value))
            elif key.kind is T.INT and key.text.isdigit() and (key.text == "0" or not key.text.startswith("0")):
                path.append(int(key.text))
            else:
                raise FilterConversionError(
                    "a subscript must be a string key or a non-negative decimal index",
                    position=key.pos,
                    construct="subscript",
                )
            self.expect(T.RBRACKET, "to close the subscript")
        if token.kind is T.META and not path:
            raise FilterConversionError('$meta needs a key, as in $meta["name"]', position=token.pos, construct="$meta")
        return ast.Ref(token.text, tuple(path), pos=token.pos)

    def parse_ref_operand(self, context: str) -> ast.Ref:
        token = self.peek()
        if token.kind not in (T.IDENT, T.META) or self.peek(1).kind is T.LPAREN:
            raise _unexpected(token, f"expected a field or JSON path for {context}")
        return self.parse_ref()

    def parse_call(self) -> ast.Node:
        name_token = self.take()
        name = name_token.text
        canonical = name.lower()
        spelled_as_keyword = name in (canonical, canonical.upper())
        if spelled_as_keyword and canonical in _UNSUPPORTED_FUNCTIONS:
            raise FilterConversionError(
                f"the function {name} is not supported", position=name_token.pos, construct=name
            )
        if not spelled_as_keyword or (canonical not in _CONTAINS_MODES and canonical != "array_length"):
            raise FilterConversionError(f"unknown function {name!r}", position=name_token.pos, construct=name)
        self.take()  # (
        target = self.parse_ref_operand(name)
        if canonical == "array_length":
            self.expect(T.RPAREN, f"to close {name}(")
            return ast.ArrayLength(target, pos=name_token.pos)
        self.expect(T.COMMA, f"between the arguments of {name}")
        mode = _CONTAINS_MODES[canonical]
        if mode == "one" and self.peek().kind is not T.LBRACKET:
            value: ast.Literal | ast.ListLit = self.parse_literal()
        else:
            value = self.parse_list(f"as the second argument of {name}")
        self.expect(T.RPAREN, f"to close {name}(")
        return ast.Contains(mode, target, value, pos=name_token.pos)

    def parse_list(self, context: str) -> ast.ListLit:
        start = self.expect(T.LBRACKET, f"(a list literal) {context}")
        items: list[ast.Literal | ast.ListLit] = []
        while self.peek().kind is not T.RBRACKET:
            items.append(self.parse_list("inside a list") if self.peek().kind is T.LBRACKET else self.parse_literal())
            if self.peek().kind is not T.COMMA:
                break
            self.take()
        self.expect(T.RBRACKET, "to close the list")
        return ast.ListLit(tuple(items), pos=start.pos)

    def parse_literal(self) -> ast.Literal:
        token = self.peek()
        if token.kind in (T.MINUS, T.PLUS) and self.peek(1).kind in (T.INT, T.FLOAT):
            self.take()
            return self.number(self.take(), negative=token.kind is T.MINUS, pos=token.pos)
        if token.kind in (T.INT, T.FLOAT, T.STRING, T.BOOL):
            return self.literal(self.take())
        raise _unexpected(token, "expected a literal value")

    def literal(self, token: Token) -> ast.Literal:
        if token.kind is T.STRING:
            return ast.StrLit(str(token.value), pos=token.pos)
        if token.kind is T.BOOL:
            return ast.BoolLit(bool(token.value), pos=token.pos)
        return self.number(token, negative=False, pos=token.pos)

    @staticmethod
    def number(token: Token, *, negative: bool, pos: int) -> ast.IntLit | ast.FloatLit:
        if token.kind is T.FLOAT:
            assert isinstance(token.value, float)
            return ast.FloatLit(-token.value if negative else token.value, pos=pos)
        assert isinstance(token.value, int)
        value = -token.value if negative else token.value
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise FilterConversionError(
                f"integer literal {token.text} does not fit in 64 bits", position=pos, construct="number"
            )
        return ast.IntLit(value, pos=pos)


def _unexpected(token: Token, expectation: str) -> FilterConversionError:
    seen = "the end of the expression" if token.kind is T.EOF else repr(token.text)
    return FilterConversionError(f"unexpected {seen}: {expectation}", position=token.pos, construct=token.kind.value)
