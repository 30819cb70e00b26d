"""Per-batch work done in the reader threads: the `$digest` column, and the bucket layout when asked for.

Hashing runs beside the reads (numpy and DuckDB's md5 release the GIL), so the writer thread only
writes. A bucketed batch leaves here split into one table per bucket, with the per-bucket row counts
and digest sums (types/buckets.py), so the writer only buffers, writes and adds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.snapshot_format import DIGEST_COLUMN, PARTITION_COLUMN
from milvusdiff.types.buckets import bucket_ids, bucket_sums, placement_digests
from milvusdiff.types.digest import DIGEST_TYPE, DIGEST_VERSION, DIGEST_VERSION_KEY, row_digests
from milvusdiff.types.spec import CollectionSpec

JOURNAL_DIGEST = "digest"  # the journal snapshot's own digest column (null unless EXISTS)


@dataclass(frozen=True)
class Batch:
    """A table ready for the writer. Bucketed: `parts[b]` holds bucket b's rows (None when it has none),
    each its own compact copy, so a part waiting in the writer's buffer never pins the whole batch."""

    table: pa.Table
    parts: list[pa.Table | None] | None = None
    rows: np.ndarray | None = None  # per bucket
    digest_limbs: np.ndarray | None = None  # per bucket, see types/buckets.bucket_sums
    placement_limbs: np.ndarray | None = None


@dataclass(frozen=True)
class Preparer:
    """`digest`: append `$digest` (Milvus and PostgreSQL rows); `buckets`: lay rows out by key bucket."""

    spec: CollectionSpec
    digest: bool
    buckets: int | None = None

    def schema(self, schema: pa.Schema) -> pa.Schema:
        if not self.digest:
            return schema
        return schema.append(pa.field(DIGEST_COLUMN, DIGEST_TYPE, metadata={DIGEST_VERSION_KEY: str(DIGEST_VERSION)}))

    def __call__(self, table: pa.Table) -> Batch:
        if self.digest:
            table = table.append_column(DIGEST_COLUMN, row_digests(table, self.spec))
        if not self.buckets:
            return Batch(table)
        bucket = bucket_ids(table.column(self.spec.primary.name), self.spec.primary, self.buckets)
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(self.buckets + 1))
        parts = [table.take(pa.array(order[lo:hi])) if hi > lo else None for lo, hi in itertools.pairwise(bounds)]
        digests = table.column(DIGEST_COLUMN if self.digest else JOURNAL_DIGEST).combine_chunks()
        if not self.digest:  # a journal snapshot: sum the intended rows (EXISTS) only
            exists = pc.equal(table.column("state"), "EXISTS").fill_null(False).combine_chunks()
            digests = pc.if_else(exists, digests, pa.nulls(len(digests), digests.type))
        placement = None
        if PARTITION_COLUMN in table.column_names:
            moved = placement_digests(digests, table.column(PARTITION_COLUMN).combine_chunks())
            placement = bucket_sums(moved, bucket, self.buckets)
        sums = bucket_sums(digests, bucket, self.buckets)
        return Batch(table, parts, np.diff(bounds).astype(np.int64), sums, placement)


def prepared(producers: list[Iterable[pa.Table]], preparer: Preparer) -> list[Iterator[Batch]]:
    """Each producer's tables, prepared in that producer's own thread (run_producers runs the generator there)."""
    return [_prepare(producer, preparer) for producer in producers]


def _prepare(producer: Iterable[pa.Table], preparer: Preparer) -> Iterator[Batch]:
    tables = iter(producer)
    try:
        for table in tables:
            yield preparer(table)
    finally:
        close = getattr(tables, "close", None)
        if close is not None:  # the source's cleanup (its cursor) runs now, in this reader's thread
            close()
