"""Typed syntax tree of a Milvus filter expression.

Nodes are frozen dataclasses. Every node carries `pos`, the character offset where its construct
starts (for an operator node: where the operator is), so translators can point errors at the
source. `pos` does not take part in equality: two trees are equal when they have the same shape
and values, wherever they came from.

The tree is schema-free: whether `x` is a column, an ARRAY or a key of the dynamic field is decided
by the translators' column resolver, not by the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class _Node:
    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True)
class IntLit(_Node):
    value: int


@dataclass(frozen=True)
class FloatLit(_Node):
    value: float


@dataclass(frozen=True)
class StrLit(_Node):
    value: str


@dataclass(frozen=True)
class BoolLit(_Node):
    value: bool


@dataclass(frozen=True)
class ListLit(_Node):
    """`[a, b, ...]`: only after `in` or as an argument of the contains functions (may nest)."""

    items: tuple[Literal | ListLit, ...]


@dataclass(frozen=True)
class Ref(_Node):
    """A field, optionally subscripted: `x`, `meta["a"][0]`, `arr[2]`, `$meta["k"]` (name `$meta`)."""

    name: str
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Neg(_Node):
    """Unary minus on anything but a number literal (those fold into the literal)."""

    operand: Node


@dataclass(frozen=True)
class Arith(_Node):
    op: str  # + - * / %
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(_Node):
    """`left op right`; a chain `1 < x < 5` parses as And of two Compares sharing `x`."""

    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class In(_Node):
    operand: Node
    items: ListLit
    negated: bool = False


@dataclass(frozen=True)
class Like(_Node):
    """`operand like "pattern"`; the pattern is kept as written (after string unescaping)."""

    operand: Node
    pattern: str


@dataclass(frozen=True)
class IsNull(_Node):
    """`x is null` / `x is not null` (negated); `exists x` is `x is not null`."""

    operand: Ref
    negated: bool = False


@dataclass(frozen=True)
class Contains(_Node):
    """json_contains / json_contains_all / json_contains_any and their array_* twins.

    Milvus treats the json_ and array_ spellings as the same operation (the target's type decides),
    so `mode` is what matters: "one" (value is a literal), "all" or "any" (value is a list).
    """

    mode: str
    target: Ref
    value: Literal | ListLit


@dataclass(frozen=True)
class ArrayLength(_Node):
    target: Ref


@dataclass(frozen=True)
class Not(_Node):
    operand: Node


@dataclass(frozen=True)
class And(_Node):
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or(_Node):
    operands: tuple[Node, ...]


Literal = IntLit | FloatLit | StrLit | BoolLit
Node = (
    IntLit
    | FloatLit
    | StrLit
    | BoolLit
    | ListLit
    | Ref
    | Neg
    | Arith
    | Compare
    | In
    | Like
    | IsNull
    | Contains
    | ArrayLength
    | Not
    | And
    | Or
)
