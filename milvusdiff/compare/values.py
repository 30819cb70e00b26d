"""Values and differences as people read them in reports, on the terminal and in the notebook.

A report that prints `price: 0.75 → 0.75` for a 5e-10 change hides the very thing it reports, so
floats are written as the shortest text that reads back to the same bits at their own width
(float32 as float32, float64 as float64), and a changed vector shows the elements that differ,
not its first few. This works on the handful of rows a sample holds, value by value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

_VALUE_CHARS = 60
_VECTOR_ITEMS = 4
_CHANGED_ITEMS = 4
_ABSENT = "absent"


def _is_narrow_float(arrow_type: pa.DataType | None) -> bool:
    return arrow_type is not None and (pa.types.is_float32(arrow_type) or pa.types.is_float16(arrow_type))


def _item_type(arrow_type: pa.DataType | None) -> pa.DataType | None:
    if arrow_type is not None and (
        pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)
    ):
        return arrow_type.value_type
    return None


def _sparse_value_type(arrow_type: pa.DataType | None) -> pa.DataType | None:
    """The value type of a sparse vector column (struct<indices, values>), None for any other type."""
    if arrow_type is None or not pa.types.is_struct(arrow_type):
        return None
    names = [arrow_type.field(i).name for i in range(arrow_type.num_fields)]
    return _item_type(arrow_type.field("values").type) if names == ["indices", "values"] else None


def fmt_float(value: float, arrow_type: pa.DataType | None = None) -> str:
    """The shortest text that reads back to the same bits: repr at float64, numpy's shortest at float32."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(np.float32(value)) if _is_narrow_float(arrow_type) else repr(value)


def fmt(value: Any, arrow_type: pa.DataType | None = None) -> str:
    """One value, shortened for a table cell; floats exact at the width `arrow_type` gives them."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return fmt_float(value, arrow_type)
    if isinstance(value, dict) and _sparse_value_type(arrow_type) is not None:
        return _fmt_sparse(value, arrow_type)
    if isinstance(value, list):
        item = _item_type(arrow_type)
        shown = ", ".join(fmt(v, item) for v in value[:_VECTOR_ITEMS])
        more = f", … ({len(value)} items)" if len(value) > _VECTOR_ITEMS else ""
        return f"[{shown}{more}]"
    if isinstance(value, bytes):
        value = value.hex()
    text = str(value)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _sparse_items(value: dict[str, Any]) -> dict[int, float]:
    return dict(zip(value["indices"] or [], value["values"] or [], strict=True))


def _fmt_sparse(value: dict[str, Any], arrow_type: pa.DataType | None) -> str:
    items = list(_sparse_items(value).items())
    kind = _sparse_value_type(arrow_type)
    shown = ", ".join(f"{i}: {fmt(v, kind)}" for i, v in items[:_VECTOR_ITEMS])
    more = f", … ({len(items)} items)" if len(items) > _VECTOR_ITEMS else ""
    return "{" + shown + more + "}"


def _same(a: Any, b: Any) -> bool:
    """Equal bits for floats (NaN equals NaN, -0.0 differs from 0.0), plain equality otherwise."""
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.float64(a).tobytes() == np.float64(b).tobytes())
    return bool(a == b)


def _positions(pairs: list[tuple[str, str]], total: int, what: str) -> str:
    shown = ", ".join(f"{where}: {change}" for where, change in pairs[:_CHANGED_ITEMS])
    more = f", … ({len(pairs)} of {total} {what} differ)" if len(pairs) > _CHANGED_ITEMS else ""
    return shown + more


def describe_change(a: Any, b: Any, arrow_type: pa.DataType | None = None) -> str:
    """What differs between two values of one column, `A → B`.

    Sparse vectors: the differing indices with both values (`absent` where a side lacks the index).
    Lists of equal length (dense vectors, arrays): the differing positions with both values. Else both
    values whole (shortened).
    """
    if isinstance(a, dict) and isinstance(b, dict) and (kind := _sparse_value_type(arrow_type)) is not None:
        items_a, items_b = _sparse_items(a), _sparse_items(b)
        indices = sorted(set(items_a) | set(items_b))
        pairs = [
            (str(i), f"{_side(items_a, i, kind)} → {_side(items_b, i, kind)}")
            for i in indices
            if i not in items_a or i not in items_b or not _same(items_a[i], items_b[i])
        ]
        return _positions(pairs, len(indices), "indices") if pairs else f"{fmt(a, arrow_type)} → {fmt(b, arrow_type)}"
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a:
        item = _item_type(arrow_type)
        pairs = [
            (f"[{i}]", f"{fmt(x, item)} → {fmt(y, item)}")
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            if not _same(x, y)
        ]
        if pairs:
            return _positions(pairs, len(a), "elements")
    return f"{fmt(a, arrow_type)} → {fmt(b, arrow_type)}"


def _side(items: dict[int, float], index: int, kind: pa.DataType | None) -> str:
    return fmt(items[index], kind) if index in items else _ABSENT
