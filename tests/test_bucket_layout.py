"""The bucket layout's definitions, checked against a plain-Python reading of the documented bytes.

Another engine (Spark, a user's script) must be able to recompute buckets and sums from the docstring
of milvusdiff/types/buckets.py alone; these tests are that reading, done with hashlib.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from milvusdiff.types.buckets import DigestSums, bucket_ids, bucket_sums, placement_digests, to_hex
from milvusdiff.types.spec import FieldSpec

INT_KEY = FieldSpec("id", "INT64", is_primary=True)
TEXT_KEY = FieldSpec("pk", "VARCHAR", is_primary=True, max_length=64)


def reference_bucket(key_bytes: bytes, n: int) -> int:
    return int.from_bytes(hashlib.md5(key_bytes).digest()[:8], "little") % n


def test_int64_keys_hash_their_little_endian_bytes() -> None:
    keys = [0, 1, -1, 2**63 - 1, -(2**63), 123456789]
    found = bucket_ids(pa.array(keys, pa.int64()), INT_KEY, 64).tolist()
    assert found == [reference_bucket(k.to_bytes(8, "little", signed=True), 64) for k in keys]


def test_varchar_keys_hash_their_utf8_bytes() -> None:
    keys = ["", "a", "ключ", "键🔑", "x" * 300]
    found = bucket_ids(pa.array(keys, pa.string()), TEXT_KEY, 7).tolist()
    assert found == [reference_bucket(k.encode("utf-8"), 7) for k in keys]


def test_buckets_spread_keys_evenly() -> None:
    counts = np.bincount(bucket_ids(pa.array(np.arange(64_000), pa.int64()), INT_KEY, 64), minlength=64)
    assert counts.min() > 800 and counts.max() < 1200


def _digests(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.bytes(16) for _ in range(n)]


def reference_sum(digests: list[bytes]) -> str:
    return f"{sum(int.from_bytes(d, 'little') for d in digests) % (1 << 128):032x}"


def test_digest_sum_is_the_documented_sum_mod_2_128_in_any_order_and_batches() -> None:
    digests = _digests(1000, 1) + [b"\xff" * 16] * 5  # all-ones digests force carries out of every limb
    buckets = np.array([i % 3 for i in range(len(digests))], dtype=np.int64)
    sums = DigestSums(3)
    for start in (0, 400):  # two batches, the second in reverse order
        end = 400 if start == 0 else len(digests)
        chunk = list(range(start, end))[:: 1 if start == 0 else -1]
        array = pa.array([digests[i] for i in chunk], pa.binary(16))
        sums.add(np.bincount(buckets[chunk], minlength=3), bucket_sums(array, buckets[chunk], 3))
    for bucket in range(3):
        members = [d for d, b in zip(digests, buckets, strict=True) if b == bucket]
        assert sums.hex()[bucket] == reference_sum(members)
        assert sums.rows[bucket] == len(members)


def test_a_duplicated_row_changes_the_sum_unlike_xor() -> None:
    row = _digests(1, 2)[0]
    once, twice = DigestSums(1), DigestSums(1)
    once.add(np.array([1]), bucket_sums(pa.array([row], pa.binary(16)), np.zeros(1, np.int64), 1))
    twice.add(np.array([2]), bucket_sums(pa.array([row, row], pa.binary(16)), np.zeros(2, np.int64), 1))
    assert once.hex() != twice.hex()
    assert twice.hex()[0] == reference_sum([row, row])


def test_null_digests_add_nothing() -> None:
    array = pa.array([b"\x01" * 16, None], pa.binary(16))
    assert to_hex(bucket_sums(array, np.zeros(2, np.int64), 1)[0]) == reference_sum([b"\x01" * 16])


def test_placement_digest_is_md5_of_digest_then_partition() -> None:
    digest = _digests(1, 3)[0]
    found = placement_digests(pa.array([digest], pa.binary(16)), pa.array(["p1"])).to_pylist()
    assert found == [hashlib.md5(digest + b"p1").digest()]
