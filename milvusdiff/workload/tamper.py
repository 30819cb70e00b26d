"""Small, certain changes to one value: what `corrupt` writes into one store behind the other's back.

Every change is guaranteed to alter the value (a +1 that a float would absorb becomes the next
representable number instead), so a drill never "corrupts" a row into the same row. Vectors are
changed in the encoding the PostgreSQL shadow stores (the type map's bytes), which both stores'
values convert to and from exactly, so one function per vector type serves both stores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from milvusdiff.types.spec import FieldSpec
from milvusdiff.types.typemap import rule
from milvusdiff.workload.schemas import INT_RANGES

SCALAR_TYPES = frozenset({"BOOL", "FLOAT", "DOUBLE", "VARCHAR", *INT_RANGES})
_FLOAT_DELTA = 0.1


def bump(f: FieldSpec, value: Any) -> Any:
    """A different value of the same scalar field (a null becomes a concrete value)."""
    if f.type == "BOOL":
        return True if value is None else not value
    if f.type in INT_RANGES:
        if value is None:
            return 1
        return value + 1 if value < INT_RANGES[f.type][1] else value - 1
    if f.type in ("FLOAT", "DOUBLE"):
        dtype = np.float32 if f.type == "FLOAT" else np.float64
        old = dtype(0 if value is None else value)
        new = dtype(old + dtype(1))
        return float(new if new != old else np.nextafter(old, dtype(0) if old > 0 else dtype(1)))
    text = "" if value is None else str(value)
    if len(text.encode("utf-8")) + 1 <= (f.max_length or 0):
        return text + "*"
    return text[:-1] + ("#" if text.endswith("*") else "*")


def to_blob(f: FieldSpec, value: Any) -> bytes:
    """A vector value as pymilvus returns or takes it -> the bytes the shadow table stores."""
    r = rule(f)
    blob = r.to_pg(r.from_python([value], f), f)[0]
    return bytes(blob)


def from_blob(f: FieldSpec, blob: bytes) -> Any:
    """Shadow bytes -> the vector value pymilvus takes, through the type map (exact both ways)."""
    r = rule(f)
    return r.to_milvus(r.from_pg(pa.array([blob], pa.binary()), f), f)[0]


def perturb(f: FieldSpec, blob: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """Change one element of a vector (given as shadow bytes); returns the new bytes and what changed."""
    if f.type == "SPARSE_FLOAT_VECTOR":
        indices, values = _sparse_parts(blob)
        j = int(rng.integers(len(values)))
        old = values[j]
        values = values.copy()
        values[j] = _changed(old, np.float32)
        count = np.array([len(values)], dtype="<u4")
        new_blob = count.tobytes() + indices.astype("<u4").tobytes() + values.astype("<f4").tobytes()
        return new_blob, f"[{int(indices[j])}] {float(old)!r} -> {float(values[j])!r}"
    if f.type == "BINARY_VECTOR":
        bits = np.frombuffer(blob, dtype=np.uint8).copy()
        i = int(rng.integers(len(bits) * 8))
        bits[i // 8] ^= np.uint8(1 << (7 - i % 8))
        return bits.tobytes(), f"bit {i} flipped"
    if f.type == "INT8_VECTOR":
        values8 = np.frombuffer(blob, dtype=np.int8).copy()
        i = int(rng.integers(len(values8)))
        old8 = int(values8[i])
        values8[i] = old8 + 1 if old8 < 127 else old8 - 1
        return values8.tobytes(), f"[{i}] {old8} -> {int(values8[i])}"
    if f.type == "BFLOAT16_VECTOR":
        raw = np.frombuffer(blob, dtype="<u2").copy()
        i = int(rng.integers(len(raw)))
        old_bits = raw[i]
        raw[i] ^= np.uint16(1)  # the lowest mantissa bit: the smallest change bfloat16 can make
        return raw.tobytes(), f"[{i}] {_bf16(old_bits)!r} -> {_bf16(raw[i])!r}"
    dtype = np.float16 if f.type == "FLOAT16_VECTOR" else np.float32
    floats = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    i = int(rng.integers(len(floats)))
    old_value = floats[i]
    floats[i] = _changed(old_value, dtype)
    return floats.astype(
        np.dtype(dtype).newbyteorder("<")
    ).tobytes(), f"[{i}] {float(old_value)!r} -> {float(floats[i])!r}"


def _changed(old: Any, dtype: Any) -> Any:
    new = dtype(old + dtype(_FLOAT_DELTA))
    return new if new != old else np.nextafter(dtype(old), dtype(np.inf))


def _bf16(bits: Any) -> float:
    return float(np.array([int(bits) << 16], dtype=np.uint32).view(np.float32)[0])


def _sparse_parts(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The shadow's sparse layout: count (uint32), indices (uint32[count]), values (float32[count])."""
    n = int(np.frombuffer(blob, dtype="<u4", count=1)[0])
    indices = np.frombuffer(blob, dtype="<u4", count=n, offset=4)
    values = np.frombuffer(blob, dtype="<f4", count=n, offset=4 + 4 * n).astype(np.float32)
    return indices, values
