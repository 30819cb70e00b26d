"""Second look at the rows an engine flagged, for comparisons SQL cannot express cheaply.

Engines compare JSON text and nested floats exactly; here the flagged rows only are compared again
semantically (canonical JSON) or element-wise within tolerance, and flags that do not hold are cleared.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from milvusdiff.compare.lists import elementwise_equal
from milvusdiff.compare.options import Tolerance
from milvusdiff.compare.plan import Column, Kind


def _json_equal(a: pa.Array, b: pa.Array) -> np.ndarray:
    # Imported here: the types package pulls in pymilvus, which only this refinement needs.
    from milvusdiff.types.canonical import canonical_json_text

    def canonical(text: str | None) -> str | None:
        """Text that is not JSON stays as it is: it then equals only identical text."""
        if text is None:
            return None
        try:
            return canonical_json_text(text)
        except ValueError:
            return text

    pairs = zip(a.to_pylist(), b.to_pylist(), strict=True)
    return np.array([canonical(x) == canonical(y) for x, y in pairs], dtype=bool)


def _sparse_equal(a: pa.StructArray, b: pa.StructArray, tolerance: Tolerance) -> np.ndarray:
    valid_a = a.is_valid().to_numpy(zero_copy_only=False)
    valid_b = b.is_valid().to_numpy(zero_copy_only=False)
    same = elementwise_equal(a.field("indices"), b.field("indices"), Tolerance()) & elementwise_equal(
        a.field("values"), b.field("values"), tolerance
    )
    return np.asarray((valid_a & valid_b & same) | (~valid_a & ~valid_b))


def still_different(column: Column, a: pa.Array, b: pa.Array) -> np.ndarray:
    """For rows the engine flagged, whether they still differ under the column's real formula."""
    if column.kind is Kind.JSON:
        equal = _json_equal(a, b)
    elif column.kind is Kind.SPARSE:
        equal = _sparse_equal(a, b, column.tolerance)
    else:
        equal = elementwise_equal(a, b, column.tolerance)
    return ~equal
