"""Seeded random filters for one collection, with literals taken from its own rows.

Literals come from a sample of the collection's data, so generated filters select some rows and
not others (a filter that matches nothing proves little). Every filter is checked by the
translator before it is used; one it refuses is replaced by another.

Milvus Lite departs from Milvus in a few filter semantics (see LITE_DIFFERS in
tests/test_filters_engines.py). With `lite_safe` the generator avoids all of them, so that any
difference it finds is about the data, not about the engine: no range chains, no `not in`, no
`in` on JSON paths, no integer arithmetic (Lite wraps at 32/64 bits, has no `%` and divides
integers as floats), no arithmetic on JSON values or FLOAT fields (Lite computes the latter in
single precision), like patterns without escapes, array_length never compared with 0, and `in`,
contains functions and array_length never under `not` (Lite calls a NULL field false there, not
unknown). Booleans and numbers that share a JSON key are not compared (Lite compares them
Python-style).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from milvusdiff.snapshot_format import META_COLUMN
from milvusdiff.types.spec import CollectionSpec

_KINDS = {
    **dict.fromkeys(("INT8", "INT16", "INT32", "INT64"), "int"),
    **dict.fromkeys(("FLOAT", "DOUBLE"), "float"),
    **dict.fromkeys(("VARCHAR", "TEXT"), "string"),
    "BOOL": "bool",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"and", "or", "not", "in", "like", "is", "null", "exists", "true", "false"}
_ORDERED = ("==", "!=", "<", "<=", ">", ">=")
_EQUALITY = ("==", "!=")
_EXACT_JSON_INT = 2**53
_JSON_DEPTH = 2
_LIKE_SPECIAL = "%_\\"
_SAFE_LENGTH_TESTS = (("==", 1), ("==", 2), (">", 0), (">=", 1), (">", 1))


@dataclass(frozen=True)
class Target:
    """Something a filter can name (a field, a JSON path, a dynamic key) and the values sampled for it."""

    expr: str
    kind: str  # int, float, string, bool, array, json (a path), document (a whole JSON field)
    values: tuple[Any, ...]  # non-null values seen in the sample
    nullable: bool
    element: str | None = None  # ARRAY element kind
    float32: bool = False  # a FLOAT field: Milvus Lite does its arithmetic in single precision


def is_sampled(field_type: str) -> bool:
    """Types a generated filter can use: scalars, JSON and arrays of scalars."""
    return field_type in _KINDS or field_type in ("JSON", "ARRAY")


def string_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return string_literal(value)
    return repr(value)


def _usable(value: Any) -> bool:
    """A value a filter literal can state exactly (no NaN/inf, no control characters, ints JSON keeps exact)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not any(ord(c) < 32 or ord(c) == 127 for c in value)
    return isinstance(value, (bool, int))


def _json_scalar_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "number" if abs(value) <= _EXACT_JSON_INT else None
    if isinstance(value, float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string" if _usable(value) else None
    return None


def _path_values(documents: Iterable[Any]) -> dict[tuple[str, ...], list[Any]]:
    """JSON key path -> the scalars and scalar lists found there, up to _JSON_DEPTH keys deep."""
    found: dict[tuple[str, ...], list[Any]] = {}

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, dict) and len(path) < _JSON_DEPTH:
            for key, item in value.items():
                if _usable(key):
                    walk(item, (*path, key))
        elif path and isinstance(value, list):
            items = [item for item in value if _json_scalar_kind(item)]
            if items:
                found.setdefault(path, []).append(items)
        elif path and _json_scalar_kind(value):
            found.setdefault(path, []).append(value)

    for document in documents:
        walk(document, ())
    return found


def _subscripts(keys: tuple[str, ...]) -> str:
    return "".join(f"[{string_literal(key)}]" for key in keys)


def _dynamic_name(key: str, spec: CollectionSpec) -> str:
    """A dynamic key by its bare name where the parser reads it as one, else as `$meta["key"]`."""
    bare = _IDENTIFIER.match(key) and key.lower() not in _RESERVED and key not in spec.field_names()
    return key if bare else META_COLUMN + _subscripts((key,))


def targets(spec: CollectionSpec, rows: Sequence[Mapping[str, Any]]) -> list[Target]:
    """What the sampled rows offer a filter, field by field and JSON path by path."""
    found: list[Target] = []
    for field in spec.fields:
        if not is_sampled(field.type):
            continue
        column = [row.get(field.name) for row in rows]
        present = [value for value in column if value is not None]
        nullable = field.nullable or len(present) < len(column)
        if field.type == "JSON":
            found.append(Target(field.name, "document", (), nullable))
            paths = _path_values(present)
            found += [Target(field.name + _subscripts(p), "json", tuple(v), True) for p, v in paths.items()]
        elif field.type == "ARRAY":
            element = _KINDS.get(field.element_type or "")
            lists = tuple(tuple(v for v in value if _usable(v)) for value in present)
            if element:
                found.append(Target(field.name, "array", lists, nullable, element))
        else:
            values = tuple(value for value in present if _usable(value))
            found.append(Target(field.name, _KINDS[field.type], values, nullable, float32=field.type == "FLOAT"))
    if spec.enable_dynamic_field:
        paths = _path_values(row.get(META_COLUMN) for row in rows)
        for (key, *rest), seen in paths.items():
            found.append(Target(_dynamic_name(key, spec) + _subscripts(tuple(rest)), "json", tuple(seen), True))
    return [t for t in found if t.values or t.nullable]


class FilterGenerator:
    """Random filters over the targets; `valid` decides whether a candidate is kept."""

    def __init__(self, found: list[Target], seed: int, *, lite_safe: bool) -> None:
        self.targets = found
        self.rng = random.Random(seed)
        self.lite = lite_safe

    def filters(self, count: int, valid: Callable[[str], bool]) -> list[str]:
        """`count` distinct valid filters (fewer only if the collection offers too little to vary)."""
        chosen: dict[str, None] = {}
        for _ in range(count * 50):
            if len(chosen) == count or not self.targets:
                break
            candidate = self.filter()
            if candidate not in chosen and valid(candidate):
                chosen[candidate] = None
        return list(chosen)

    def filter(self, depth: int = 2, negated: bool = False) -> str:
        rng = self.rng
        if depth and rng.random() < 0.4:
            word = rng.choice(["and", "or", "not"])
            if word == "not":
                return f"not ({self.filter(depth - 1, negated=True)})"
            return f"({self.filter(depth - 1, negated)} {word} {self.filter(depth - 1, negated)})"
        while True:
            target = rng.choice(self.targets)
            atom = self.null_test(target) if rng.random() < 0.1 or not target.values else self.atom(target, negated)
            if atom:
                return atom

    def atom(self, target: Target, negated: bool) -> str | None:
        """One predicate on the target, or None when its kind offers nothing here."""
        makers: dict[str, Callable[[Target, bool], str | None]] = {
            "int": self.scalar,
            "float": self.scalar,
            "string": self.scalar,
            "bool": self.boolean,
            "array": self.array,
            "json": self.json,
            "document": lambda t, _: self.null_test(t),
        }
        return makers[target.kind](target, negated)

    # -- predicates by kind ------------------------------------------------------------------------

    def null_test(self, target: Target) -> str | None:
        if not target.nullable:
            return None
        if target.kind == "json" and self.rng.random() < 0.3:
            return f"exists {target.expr}"
        return f"{target.expr} {self.rng.choice(['is null', 'is not null'])}"

    def compare(self, expr: str, value: Any, ops: tuple[str, ...] = _ORDERED) -> str:
        return f"{expr} {self.rng.choice(ops)} {literal(value)}"

    def membership(self, target: Target, negated: bool, values: tuple[Any, ...]) -> str | None:
        if self.lite and (negated or target.kind == "json"):
            return None
        pool = list(dict.fromkeys(values))
        items = self.rng.sample(pool, min(len(pool), self.rng.randint(1, 4)))
        word = "not in" if not self.lite and self.rng.random() < 0.3 else "in"
        return f"{target.expr} {word} [{', '.join(literal(v) for v in items)}]"

    def scalar(self, target: Target, negated: bool) -> str | None:
        """A comparison, membership test, like pattern (strings), chain or arithmetic (numbers)."""
        rng = self.rng
        value = rng.choice(target.values)
        roll = rng.random()
        if roll < 0.2:
            return self.membership(target, negated, target.values)
        if target.kind == "string":
            return self.like(target.expr, value) if roll < 0.45 else self.compare(target.expr, value)
        if roll < 0.3 and not self.lite:
            low, high = sorted((value, rng.choice(target.values)))
            return f"{literal(low)} {rng.choice(['<', '<='])} {target.expr} {rng.choice(['<', '<='])} {literal(high)}"
        if roll < 0.45 and not (self.lite and (target.kind == "int" or target.float32)):
            return self.arithmetic(target, value)
        return self.compare(target.expr, value)

    def arithmetic(self, target: Target, value: Any) -> str:
        rng = self.rng
        if target.kind == "int" and rng.random() < 0.3:
            op, divisor = rng.choice(["/", "%"]), rng.choice([2, 3, -3])
            return f"{target.expr} {op} {divisor} {rng.choice(_ORDERED)} {literal(rng.randint(-2, 2))}"
        choices = [("+", 1), ("-", 2)] + ([("*", 2)] if abs(value) <= _EXACT_JSON_INT else [])
        op, operand = rng.choice(choices)
        shifted = {"+": value + operand, "-": value - operand, "*": value * operand}[op]
        return f"{target.expr} {op} {operand} {rng.choice(_ORDERED)} {literal(shifted)}"

    def like(self, expr: str, value: str) -> str | None:
        """A prefix, suffix or one-character wildcard pattern that the sampled value matches."""
        rng = self.rng
        shape = rng.choice(["prefix", "suffix", "single"])
        special = any(c in value for c in _LIKE_SPECIAL)
        if shape == "single" and value and not special:
            position = rng.randrange(len(value))
            return f"{expr} like {string_literal(value[:position] + '_' + value[position + 1 :])}"
        cut = rng.randint(0, min(3, len(value)))
        piece = value[len(value) - cut :] if shape == "suffix" else value[:cut]
        if self.lite and any(c in piece for c in _LIKE_SPECIAL):
            return None
        escaped = "".join("\\" + c if c in _LIKE_SPECIAL else c for c in piece)
        pattern = "%" + escaped if shape == "suffix" else escaped + "%"
        return f"{expr} like {string_literal(pattern)}"

    def boolean(self, target: Target, negated: bool) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            return target.expr if rng.random() < 0.5 else f"not {target.expr}"
        return self.compare(target.expr, rng.choice([True, False]), _EQUALITY)

    def array(self, target: Target, negated: bool) -> str | None:
        rng = self.rng
        if self.lite and negated:
            return None
        sampled = rng.choice(target.values)
        elements = [v for values in target.values for v in values]
        roll = rng.random()
        if roll < 0.3 and elements:
            return f"array_contains({target.expr}, {literal(rng.choice(elements))})"
        if roll < 0.5 and elements:
            mode = rng.choice(["any", "all"])
            items = list(sampled) if mode == "all" else rng.sample(elements, min(len(elements), 3))
            return f"array_contains_{mode}({target.expr}, [{', '.join(literal(v) for v in items)}])"
        if roll < 0.7 or not self.lite:
            if self.lite:
                op, bound = rng.choice(_SAFE_LENGTH_TESTS)
            else:
                op, bound = rng.choice(_ORDERED), len(sampled)
            return f"array_length({target.expr}) {op} {bound}"
        return None

    def json(self, target: Target, negated: bool) -> str | None:
        rng = self.rng
        value = rng.choice(target.values)
        if isinstance(value, list):
            if self.lite and negated:
                return None
            mode = rng.choice(["", "_any", "_all"])
            if not mode:
                return f"json_contains({target.expr}, {literal(rng.choice(value))})"
            return f"json_contains{mode}({target.expr}, [{', '.join(literal(v) for v in value[:3])}])"
        kinds = {_json_scalar_kind(v) for v in target.values if not isinstance(v, list)}
        kind = _json_scalar_kind(value)
        if self.lite and kind in ("bool", "number") and {"bool", "number"} <= kinds:
            return None
        if kind == "bool":
            return self.compare(target.expr, value, _EQUALITY)
        if kind == "string" and rng.random() < 0.3:
            return self.like(target.expr, value)
        if rng.random() < 0.15:
            same = tuple(v for v in target.values if _json_scalar_kind(v) == kind)
            return self.membership(target, negated, same)
        return self.compare(target.expr, value)
