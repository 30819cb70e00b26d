"""Bucketed snapshots of in-memory tables, written by the export's own preparer and writer.

The every-type truth tables hold types Milvus Lite rejects (float16, bfloat16, int8 and binary
vectors), so they cannot go through a store; this writes them exactly as `export --buckets N` would.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from milvusdiff.export.tables import write_table_snapshot
from milvusdiff.snapshot_format import PARTITION_COLUMN
from milvusdiff.types.spec import CollectionSpec


def write_bucketed(
    table: pa.Table, spec: CollectionSpec, out: Path, buckets: int, source: str, batch_rows: int = 40
) -> Path:
    batches = (pa.Table.from_batches([b], schema=table.schema) for b in table.to_batches(max_chunksize=batch_rows))
    with_partition = PARTITION_COLUMN in table.column_names
    write_table_snapshot(
        batches, spec, out, source=source, buckets=buckets, with_partition=with_partition, rows_per_part=25
    )
    return out
