"""Query vectors for search-check, seeded: the collection's own vectors with a little noise, or random ones.

Sampled queries land where the data is, so their neighbourhoods are dense and ties and near-ties
are common: the hard case for recall. Noise keeps a query from coinciding with a stored vector.
Random queries (drawn to match the data's scale) probe the space between.

Queries are built as a snapshot column of the field's own type and passed through the type map's
stored encoding and back, so a float16 or bfloat16 query is rounded exactly as Milvus will hold
it: the brute force scores the very values Milvus receives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from milvusdiff.checks.brute_force import prepare
from milvusdiff.checks.candidates import Candidates
from milvusdiff.errors import CheckError
from milvusdiff.types.spec import FieldSpec
from milvusdiff.types.typemap import rule

MODES = ("sample", "random")
_NOISE = 0.01  # of the data's standard deviation
_BIT_FLIP = 0.02
_STATS_ROWS = 1000


def _sample(candidates: Candidates, field: FieldSpec, count: int, rng: Any) -> tuple[list[Any], pa.Array]:
    """`count` stored vectors (with replacement only when the collection has fewer) and their keys."""
    keys = candidates.stored_keys()
    if len(keys) == 0:
        raise CheckError(f"the shadow holds no {field.name!r} vectors to search for")
    picks = rng.permutation(len(keys))[:count] if count <= len(keys) else rng.integers(0, len(keys), count)
    chosen = keys.take(pa.array(picks)).to_pylist()
    rows = candidates.lookup(chosen, filtered=False)
    position = {k: i for i, k in enumerate(rows.column(0).to_pylist())}
    order = pa.array([position[k] for k in chosen])
    return chosen, rows.column(1).combine_chunks().take(order)


def make_queries(
    candidates: Candidates, field: FieldSpec, count: int, seed: int, mode: str
) -> tuple[pa.Array, list[Any] | None]:
    """(query vectors as a snapshot column of the field's type, the key each was sampled from or None)."""
    if mode not in MODES:
        raise CheckError(f"unknown query mode {mode!r}: choose one of {', '.join(MODES)}")
    rng = np.random.default_rng(seed)
    if mode == "sample":
        sources, stored = _sample(candidates, field, count, rng)
        return _exact(_noisy(stored, field, rng), field), sources
    _, stored = _sample(candidates, field, min(count, _STATS_ROWS), rng)
    return _exact(_random_like(stored, field, count, rng), field), None


def _noisy(stored: pa.Array, field: FieldSpec, rng: Any) -> pa.Array:
    if field.type == "SPARSE_FLOAT_VECTOR":
        values = stored.field("values")
        flat = np.asarray(values.values.to_numpy(zero_copy_only=False), dtype=np.float32)
        jittered = (flat * (1 + rng.normal(0, _NOISE, len(flat)))).astype(np.float32)
        return _sparse(stored.field("indices"), pa.ListArray.from_arrays(values.offsets, pa.array(jittered)))
    if field.type == "BINARY_VECTOR":
        bits = prepare(stored, field, "HAMMING").dense
        assert bits is not None
        flipped = np.logical_xor(bits > 0, rng.random(bits.shape) < _BIT_FLIP)
        return _binary(flipped, field)
    matrix = prepare(stored, field, "L2").dense
    assert matrix is not None
    return _dense(matrix + rng.normal(0, _NOISE * (matrix.std() or 1.0), matrix.shape), field)


def _random_like(stored: pa.Array, field: FieldSpec, count: int, rng: Any) -> pa.Array:
    if field.type == "SPARSE_FLOAT_VECTOR":
        indices = np.unique(stored.field("indices").values.to_numpy(zero_copy_only=False))
        values = stored.field("values").values.to_numpy(zero_copy_only=False)
        size = max(1, int(np.median(np.diff(stored.field("indices").offsets.to_numpy()))))
        rows = [np.sort(rng.choice(indices, min(size, len(indices)), replace=False)) for _ in range(count)]
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
        flat = rng.uniform(values.min(), values.max(), int(offsets[-1])).astype(np.float32)
        index_lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(rows), pa.uint32()))
        return _sparse(index_lists, pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)))
    if field.type == "BINARY_VECTOR":
        return _binary(rng.random((count, field.dim or 0)) < 0.5, field)
    matrix = prepare(stored, field, "L2").dense
    assert matrix is not None
    return _dense(rng.normal(matrix.mean(axis=0), matrix.std(axis=0) + 1e-12, (count, matrix.shape[1])), field)


def _dense(matrix: np.ndarray, field: FieldSpec) -> pa.Array:
    if field.type == "INT8_VECTOR":
        values = pa.array(np.clip(np.rint(matrix), -128, 127).astype(np.int8).reshape(-1))
    else:
        values = pa.array(matrix.astype(np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(values, matrix.shape[1])


def _binary(bits: np.ndarray, field: FieldSpec) -> pa.Array:
    packed = np.packbits(bits.astype(np.uint8), axis=1)
    return pa.Array.from_buffers(pa.binary(packed.shape[1]), len(packed), [None, pa.py_buffer(packed.tobytes())])


def _sparse(indices: pa.Array, values: pa.Array) -> pa.Array:
    return pa.StructArray.from_arrays(
        [indices.cast(pa.list_(pa.uint32())), values.cast(pa.list_(pa.float32()))], names=["indices", "values"]
    )


def _exact(queries: pa.Array, field: FieldSpec) -> pa.Array:
    """Through the stored encoding and back: the values Milvus will hold for these queries."""
    type_rule = rule(field)
    return type_rule.from_pg(pa.array(type_rule.to_pg(queries, field), pa.binary()), field)


def milvus_queries(queries: pa.Array, field: FieldSpec) -> list[Any]:
    """The query vectors in the form pymilvus' search takes."""
    return rule(field).to_milvus(queries, field)
