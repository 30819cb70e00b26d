"""The one type map: for every Milvus DataType, its snapshot (Arrow) form, its PostgreSQL form, the
conversions between them and the canonical bytes its digest is computed from.

Everything that stores, reads, compares or hashes a value asks this module, so a type can never be
written one way and read another. Lossless both ways is the rule: FLOAT keeps its float32 bits,
vectors their exact bits, and a type that cannot be kept exactly is refused with a SchemaError
instead of being stored approximately or as text.

PostgreSQL forms, and why:
- vectors are `bytea` in their native little-endian encoding. Measured here (100k rows, 128 dims),
  COPY binary writes bytea at ~188k rows/s against ~35k for `real[]`, and ADBC reads it at ~405k
  rows/s against ~111k; the bytes are the exact bits, and a view decodes them.
- JSON and the dynamic field are `jsonb` (queryable; key order is not part of the value).
- ARRAY is a typed PostgreSQL array of the element type, so filters can use array operators.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.errors import SchemaError
from milvusdiff.snapshot_format import TYPE_META
from milvusdiff.types.canonical import canonical_floats, canonical_json, canonical_json_text, parse_timestamptz
from milvusdiff.types.spec import FieldSpec

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
SPARSE_TYPE = pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))])

# Canonical bytes of one column: per-row lengths, the concatenated bytes, and which rows are null.
Bytes = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TypeRule:
    """How one Milvus type is held in each store. Every conversion takes and returns whole columns."""

    arrow: Callable[[FieldSpec], pa.DataType]
    pg: Callable[[FieldSpec], str]
    from_python: Callable[[Sequence[Any], FieldSpec], pa.Array]
    to_pg: Callable[[pa.Array, FieldSpec], list[Any]]
    from_pg: Callable[[pa.Array, FieldSpec], pa.Array]
    canonical_bytes: Callable[[pa.Array, FieldSpec], Bytes]
    # snapshot column -> values pymilvus accepts on insert/upsert (used to write a row back, e.g. repair)
    to_milvus: Callable[[pa.Array, FieldSpec], list[Any]] = lambda arr, _: arr.to_pylist()


# ---------------------------------------------------------------------------------------------
# Column helpers shared by several rules


def _null_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.zeros(len(arr), dtype=bool)
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _fixed_width_bytes(arr: pa.Array, numpy_dtype: np.dtype) -> Bytes:
    """Exact bytes of a fixed-width column; null slots are zero-length."""
    nulls = _null_mask(arr)
    filled = arr.fill_null(pa.scalar(0, arr.type)) if arr.null_count else arr
    values = np.ascontiguousarray(
        canonical_floats(filled.to_numpy(zero_copy_only=False).astype(numpy_dtype, copy=False))
    )
    width = values.dtype.itemsize
    data = values.view(np.uint8).reshape(len(arr), width)
    lengths = np.where(nulls, 0, width).astype(np.int64)
    return lengths, data[~nulls].reshape(-1), nulls


def _var_bytes(offsets: np.ndarray, data: np.ndarray, nulls: np.ndarray) -> Bytes:
    lengths = np.diff(offsets).astype(np.int64)
    lengths[nulls] = 0
    start = int(offsets[0])
    return lengths, data[start : int(offsets[-1])], nulls


def _string_bytes(arr: pa.Array) -> Bytes:
    large = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    if large.offset:
        large = pa.concat_arrays([large])
    _, offsets_buf, data_buf = large.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[: len(large) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return _var_bytes(offsets, data, _null_mask(large))


def _string_array(values: Sequence[Any], _: FieldSpec) -> pa.Array:
    return pa.array(values, pa.string())


def _identity_list(arr: pa.Array, _: FieldSpec) -> list[Any]:
    return arr.to_pylist()


def _cast_to(field_arrow: Callable[[FieldSpec], pa.DataType]) -> Callable[[pa.Array, FieldSpec], pa.Array]:
    def convert(arr: pa.Array, spec: FieldSpec) -> pa.Array:
        return arr.cast(field_arrow(spec))

    return convert


# ---------------------------------------------------------------------------------------------
# Scalars


def _scalar_rule(arrow_type: pa.DataType, pg_type: str, numpy_dtype: str) -> TypeRule:
    def from_python(values: Sequence[Any], _: FieldSpec) -> pa.Array:
        return pa.array(values, arrow_type)

    def canonical(arr: pa.Array, _: FieldSpec) -> Bytes:
        if pa.types.is_boolean(arr.type):
            return _fixed_width_bytes(arr.cast(pa.uint8()), np.dtype(np.uint8))
        return _fixed_width_bytes(arr, np.dtype(numpy_dtype))

    return TypeRule(
        arrow=lambda _: arrow_type,
        pg=lambda _: pg_type,
        from_python=from_python,
        to_pg=_identity_list,
        from_pg=lambda arr, _: arr.cast(arrow_type),
        canonical_bytes=canonical,
    )


def _string_rule() -> TypeRule:
    return TypeRule(
        arrow=lambda _: pa.string(),
        pg=lambda _: "text",
        from_python=_string_array,
        to_pg=_identity_list,
        from_pg=lambda arr, _: arr.cast(pa.string()),
        canonical_bytes=lambda arr, _: _string_bytes(arr),
    )


def _json_from_python(values: Sequence[Any], _: FieldSpec) -> pa.Array:
    return pa.array(
        [None if v is None else canonical_json(json.loads(v) if isinstance(v, str) else v) for v in values],
        pa.string(),
    )


def _json_to_pg(arr: pa.Array, _: FieldSpec) -> list[Any]:
    from psycopg.types.json import Jsonb

    return [None if text is None else Jsonb(text, dumps=_already_dumped) for text in arr.to_pylist()]


def _already_dumped(text: Any) -> str:
    return str(text)


def _json_from_pg(arr: pa.Array, _: FieldSpec) -> pa.Array:
    texts = arr.cast(pa.string()).to_pylist()
    return pa.array([None if t is None else canonical_json_text(t) for t in texts], pa.string())


def _json_rule() -> TypeRule:
    return TypeRule(
        arrow=lambda _: pa.string(),
        pg=lambda _: "jsonb",
        from_python=_json_from_python,
        to_pg=_json_to_pg,
        from_pg=_json_from_pg,
        canonical_bytes=lambda arr, _: _string_bytes(arr),
        to_milvus=lambda arr, _: [None if t is None else json.loads(t) for t in arr.to_pylist()],
    )


def _timestamp_rule() -> TypeRule:
    def from_python(values: Sequence[Any], _: FieldSpec) -> pa.Array:
        return pa.array([parse_timestamptz(v) for v in values], TIMESTAMP_TYPE)

    return TypeRule(
        arrow=lambda _: TIMESTAMP_TYPE,
        pg=lambda _: "timestamptz",
        from_python=from_python,
        to_pg=_identity_list,
        from_pg=lambda arr, _: arr.cast(TIMESTAMP_TYPE),
        canonical_bytes=lambda arr, _: _fixed_width_bytes(arr.cast(pa.int64()), np.dtype("<i8")),
        to_milvus=lambda arr, _: [None if t is None else t.isoformat() for t in arr.to_pylist()],
    )


# ---------------------------------------------------------------------------------------------
# ARRAY of a scalar element type

_ARRAY_ELEMENTS: dict[str, tuple[pa.DataType, str, str]] = {
    "BOOL": (pa.bool_(), "boolean[]", "u1"),
    "INT8": (pa.int8(), "smallint[]", "<i1"),
    "INT16": (pa.int16(), "smallint[]", "<i2"),
    "INT32": (pa.int32(), "integer[]", "<i4"),
    "INT64": (pa.int64(), "bigint[]", "<i8"),
    "FLOAT": (pa.float32(), "real[]", "<f4"),
    "DOUBLE": (pa.float64(), "double precision[]", "<f8"),
    "VARCHAR": (pa.string(), "text[]", ""),
}


def _element(spec: FieldSpec) -> tuple[pa.DataType, str, str]:
    if spec.element_type not in _ARRAY_ELEMENTS:
        raise SchemaError(f"field {spec.name!r}: ARRAY of {spec.element_type} is not supported")
    return _ARRAY_ELEMENTS[spec.element_type]


def _array_arrow(spec: FieldSpec) -> pa.DataType:
    return pa.list_(_element(spec)[0])


def _array_canonical(arr: pa.Array, spec: FieldSpec) -> Bytes:
    element_type, _, numpy_dtype = _element(spec)
    nulls = _null_mask(arr)
    if not numpy_dtype:  # strings: the canonical JSON list text is unambiguous and rare enough
        texts = pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in arr.to_pylist()])
        return _string_bytes(texts)
    lists = pa.concat_arrays([arr]) if arr.offset else arr
    offsets = np.asarray(lists.offsets.to_numpy(), dtype=np.int64)
    child = lists.values
    if pa.types.is_boolean(element_type):
        child = child.cast(pa.uint8())
    width = np.dtype(numpy_dtype).itemsize
    child_bytes = np.ascontiguousarray(
        canonical_floats(child.fill_null(pa.scalar(0, child.type)).to_numpy(zero_copy_only=False).astype(numpy_dtype))
    ).view(np.uint8)
    return _var_bytes(offsets * width, child_bytes, nulls)


def _array_rule() -> TypeRule:
    return TypeRule(
        arrow=_array_arrow,
        pg=lambda spec: _element(spec)[1],
        from_python=lambda values, spec: pa.array(values, _array_arrow(spec)),
        to_pg=_identity_list,
        from_pg=_cast_to(_array_arrow),
        canonical_bytes=_array_canonical,
    )


# ---------------------------------------------------------------------------------------------
# Dense vectors: fixed_size_list in snapshots, native little-endian bytes in PostgreSQL


def _require_dim(spec: FieldSpec) -> int:
    if not spec.dim or spec.dim <= 0:
        raise SchemaError(f"field {spec.name!r}: {spec.type} needs a positive dim")
    return spec.dim


def _unwrap_bytes(value: Any) -> Any:
    """pymilvus returns some vectors as a one-element list holding the bytes."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (bytes, bytearray)):
        return value[0]
    return value


def _stack(values: Sequence[Any], width: int, decode: Callable[[Any], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one vector field as an (n, width) array plus a null mask; decode() turns one value into a row."""
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    present = [decode(_unwrap_bytes(v)) for v in values if v is not None] if nulls.any() else None
    if present is None:
        first = _unwrap_bytes(values[0]) if len(values) else None
        if len(values) and isinstance(first, (list, np.ndarray)) and not isinstance(first, (bytes, bytearray)):
            try:
                matrix = decode(values)  # one C-level conversion for the common list-of-rows case
                if matrix.ndim == 2 and matrix.shape[1] == width:
                    return matrix, nulls
            except (ValueError, TypeError):
                pass
        present = [decode(_unwrap_bytes(v)) for v in values]
    rows = np.zeros((len(values), width), dtype=present[0].dtype if present else np.float32)
    if present:
        block = np.stack([np.asarray(p).reshape(-1) for p in present])
        if block.shape[1] != width:
            raise ValueError(f"vector has {block.shape[1]} values, the field's dim needs {width}")
        rows[~nulls] = block
    return rows, nulls


def _fixed_list(matrix: np.ndarray, nulls: np.ndarray, value_type: pa.DataType) -> pa.Array:
    _n, width = matrix.shape
    values = pa.array(np.ascontiguousarray(matrix).reshape(-1), value_type)
    mask = pa.array(nulls) if nulls.any() else None
    return pa.FixedSizeListArray.from_arrays(values, width, mask=mask)


def _fixed_list_matrix(arr: pa.Array, numpy_dtype: str) -> np.ndarray:
    width = arr.type.list_size
    start = arr.offset * width
    flat = arr.values.slice(start, len(arr) * width)
    return np.asarray(flat.to_numpy(zero_copy_only=False), dtype=numpy_dtype).reshape(len(arr), width)


def _binary_matrix(arr: pa.Array, width: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """bytea/binary column (ADBC) -> (n, width) uint8 and null mask; every non-null value must have width bytes."""
    large = arr.cast(pa.large_binary())
    if large.offset:
        large = pa.concat_arrays([large])
    nulls = _null_mask(large)
    _, offsets_buf, data_buf = large.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[: len(large) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    bad = (~nulls) & (lengths != width)
    if bad.any():
        raise ValueError(f"column {name!r}: stored vector of {int(lengths[bad][0])} bytes, expected {width}")
    if not nulls.any():  # every value has width bytes, back to back: a view instead of a gather
        return data[int(offsets[0]) : int(offsets[-1])].reshape(len(large), width), nulls
    matrix = np.zeros((len(large), width), dtype=np.uint8)
    if (~nulls).any():
        starts = offsets[:-1][~nulls]
        matrix[~nulls] = data[starts[:, None] + np.arange(width)]
    return matrix, nulls


def _float16_decode(value: Any) -> np.ndarray:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(value, dtype="<f2").astype(np.float32)
    return np.asarray(value, dtype=np.float16).astype(np.float32)


def _bfloat16_bits(value: Any) -> np.ndarray:
    """bfloat16 payloads arrive as bytes or as a 2-byte dtype array (ml_dtypes); floats are refused."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(value, dtype="<u2")
    array = np.asarray(value)
    if array.dtype.itemsize == 2 and array.dtype.kind not in "iu":
        return np.ascontiguousarray(array).view("<u2")
    if array.dtype == np.float32:  # already decoded: must be exactly representable
        bits = np.ascontiguousarray(array).view("<u4")
        if np.any(bits & 0xFFFF):
            raise ValueError("bfloat16 vector given as float32 values that bfloat16 cannot hold exactly")
        return (bits >> 16).astype("<u2")
    raise ValueError(f"bfloat16 vector must be bytes or a bfloat16 array, not {array.dtype}")


def _bfloat16_decode(value: Any) -> np.ndarray:
    bits = _bfloat16_bits(value)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _matrix_bytes(matrix: np.ndarray, nulls: np.ndarray) -> Bytes:
    """Canonical bytes of a dense vector column: each present row's exact bits, in storage order."""
    present = np.ascontiguousarray(canonical_floats(matrix[~nulls]))
    width = matrix.shape[1] * matrix.dtype.itemsize
    return np.where(nulls, 0, width).astype(np.int64), present.view(np.uint8).reshape(-1), nulls


def _matrix_rows(matrix: np.ndarray, nulls: np.ndarray, as_bytes: bool = False) -> list[Any]:
    """One value per row as pymilvus takes it: a numpy row (or its raw bytes), None where null."""
    return [None if null else (row.tobytes() if as_bytes else row) for row, null in zip(matrix, nulls, strict=True)]


def _decoder(dtype: str) -> Callable[[Any], np.ndarray]:
    """Decode one vector given as raw little-endian bytes or as a sequence of numbers."""

    def decode(value: Any) -> np.ndarray:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return np.frombuffer(value, dtype=dtype)
        return np.asarray(value, dtype=dtype)

    return decode


def _float_vector_rule(
    decode: Callable[[Any], np.ndarray],
    encode: Callable[[np.ndarray], np.ndarray],
    storage_width: int,
    milvus_takes_bytes: bool = False,
) -> TypeRule:
    """Vectors decoded to float32 in snapshots; `encode` turns float32 rows into the stored encoding.

    pymilvus takes float32/float16 vectors as numpy rows, bfloat16 as raw bytes.
    """

    def to_milvus(arr: pa.Array, spec: FieldSpec) -> list[Any]:
        return _matrix_rows(encode(_fixed_list_matrix(arr, "<f4")), _null_mask(arr), milvus_takes_bytes)

    def from_python(values: Sequence[Any], spec: FieldSpec) -> pa.Array:
        matrix, nulls = _stack(values, _require_dim(spec), decode)
        return _fixed_list(matrix.astype(np.float32, copy=False), nulls, pa.float32())

    def to_pg(arr: pa.Array, spec: FieldSpec) -> list[Any]:
        dim = _require_dim(spec)
        encoded = np.ascontiguousarray(encode(_fixed_list_matrix(arr, "<f4")))
        return _rows_as_bytes(encoded.view(np.uint8).reshape(len(arr), dim * storage_width), _null_mask(arr))

    def from_pg(arr: pa.Array, spec: FieldSpec) -> pa.Array:
        dim = _require_dim(spec)
        raw, nulls = _binary_matrix(arr, dim * storage_width, spec.name)
        # A view of the fetched bytes, not a copy: for float32 the snapshot column shares ADBC's buffer
        # (a copy here held the GIL for a millisecond a batch, which the writer thread waited on).
        matrix = decode(np.ascontiguousarray(raw).reshape(-1).data).reshape(len(arr), dim)
        return _fixed_list(matrix.astype(np.float32, copy=False), nulls, pa.float32())

    def canonical(arr: pa.Array, spec: FieldSpec) -> Bytes:
        return _matrix_bytes(_fixed_list_matrix(arr, "<f4"), _null_mask(arr))

    return TypeRule(
        arrow=lambda spec: pa.list_(pa.float32(), _require_dim(spec)),
        pg=lambda _: "bytea",
        from_python=from_python,
        to_pg=to_pg,
        from_pg=from_pg,
        canonical_bytes=canonical,
        to_milvus=to_milvus,
    )


def _rows_as_bytes(matrix: np.ndarray, nulls: np.ndarray) -> list[Any]:
    """One bytes object per row, through Arrow's C conversion rather than a slicing loop."""
    n, width = matrix.shape
    validity = pa.array(~nulls).buffers()[1] if nulls.any() else None
    fixed = pa.Array.from_buffers(pa.binary(width), n, [validity, pa.py_buffer(np.ascontiguousarray(matrix))])
    return fixed.to_pylist()


def _to_bfloat16(matrix: np.ndarray) -> np.ndarray:
    return (np.ascontiguousarray(matrix, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")


def _int8_vector_rule() -> TypeRule:
    decode = _decoder("i1")

    def from_python(values: Sequence[Any], spec: FieldSpec) -> pa.Array:
        matrix, nulls = _stack(values, _require_dim(spec), decode)
        return _fixed_list(matrix.astype(np.int8, copy=False), nulls, pa.int8())

    def to_pg(arr: pa.Array, spec: FieldSpec) -> list[Any]:
        return _rows_as_bytes(_fixed_list_matrix(arr, "i1").view(np.uint8), _null_mask(arr))

    def from_pg(arr: pa.Array, spec: FieldSpec) -> pa.Array:
        raw, nulls = _binary_matrix(arr, _require_dim(spec), spec.name)
        return _fixed_list(raw.view(np.int8), nulls, pa.int8())

    def canonical(arr: pa.Array, spec: FieldSpec) -> Bytes:
        return _matrix_bytes(_fixed_list_matrix(arr, "i1"), _null_mask(arr))

    def to_milvus(arr: pa.Array, spec: FieldSpec) -> list[Any]:
        return _matrix_rows(_fixed_list_matrix(arr, "i1"), _null_mask(arr))

    return TypeRule(
        arrow=lambda spec: pa.list_(pa.int8(), _require_dim(spec)),
        pg=lambda _: "bytea",
        from_python=from_python,
        to_pg=to_pg,
        from_pg=from_pg,
        canonical_bytes=canonical,
        to_milvus=to_milvus,
    )


def _binary_width(spec: FieldSpec) -> int:
    dim = _require_dim(spec)
    if dim % 8:
        raise SchemaError(f"field {spec.name!r}: BINARY_VECTOR dim {dim} is not a multiple of 8")
    return dim // 8


def _binary_vector_rule() -> TypeRule:
    decode = _decoder("u1")

    def from_python(values: Sequence[Any], spec: FieldSpec) -> pa.Array:
        width = _binary_width(spec)
        matrix, nulls = _stack(values, width, decode)
        validity = pa.array(~nulls).buffers()[1] if nulls.any() else None
        data = pa.py_buffer(np.ascontiguousarray(matrix, dtype=np.uint8))
        return pa.Array.from_buffers(pa.binary(width), len(values), [validity, data])

    def from_pg(arr: pa.Array, spec: FieldSpec) -> pa.Array:
        width = _binary_width(spec)
        raw, nulls = _binary_matrix(arr, width, spec.name)
        validity = pa.array(~nulls).buffers()[1] if nulls.any() else None
        return pa.Array.from_buffers(pa.binary(width), len(arr), [validity, pa.py_buffer(raw)])

    def canonical(arr: pa.Array, spec: FieldSpec) -> Bytes:
        width = _binary_width(spec)
        raw, nulls = _binary_matrix(arr, width, spec.name)
        return np.where(nulls, 0, width).astype(np.int64), raw[~nulls].reshape(-1), nulls

    return TypeRule(
        arrow=lambda spec: pa.binary(_binary_width(spec)),
        pg=lambda _: "bytea",
        from_python=from_python,
        to_pg=_identity_list,
        from_pg=from_pg,
        canonical_bytes=canonical,
    )


# ---------------------------------------------------------------------------------------------
# Sparse vectors: struct of ascending indices and their values


def _sparse_pairs(value: Any) -> tuple[list[int], list[float]]:
    if isinstance(value, dict):
        items = sorted((int(k), float(v)) for k, v in value.items())
    else:
        items = sorted((int(k), float(v)) for k, v in value)
    return [k for k, _ in items], [v for _, v in items]


def _sparse_from_python(values: Sequence[Any], _: FieldSpec) -> pa.Array:
    indices: list[list[int] | None] = []
    weights: list[list[float] | None] = []
    for value in values:
        if value is None:
            indices.append(None)
            weights.append(None)
            continue
        idx, val = _sparse_pairs(value)
        indices.append(idx)
        weights.append(val)
    mask = pa.array([v is None for v in values]) if any(v is None for v in values) else None
    return pa.StructArray.from_arrays(
        [pa.array(indices, pa.list_(pa.uint32())), pa.array(weights, pa.list_(pa.float32()))],
        fields=list(SPARSE_TYPE),
        mask=mask,
    )


def _sparse_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, indices, values, nulls) of a sparse column, all as flat numpy arrays."""
    flat = pa.concat_arrays([arr]) if arr.offset else arr
    nulls = _null_mask(flat)
    idx_lists = flat.field("indices")
    val_lists = flat.field("values")
    offsets = np.asarray(idx_lists.offsets.to_numpy(), dtype=np.int64)
    indices = np.asarray(idx_lists.values.to_numpy(zero_copy_only=False), dtype="<u4")
    values = np.asarray(val_lists.values.to_numpy(zero_copy_only=False), dtype="<f4")
    return offsets, indices, values, nulls


def _sparse_to_pg(arr: pa.Array, _: FieldSpec) -> list[Any]:
    """Each row as one little-endian blob: count, indices, values (assembled for the whole column)."""
    offsets, indices, values, nulls = _sparse_parts(arr)
    counts = np.diff(offsets)
    sizes = np.where(nulls, 0, 4 + 8 * counts)
    starts = np.concatenate(([0], np.cumsum(sizes)))
    out = np.zeros(int(starts[-1]), dtype=np.uint8)
    present = ~nulls
    header_at = starts[:-1][present]
    out[header_at[:, None] + np.arange(4)] = counts[present].astype("<u4").view(np.uint8).reshape(-1, 4)
    element_rows = np.repeat(np.arange(len(counts)), counts)
    element_rank = np.arange(len(indices)) - offsets[element_rows]
    idx_at = starts[element_rows] + 4 + 4 * element_rank
    val_at = idx_at + 4 * counts[element_rows]
    out[idx_at[:, None] + np.arange(4)] = indices.astype("<u4").view(np.uint8).reshape(-1, 4)
    out[val_at[:, None] + np.arange(4)] = values.astype("<f4").view(np.uint8).reshape(-1, 4)
    validity = pa.array(present).buffers()[1] if nulls.any() else None
    blobs = pa.Array.from_buffers(
        pa.large_binary(), len(arr), [validity, pa.py_buffer(starts.astype(np.int64)), pa.py_buffer(out)]
    )
    return blobs.to_pylist()


def _sparse_from_pg(arr: pa.Array, _: FieldSpec) -> pa.Array:
    """Decode the blobs of a whole column at once into the struct-of-lists snapshot form."""
    large = arr.cast(pa.large_binary())
    if large.offset:
        large = pa.concat_arrays([large])
    nulls = _null_mask(large)
    _, offsets_buf, data_buf = large.buffers()
    starts = np.frombuffer(offsets_buf, dtype=np.int64)[: len(large) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    heads = starts[:-1][~nulls]
    counts = np.zeros(len(large), dtype=np.int64)
    counts[~nulls] = data[heads[:, None] + np.arange(4)].copy().view("<u4").reshape(-1)
    list_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    element_rows = np.repeat(np.arange(len(counts)), counts)
    element_rank = np.arange(int(counts.sum())) - list_offsets[element_rows]
    idx_at = starts[element_rows] + 4 + 4 * element_rank
    val_at = idx_at + 4 * counts[element_rows]
    indices = data[idx_at[:, None] + np.arange(4)].copy().view("<u4").reshape(-1)
    values = data[val_at[:, None] + np.arange(4)].copy().view("<f4").reshape(-1)
    mask = pa.array(nulls) if nulls.any() else None
    offsets_array = pa.array(list_offsets, pa.int32())
    return pa.StructArray.from_arrays(
        [
            pa.ListArray.from_arrays(offsets_array, pa.array(indices, pa.uint32())),
            pa.ListArray.from_arrays(offsets_array, pa.array(values, pa.float32())),
        ],
        fields=list(SPARSE_TYPE),
        mask=mask,
    )


def _sparse_canonical(arr: pa.Array, _: FieldSpec) -> Bytes:
    offsets, indices, values, nulls = _sparse_parts(arr)
    from milvusdiff.types.digest import concat_row_bytes

    idx_part = _var_bytes(offsets * 4, indices.view(np.uint8), nulls)
    val_part = _var_bytes(offsets * 4, canonical_floats(values).view(np.uint8), nulls)
    lengths, data = concat_row_bytes([idx_part, val_part])
    return lengths, data, nulls


def _sparse_rule() -> TypeRule:
    return TypeRule(
        arrow=lambda _: SPARSE_TYPE,
        pg=lambda _: "bytea",
        from_python=_sparse_from_python,
        to_pg=_sparse_to_pg,
        from_pg=_sparse_from_pg,
        canonical_bytes=_sparse_canonical,
        to_milvus=lambda arr, _: [
            None if v is None else dict(zip(v["indices"], v["values"], strict=False)) for v in arr.to_pylist()
        ],
    )


# ---------------------------------------------------------------------------------------------
# The map

RULES: dict[str, TypeRule] = {
    "BOOL": _scalar_rule(pa.bool_(), "boolean", "u1"),
    "INT8": _scalar_rule(pa.int8(), "smallint", "<i1"),
    "INT16": _scalar_rule(pa.int16(), "smallint", "<i2"),
    "INT32": _scalar_rule(pa.int32(), "integer", "<i4"),
    "INT64": _scalar_rule(pa.int64(), "bigint", "<i8"),
    "FLOAT": _scalar_rule(pa.float32(), "real", "<f4"),
    "DOUBLE": _scalar_rule(pa.float64(), "double precision", "<f8"),
    "VARCHAR": _string_rule(),
    "TEXT": _string_rule(),
    "GEOMETRY": _string_rule(),
    "JSON": _json_rule(),
    "TIMESTAMPTZ": _timestamp_rule(),
    "ARRAY": _array_rule(),
    "FLOAT_VECTOR": _float_vector_rule(_decoder("<f4"), lambda m: m.astype("<f4"), 4),
    "FLOAT16_VECTOR": _float_vector_rule(_float16_decode, lambda m: m.astype("<f2"), 2),
    "BFLOAT16_VECTOR": _float_vector_rule(_bfloat16_decode, _to_bfloat16, 2, milvus_takes_bytes=True),
    "INT8_VECTOR": _int8_vector_rule(),
    "BINARY_VECTOR": _binary_vector_rule(),
    "SPARSE_FLOAT_VECTOR": _sparse_rule(),
}

# The dynamic field is held like JSON everywhere.
META_FIELD_TYPE = "JSON"

VECTOR_TYPES = frozenset(
    {"FLOAT_VECTOR", "FLOAT16_VECTOR", "BFLOAT16_VECTOR", "INT8_VECTOR", "BINARY_VECTOR", "SPARSE_FLOAT_VECTOR"}
)
PRIMARY_KEY_TYPES = frozenset({"INT64", "VARCHAR"})


def rule(spec: FieldSpec) -> TypeRule:
    """The rule for a field, or a SchemaError that names the field and its type."""
    found = RULES.get(spec.type)
    if found is None:
        raise SchemaError(f"field {spec.name!r}: Milvus type {spec.type} is not supported by milvusdiff")
    if spec.type == "ARRAY":
        _element(spec)
    if spec.type in VECTOR_TYPES and spec.type != "SPARSE_FLOAT_VECTOR":
        _require_dim(spec)
    if spec.type == "BINARY_VECTOR":
        _binary_width(spec)
    return found


def arrow_field(spec: FieldSpec) -> pa.Field:
    """The snapshot column of a field, tagged with its Milvus type so readers know what a column was."""
    return pa.field(spec.name, rule(spec).arrow(spec), nullable=True, metadata={TYPE_META: spec.type})


def validate_field(spec: FieldSpec) -> None:
    """Refuse, before anything is created, what cannot be mirrored exactly."""
    rule(spec)
    if spec.is_primary and spec.type not in PRIMARY_KEY_TYPES:
        raise SchemaError(f"field {spec.name!r}: primary key of type {spec.type} (Milvus allows INT64 or VARCHAR)")


def coerce_pg_column(arr: pa.Array, spec: FieldSpec) -> pa.Array:
    """A column read from PostgreSQL in its snapshot form."""
    return rule(spec).from_pg(arr, spec)


def ensure_arrow_type(arr: pa.Array, spec: FieldSpec) -> pa.Array:
    """Cast a column that holds the right values in a compatible Arrow type (e.g. large_string)."""
    target = rule(spec).arrow(spec)
    return arr if arr.type == target else pc.cast(arr, target)
