"""The snapshot format: every name a snapshot carries on disk, and its version, in one place.

Export writes these names and compare, validate, repair and the notebook read them back, possibly
years later and from another milvusdiff release; a name spelled twice is a format that can drift.
The module imports nothing heavy (no pyarrow, no pymilvus) so that any layer can use it.

`FORMAT_VERSION` is written into every manifest (`format`) and into every Parquet file's schema
metadata (`milvusdiff.format`). A reader accepts every version up to its own and refuses a newer
or unreadable one with one line, rather than misreading a layout it does not know. Files without
the key (foreign Parquet files, or snapshots from before the key existed) carry no claim and are
read by their Arrow types.
"""

from __future__ import annotations

from typing import Any

from milvusdiff.errors import SnapshotError

FORMAT_VERSION = 1

# Parquet schema-level key-value metadata.
KEY_META = b"milvusdiff.key"  # JSON list of key column names
SPEC_META = b"milvusdiff.spec"  # CollectionSpec JSON
SOURCE_META = b"milvusdiff.source"  # milvus / pg / journal
MANIFEST_META = b"milvusdiff.manifest"  # single-file snapshots: the whole manifest JSON
FORMAT_META = b"milvusdiff.format"  # FORMAT_VERSION, as decimal text
FILTER_META = b"milvusdiff.filter"  # query-check result snapshots: the filter that selected the rows
# Arrow field-level metadata: the Milvus DataType name of a column.
TYPE_META = b"milvusdiff.type"

# Columns that are not schema fields.
META_COLUMN = "$meta"  # the dynamic field: canonical JSON of the keys not in the schema
PARTITION_COLUMN = "$partition"  # the user partition of a row, when the collection has user partitions
DIGEST_COLUMN = "$digest"  # the row digest (types/digest.py), when the snapshot carries it

# Directory snapshots.
MANIFEST_NAME = "manifest.json"
PART_GLOB = "part-*.parquet"  # every data file; bucketed snapshots name theirs part-bBBBBB-NNNNN.parquet
MANIFEST_FORMAT_FIELD = "format"


def part_name(index: int, bucket: int | None = None) -> str:
    """The name of a snapshot's data file: `part-NNNNN.parquet`, or `part-bBBBBB-NNNNN.parquet` in a bucket."""
    return f"part-{index:05d}.parquet" if bucket is None else f"part-b{bucket:05d}-{index:05d}.parquet"


def format_metadata() -> dict[bytes, bytes]:
    """The schema metadata every snapshot file carries besides its key, spec and source."""
    return {FORMAT_META: str(FORMAT_VERSION).encode()}


def check_format(value: Any, where: str) -> None:
    """Refuse a snapshot written by a newer (or broken) milvusdiff; `None` is a file that makes no claim."""
    if value is None:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        version = int(value)
    except (TypeError, ValueError):
        raise SnapshotError(f"{where}: snapshot format {value!r} is not a version this milvusdiff knows") from None
    if version < 1 or version > FORMAT_VERSION:
        raise SnapshotError(
            f"{where}: snapshot format {version} is not supported by this milvusdiff (it reads formats 1 to "
            f"{FORMAT_VERSION}); upgrade milvusdiff or export the snapshot again"
        )
