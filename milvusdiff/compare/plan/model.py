"""The plan both engines execute: which key, which column pairs, compared how.

Column names in the intermediate and output tables derive from the A-side name through the helpers
here, so the engines, the finishing pass and the reports agree on them by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from milvusdiff.compare.options import Tolerance
from milvusdiff.compare.plan.kinds import Kind


def flag_col(name: str) -> str:
    return f"{name}__ne"


def a_col(name: str) -> str:
    return f"{name}__a"


def b_col(name: str) -> str:
    return f"{name}__b"


@dataclass(frozen=True)
class KeyColumn:
    name: str  # A-side name, also the output name
    b_name: str
    arrow_type: pa.DataType  # the common type both sides are joined as


@dataclass(frozen=True)
class Column:
    name: str  # A-side name, also the output name
    b_name: str
    kind: Kind
    tolerance: Tolerance
    type_a: pa.DataType
    type_b: pa.DataType
    vector: bool = False

    @property
    def dim(self) -> int | None:
        return self.type_a.list_size if pa.types.is_fixed_size_list(self.type_a) else None

    def on(self, label: str) -> tuple[str, pa.DataType]:
        """The column's name and type in input `label` ("a" or "b")."""
        return (self.name, self.type_a) if label == "a" else (self.b_name, self.type_b)


@dataclass(frozen=True)
class Plan:
    keys: tuple[KeyColumn, ...]
    columns: tuple[Column, ...]
    columns_only_a: tuple[str, ...] = ()
    columns_only_b: tuple[str, ...] = ()
    incomparable: dict[str, str] = field(default_factory=dict)  # A name -> "type A vs type B"
    ignored: tuple[str, ...] = ()

    @property
    def key_names(self) -> list[str]:
        return [k.name for k in self.keys]

    @property
    def schema_differs(self) -> bool:
        return bool(self.columns_only_a or self.columns_only_b or self.incomparable)
