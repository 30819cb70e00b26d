"""Bucketed snapshots of in-memory tables, written by the export's own preparer and writer.

The every-type truth tables hold types Milvus Lite rejects (float16, bfloat16, int8 and binary
vectors), so they cannot go through a store; this writes them exactly as `export --buckets N` would.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from milvusdiff.export.manifest import Manifest
from milvusdiff.export.prepare import Preparer
from milvusdiff.export.writer import SnapshotWriter
from milvusdiff.types.buckets import HASH_NAME
from milvusdiff.types.spec import DIGEST_COLUMN, PARTITION_COLUMN, CollectionSpec


def write_bucketed(
    table: pa.Table, spec: CollectionSpec, out: Path, buckets: int, source: str, batch_rows: int = 40
) -> Path:
    with_partition = PARTITION_COLUMN in table.column_names
    schema = table.schema.with_metadata({**(table.schema.metadata or {}), b"milvusdiff.source": source.encode()})
    table = table.replace_schema_metadata(schema.metadata)
    preparer = Preparer(spec, digest=True, buckets=buckets)
    writer = SnapshotWriter(out, preparer.schema(schema), spec.primary.name, buckets=buckets, rows_per_part=25)
    for batch in table.to_batches(max_chunksize=batch_rows):
        writer.write(preparer(pa.Table.from_batches([batch], schema=schema)))
    files, keys = writer.close_data()
    manifest = Manifest(
        source=source,
        collection=spec.name,
        spec=spec.to_dict(),
        primary_key=spec.primary.name,
        primary_key_type=spec.primary.type,
        with_partition=with_partition,
        rows_written=writer.rows,
        distinct_keys=keys.distinct_keys,
        duplicate_keys=keys.duplicate_keys,
        duplicate_rows=keys.duplicate_rows,
        files=files,
        digest_column=DIGEST_COLUMN,
        buckets=buckets,
        bucket_hash=HASH_NAME,
        bucket_stats=writer.bucket_stats(with_partition=with_partition),
    )
    writer.publish(manifest)
    return out
