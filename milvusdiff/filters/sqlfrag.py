"""Dialect-neutral SQL fragments: trusted SQL text, identifiers and parameter values kept apart.

Translators build fragments from templates written in this package; filter literals only ever
enter as Param parts. Rendering is the single place that turns a Param into a placeholder and
appends its value to the parameter list, in textual order, so no value can reach the SQL text and
a value used twice in the text is passed twice.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ident:
    name: str


@dataclass(frozen=True)
class Param:
    value: object


Part = str | Ident | Param


@dataclass(frozen=True)
class Frag:
    parts: tuple[Part, ...]


_FORMATTER = string.Formatter()


def sql(template: str, *args: Frag) -> Frag:
    """Fill `{}` / `{0}` slots of a trusted template with fragments; `{{` `}}` are literal braces."""
    parts: list[Part] = []
    auto = itertools.count()
    for text, slot, _spec, _conversion in _FORMATTER.parse(template):
        if text:
            parts.append(text)
        if slot is not None:
            parts.extend(args[next(auto) if slot == "" else int(slot)].parts)
    return Frag(tuple(parts))


def ident(name: str) -> Frag:
    return Frag((Ident(name),))


def param(value: object) -> Frag:
    return Frag((Param(value),))


def join(separator: str, frags: Iterable[Frag]) -> Frag:
    parts: list[Part] = []
    for index, frag in enumerate(frags):
        if index:
            parts.append(separator)
        parts.extend(frag.parts)
    return Frag(tuple(parts))
