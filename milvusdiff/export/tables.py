"""A snapshot of rows already in snapshot form (Arrow tables), written exactly as an export writes one.

For rows that come from somewhere other than a store: benchmarks and tests that need large or
exotic bucketed snapshots (types Milvus Lite rejects), or a snapshot rebuilt from another system's
Parquet. The tables go through the export's own preparer and writer: `$digest`, buckets, key census,
checksums and manifest are the same as `export_collection` would produce for the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from milvusdiff import __version__
from milvusdiff.export.manifest import Manifest
from milvusdiff.export.prepare import Preparer
from milvusdiff.export.sources import tag_source
from milvusdiff.export.writer import DEFAULT_ROWS_PER_PART, SnapshotWriter
from milvusdiff.snapshot_format import DIGEST_COLUMN, PARTITION_COLUMN
from milvusdiff.types.buckets import HASH_NAME
from milvusdiff.types.convert import snapshot_schema
from milvusdiff.types.spec import CollectionSpec


def write_table_snapshot(
    tables: Iterable[pa.Table],
    spec: CollectionSpec,
    out: Path,
    *,
    source: str,
    buckets: int | None = None,
    with_partition: bool = False,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
) -> Manifest:
    """Write `tables` (snapshot form of `spec`, `$partition` last when `with_partition`) to `out`."""
    schema = tag_source(snapshot_schema(spec, with_partition=with_partition), source)
    preparer = Preparer(spec, digest=True, buckets=buckets)
    writer = SnapshotWriter(
        out, preparer.schema(schema), spec.primary.name, buckets=buckets, rows_per_part=rows_per_part
    )
    try:
        for table in tables:
            writer.write(preparer(table.select(schema.names).cast(schema)))
        files, keys = writer.close_data()
        manifest = Manifest(
            source=source,
            collection=spec.name,
            spec=spec.to_dict(),
            primary_key=spec.primary.name,
            primary_key_type=spec.primary.type,
            with_partition=with_partition and PARTITION_COLUMN in schema.names,
            rows_written=writer.rows,
            distinct_keys=keys.distinct_keys,
            duplicate_keys=keys.duplicate_keys,
            duplicate_rows=keys.duplicate_rows,
            duplicate_key_sample=keys.duplicate_sample,
            files=files,
            notes=["written from Arrow tables, not read from a store"],
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            milvusdiff_version=__version__,
            digest_column=DIGEST_COLUMN,
            buckets=buckets,
            bucket_hash=HASH_NAME if buckets else None,
            bucket_stats=writer.bucket_stats(with_partition=with_partition),
        )
        writer.publish(manifest)
    except BaseException:
        writer.discard()
        raise
    return manifest
