"""The equality rules: one per kind of value, shared by every engine and every pass.

Every verdict "equal" or "differs" that milvusdiff reports is decided here. Engines (the DuckDB join,
the positional merge, Polars, a Spark `applyInArrow` worker, the staged compare on candidate rows) may
pre-filter with cheaper tests of their own, but a pre-filter may only flag *more* rows than these
rules, never fewer: the finishing pass calls `differs` on every row an engine flagged and clears the
flags that do not hold. So every engine reports the same rows by construction.

Rules (README, "Comparing"):

- null equals null; null against a value differs (also for list elements and sparse values).
- EXACT (integers, strings, booleans, timestamps, binary, lists of those): equal values.
- FLOAT, with no tolerance: the same bits, except that every NaN equals every NaN. So -0.0 differs
  from 0.0, and compare agrees with the row digest, which hashes `canonical_floats` bits
  (types/canonical.py: the same rule as bytes).
- FLOAT, with a tolerance: equal as above, or both finite and `abs(a - b) <= atol + rtol * abs(b)`,
  computed in float64. So +inf equals only +inf and -inf only -inf under any tolerance.
- FLOAT_LIST (vectors, float arrays): same length and every element equal by the FLOAT rule, in order.
- SPARSE (struct<indices, values>): the same indices (EXACT) and values by the FLOAT rule.
- JSON: equal canonical JSON (key order and `1` vs `1.0` never matter); text that is not JSON
  equals only the same text.

Interface (engine-independent; Arrow and numpy in, numpy out, no engine imported):

- `differs(kind, a, b, tolerance) -> np.ndarray[bool]` and `equal(...)`: per row of two equally long
  Arrow arrays (any chunk of rows: a batch, the candidates of a bucket). The kind comes from
  `milvusdiff.compare.plan.kinds.kind_of(field_a, field_b)`; list arrays of any flavour (list,
  large_list, fixed_size_list, as Spark hands them out) are accepted.
- `floats_equal(x, y, tolerance)`: element-wise, for null-free numpy arrays.
- `vectors_equal(x, y, tolerance)`: per row of two null-free (n, dim) numpy matrices; bits first,
  arithmetic only on rows whose bits differ.
- `Tolerance(atol, rtol)`: validated on construction (`ToleranceError`, a ValueError).
"""

from __future__ import annotations

import enum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.compare.tolerance import EXACT, Tolerance
from milvusdiff.types.canonical import same_json_text

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


class Kind(enum.Enum):
    """Which rule compares a pair of columns; `plan.kinds.kind_of` picks it from the Arrow fields."""

    EXACT = "exact"  # equal values (ints, strings, bools, timestamps, binary, lists of those)
    FLOAT = "float"  # scalar float: same bits or both NaN; under a tolerance, the formula for finite values
    JSON = "json"  # equal canonical JSON
    FLOAT_LIST = "float_list"  # vectors and float arrays: same length, element-wise FLOAT, in order
    SPARSE = "sparse"  # struct<indices, values>: same indices, values by FLOAT


def is_list(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)
    )


# -- numpy ------------------------------------------------------------------------------------------


def _common(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as one float dtype: the same one when they share it, else float64 (exact for float16/32 and
    for integers up to 2**53, as every engine casts)."""
    if x.dtype == y.dtype and x.dtype.kind == "f":
        return x, y
    return x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)


def floats_equal(x: np.ndarray, y: np.ndarray, tolerance: Tolerance = EXACT) -> np.ndarray:
    """Element-wise FLOAT rule for null-free numeric arrays of one shape."""
    x, y = _common(np.asarray(x), np.asarray(y))
    unsigned = _UINT[x.dtype.itemsize]
    with np.errstate(invalid="ignore", over="ignore"):
        same = (x.view(unsigned) == y.view(unsigned)) | (np.isnan(x) & np.isnan(y))
        if tolerance.exact:
            return np.asarray(same)
        x64, y64 = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
        close = (
            np.isfinite(x64) & np.isfinite(y64) & (np.abs(x64 - y64) <= tolerance.atol + tolerance.rtol * np.abs(y64))
        )
    return np.asarray(same | close)


def vectors_equal(x: np.ndarray, y: np.ndarray, tolerance: Tolerance = EXACT) -> np.ndarray:
    """Per row of two null-free (n, dim) matrices: every element equal by the FLOAT rule (integers exactly,
    or by the formula under a tolerance). Bits are compared first; only rows whose bits differ are looked at
    again, so the common case (equal rows) costs one pass over the bytes."""
    if x.dtype != y.dtype:
        x, y = _common(x, y)
    unsigned = _UINT[x.dtype.itemsize]
    differ = (x.view(unsigned) != y.view(unsigned)).any(axis=1)
    rows = np.flatnonzero(differ)
    result = ~differ
    if rows.size and (x.dtype.kind == "f" or not tolerance.exact):
        result[rows] = floats_equal(x[rows], y[rows], tolerance).all(axis=1)
    return np.asarray(result)


# -- Arrow ------------------------------------------------------------------------------------------


def _storage(array: pa.Array) -> pa.Array:
    """Extension arrays (arrow.json, ...) are compared by their storage; chunked arrays as one array."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.storage if isinstance(array.type, pa.BaseExtensionType) else array


def _valid(array: pa.Array) -> np.ndarray:
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(array: pa.Array) -> np.ndarray:
    """Values of a null-free numeric array as numpy (booleans as uint8)."""
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.uint8())
    return np.asarray(array.to_numpy(zero_copy_only=False))


def equal(kind: Kind, a: pa.Array, b: pa.Array, tolerance: Tolerance = EXACT) -> np.ndarray:
    """Per row: equal under the rule of `kind` (see the module docstring). Null equals null."""
    a, b = _storage(a), _storage(b)
    if len(a) != len(b):
        raise ValueError(f"cannot compare {len(a)} rows with {len(b)}")
    valid_a, valid_b = _valid(a), _valid(b)
    both = valid_a & valid_b
    result = ~valid_a & ~valid_b
    if both.any():
        if not both.all():
            rows = pa.array(np.flatnonzero(both))
            a, b = a.take(rows), b.take(rows)
        result[both] = _values_equal(kind, a, b, tolerance)
    return np.asarray(result)


def differs(kind: Kind, a: pa.Array, b: pa.Array, tolerance: Tolerance = EXACT) -> np.ndarray:
    """Per row: not equal under the rule of `kind`."""
    return ~equal(kind, a, b, tolerance)


def _values_equal(kind: Kind, a: pa.Array, b: pa.Array, tolerance: Tolerance) -> np.ndarray:
    """As equal(), for arrays without top-level nulls."""
    if kind is Kind.JSON:
        return _json_equal(a, b)
    if kind is Kind.SPARSE:
        same_indices = _lists_equal(pc.struct_field(a, "indices"), pc.struct_field(b, "indices"), Kind.EXACT, EXACT)
        same_values = _lists_equal(pc.struct_field(a, "values"), pc.struct_field(b, "values"), Kind.FLOAT, tolerance)
        return same_indices & same_values
    if is_list(a.type) and is_list(b.type):
        element = Kind.FLOAT if kind in (Kind.FLOAT, Kind.FLOAT_LIST) else Kind.EXACT
        return _lists_equal(a, b, element, tolerance)
    if kind in (Kind.FLOAT, Kind.FLOAT_LIST):
        return floats_equal(_numbers(a), _numbers(b), tolerance)
    return _exact_equal(a, b)


def _exact_equal(a: pa.Array, b: pa.Array) -> np.ndarray:
    if not a.type.equals(b.type):
        if pa.types.is_integer(a.type) and pa.types.is_integer(b.type):
            a, b = a.cast(pa.int64()), b.cast(pa.int64())
        else:
            b = b.cast(a.type)
    try:
        same = pc.equal(a, b)
    except pa.ArrowNotImplementedError:  # types without a comparison kernel (structs, maps): by value
        return np.array([x == y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], dtype=bool)
    return np.asarray(same.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)


def _fixed_matrix(array: pa.Array) -> np.ndarray | None:
    """A null-free fixed-size list of numbers as an (n, dim) view of its buffer, else None."""
    if not pa.types.is_fixed_size_list(array.type):
        return None
    values_type = array.type.value_type
    if not (pa.types.is_integer(values_type) or pa.types.is_floating(values_type)):
        return None
    dim = array.type.list_size
    values = array.values.slice(array.offset * dim, len(array) * dim)
    if values.null_count:
        return None
    return np.asarray(values.to_numpy(zero_copy_only=False)).reshape(len(array), dim)


def _lists_equal(a: pa.Array, b: pa.Array, element: Kind, tolerance: Tolerance) -> np.ndarray:
    """Per row of two null-free list arrays: same length, every element equal by `element`'s rule."""
    x, y = _fixed_matrix(a), _fixed_matrix(b)
    if x is not None and y is not None and x.shape == y.shape and element is Kind.FLOAT:
        return vectors_equal(x, y, tolerance)
    length_a = np.asarray(pc.list_value_length(a).to_numpy(zero_copy_only=False), dtype=np.int64)
    length_b = np.asarray(pc.list_value_length(b).to_numpy(zero_copy_only=False), dtype=np.int64)
    same_length = length_a == length_b
    result = np.zeros(len(a), dtype=bool)
    rows = np.flatnonzero(same_length)
    if not rows.size:
        return result
    if rows.size < len(a):
        take = pa.array(rows)
        a, b = a.take(take), b.take(take)
    elements = equal(element, a.flatten(), b.flatten(), tolerance)
    owner = np.repeat(np.arange(rows.size), length_a[rows])
    bad = np.bincount(owner[~elements], minlength=rows.size)
    result[rows] = bad == 0
    return result


def _json_equal(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Same text is equal; other rows (few: engines flag only rows whose text differs) are parsed."""
    a, b = a.cast(pa.string()), b.cast(pa.string())
    result = np.asarray(pc.equal(a, b).fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(~result)
    if rows.size:
        take = pa.array(rows)
        pairs = zip(a.take(take).to_pylist(), b.take(take).to_pylist(), strict=True)
        result[rows] = [same_json_text(x, y) for x, y in pairs]
    return result
