"""Bucket layout: which bucket a primary key falls in, and the order-independent sum of a bucket's digests.

Every engine (the exporter here, DuckDB, Spark, a user's own script) must compute the same values, so
the definitions are spelled out in bytes:

- canonical key bytes: an INT64 key is its 8 bytes, little-endian two's complement; a VARCHAR key is
  its UTF-8 bytes, with no length prefix and no terminator (the type map's canonical bytes of the key).
- bucket(key) = int.from_bytes(md5(key_bytes)[:8], "little") % N
- digest_sum of a set of rows = (sum over the rows of int.from_bytes(row_digest, "little")) mod 2**128,
  written as 32 lowercase hex digits of that integer (most significant first). Unlike XOR, where two
  equal rows cancel, a duplicated row changes the sum; the row count is kept beside it as well.
- placement_sum (snapshots with a `$partition` column only): the same sum over
  md5(row_digest || UTF-8 bytes of the row's partition), because the row digest does not cover the
  partition a row lives in.

Sums are accumulated in four 32-bit limbs per bucket with numpy, so no Python loop runs per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.types.digest import DIGEST_TYPE, md5_blobs, md5_of
from milvusdiff.types.spec import FieldSpec
from milvusdiff.types.typemap import rule

HASH_NAME = "md5-le64"  # recorded in the manifest: the bucket function above
MAX_BUCKETS = 4096  # each bucket keeps a part file open while exporting
_LIMBS = 4
_LIMB_MASK = np.uint64(0xFFFFFFFF)
# float64 bincount weights are exact below 2**53: limbs < 2**32 leave room for 2**21 rows per call
_ROWS_PER_BINCOUNT = 1 << 20


def bucket_ids(keys: pa.Array | pa.ChunkedArray, key_field: FieldSpec, buckets: int) -> np.ndarray:
    """The bucket (int64 in [0, buckets)) of every key, by the definition in the module docstring."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    lengths, data, _ = rule(key_field).canonical_bytes(keys, key_field)
    hashed = _digest_bytes(md5_blobs(lengths, data))
    return (hashed[:, :8].copy().view("<u8").reshape(-1) % np.uint64(buckets)).astype(np.int64)


def placement_digests(digests: pa.Array, partitions: pa.Array) -> pa.FixedSizeBinaryArray:
    """md5(row digest || UTF-8 partition) per row: what placement_sum adds up."""
    joined = pc.binary_join_element_wise(digests.cast(pa.binary()), partitions.cast(pa.binary()), b"")
    return md5_of(joined)


def _digest_bytes(digests: pa.Array) -> np.ndarray:
    """(n, 16) uint8 view of a fixed_size_binary(16) array without nulls."""
    digests = digests.cast(DIGEST_TYPE)
    start = digests.offset * 16
    raw = np.frombuffer(digests.buffers()[1], dtype=np.uint8)[start : start + 16 * len(digests)]
    return raw.reshape(-1, 16)


def bucket_sums(digests: pa.Array, buckets: np.ndarray, n_buckets: int) -> np.ndarray:
    """Per bucket, the digests' sum as (n_buckets, 4) uint64 limbs, not yet carried (see DigestSums.add).
    Null digests (deleted keys in a journal snapshot) add nothing."""
    if digests.null_count:
        valid = pc.is_valid(digests).to_numpy(zero_copy_only=False)
        digests, buckets = digests.filter(pa.array(valid)), buckets[valid]
    limbs = _digest_bytes(digests).view("<u4").astype(np.float64)
    sums = np.zeros((n_buckets, _LIMBS), dtype=np.uint64)
    for start in range(0, len(buckets), _ROWS_PER_BINCOUNT):
        part = slice(start, start + _ROWS_PER_BINCOUNT)
        for limb in range(_LIMBS):
            counted = np.bincount(buckets[part], weights=limbs[part, limb], minlength=n_buckets)
            sums[:, limb] += counted.astype(np.uint64)
    return sums


class DigestSums:
    """Running per-bucket row counts and digest sums mod 2**128."""

    def __init__(self, n_buckets: int) -> None:
        self.rows = np.zeros(n_buckets, dtype=np.int64)
        self.limbs = np.zeros((n_buckets, _LIMBS), dtype=np.uint64)

    def add(self, rows: np.ndarray, limbs: np.ndarray) -> None:
        self.rows += rows
        self.limbs += limbs
        for limb in range(_LIMBS - 1):  # carry, so no limb ever overflows
            self.limbs[:, limb + 1] += self.limbs[:, limb] >> np.uint64(32)
            self.limbs[:, limb] &= _LIMB_MASK
        self.limbs[:, _LIMBS - 1] &= _LIMB_MASK  # mod 2**128

    def hex(self) -> list[str]:
        return [to_hex(row) for row in self.limbs]


def to_hex(limbs: np.ndarray) -> str:
    value = sum(int(limb) << (32 * i) for i, limb in enumerate(limbs)) % (1 << 128)
    return f"{value:032x}"
