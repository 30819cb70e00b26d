"""Choose the key both sides are joined on, and the type they are joined as."""

from __future__ import annotations

import pyarrow as pa

from milvusdiff.compare.inputs import Side
from milvusdiff.compare.plan.kinds import family
from milvusdiff.compare.plan.model import KeyColumn
from milvusdiff.errors import CompareError

_JOINABLE = ("number", "string", "binary")


def resolve_keys(
    side_a: Side, side_b: Side, explicit: tuple[str, ...], rename: dict[str, str]
) -> tuple[KeyColumn, ...]:
    names = explicit or _metadata_key(side_a, side_b, rename)
    keys = []
    for name in names:
        b_name = rename.get(name, name)
        if name not in side_a.schema.names or b_name not in side_b.schema.names:
            missing = "A" if name not in side_a.schema.names else "B"
            raise CompareError(f"no common key: key column {name!r} is not in input {missing}")
        keys.append(
            KeyColumn(name, b_name, _join_type(name, side_a.schema.field(name).type, side_b.schema.field(b_name).type))
        )
    return tuple(keys)


def _metadata_key(side_a: Side, side_b: Side, rename: dict[str, str]) -> tuple[str, ...]:
    if side_a.key and side_b.key and tuple(rename.get(k, k) for k in side_a.key) != side_b.key:
        raise CompareError(f"no common key: A is keyed by {list(side_a.key)}, B by {list(side_b.key)}; pass `key`")
    key = side_a.key or side_b.key
    if not key:
        raise CompareError("no common key: neither input names its key in metadata; pass `key`")
    if not side_a.key:
        inverse = {b: a for a, b in rename.items()}
        key = tuple(inverse.get(k, k) for k in key)
    return key


def _join_type(name: str, type_a: pa.DataType, type_b: pa.DataType) -> pa.DataType:
    """Integers of any width join as int64, strings as string; anything else must match exactly."""
    fam_a, fam_b = family(type_a), family(type_b)
    if type_a.equals(type_b) and not pa.types.is_floating(type_a):
        return type_a
    if fam_a == fam_b == "number" and pa.types.is_integer(type_a) and pa.types.is_integer(type_b):
        return pa.int64()
    if fam_a == fam_b == "string":
        return pa.string()
    if fam_a == fam_b and fam_a in _JOINABLE and not pa.types.is_floating(type_a):
        return pa.binary()
    raise CompareError(f"key {name!r} cannot be compared: {type_a} in A vs {type_b} in B")
