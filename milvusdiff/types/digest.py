"""Row digests: a 16-byte fingerprint of a row's canonical bytes.

The journal stores the digest of each row as it was written; compare recomputes it for the rows
that differ and so learns which side holds what was written. Both call row_digests() on the
snapshot form, so the two can only agree when the values are bit-for-bit the same.

Layout hashed per row: for each field in schema order (then `$meta`), one tag byte (0 null,
1 value), the value's length as 4 little-endian bytes, then the canonical bytes from the type map.
The bytes are assembled with numpy for the whole batch and hashed by DuckDB's md5 in one query.

DIGEST_VERSION names this layout. Digests are stored (in the journal, in snapshots), so any change to
the layout or to a canonical form must raise it: stored digests of another version are refused, never
compared, since they would disagree with every row and blame stores that are right.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.errors import SnapshotError
from milvusdiff.types.spec import META_FIELD, CollectionSpec
from milvusdiff.types.typemap import Bytes, rule

DIGEST_TYPE = pa.binary(16)
DIGEST_VERSION = 1
DIGEST_VERSION_KEY = "milvusdiff.digest_version"  # Parquet metadata beside stored digests

# duckdb.connect() builds a new database, about 80 ms here: more than all the rest of a small write through
# the ShadowClient. One in-memory database per process serves every call through a cursor of its own (a
# connection of its own, so threads never share one), about 3 ms a batch.
_database: tuple[int, duckdb.DuckDBPyConnection] | None = None
_database_lock = threading.Lock()


def _cursor() -> duckdb.DuckDBPyConnection:
    global _database
    with _database_lock:
        if _database is None or _database[0] != os.getpid():  # a forked child must not share its parent's
            _database = (os.getpid(), duckdb.connect())
            _database[1].execute("SET enable_progress_bar = false")  # on stdout past 2 s; cursors inherit it
        return _database[1].cursor()


def check_stored_version(metadata: Mapping[bytes, bytes] | None, where: str) -> None:
    """Refuse digests stored under another layout (Parquet metadata without DIGEST_VERSION_KEY: version 1)."""
    found = (metadata or {}).get(DIGEST_VERSION_KEY.encode(), b"1").decode(errors="replace")
    if found != str(DIGEST_VERSION):
        raise SnapshotError(f"{where}: row-digest version {found}; this milvusdiff reads version {DIGEST_VERSION} only")


def concat_row_bytes(parts: Sequence[Bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Join per-row byte strings of several columns into one byte string per row, each framed
    by a tag byte and a 4-byte length so that no two different rows can give the same bytes."""
    n = len(parts[0][0]) if parts else 0
    if n and all(p[0].min() == p[0].max() for p in parts):
        return _concat_fixed_width(parts, n)
    if not parts:
        return np.zeros(n, np.int64), np.zeros(0, np.uint8)
    # Each column framed on its own (fixed-width ones as 2-D slices, the rest by scatter), then the
    # columns joined row by row in Arrow: scattering every byte of a wide row took seconds per batch.
    framed = [_framed_column(part, n) for part in parts]
    joined = framed[0] if len(framed) == 1 else pc.binary_join_element_wise(*framed, pa.scalar(b"", pa.large_binary()))
    offsets = np.frombuffer(joined.buffers()[1], np.int64)[joined.offset : joined.offset + n + 1]
    data = np.frombuffer(joined.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    return np.diff(offsets), data


def _framed_column(part: Bytes, n: int) -> pa.Array:
    """One column's values as large_binary, each as tag byte + 4-byte little-endian length + bytes."""
    lengths, data, nulls = part
    tags = np.where(nulls, 0, 1).astype(np.uint8)
    headers = lengths.astype("<u4").view(np.uint8).reshape(n, 4)
    if n and lengths.min() == lengths.max():
        width = int(lengths[0])
        out = np.empty((n, width + 5), dtype=np.uint8)
        out[:, 0], out[:, 1:5] = tags, headers
        out[:, 5:] = data[: n * width].reshape(n, width)
        offsets = np.arange(n + 1, dtype=np.int64) * (width + 5)
        flat = out.reshape(-1)
    else:
        offsets = np.concatenate(([0], np.cumsum(lengths + 5))).astype(np.int64)
        flat = np.empty(int(offsets[-1]), dtype=np.uint8)
        starts = offsets[:-1]
        flat[starts] = tags
        flat[starts[:, None] + 1 + np.arange(4)] = headers
        total = int(lengths.sum())
        if total:
            value_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            flat[np.repeat(starts + 5 - value_starts, lengths) + np.arange(total)] = data[:total]
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(flat)])


def _concat_fixed_width(parts: Sequence[Bytes], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The common case (no nulls, every value of a column the same size) as 2-D slices, no scatter."""
    widths = [int(p[0][0]) for p in parts]
    row_length = sum(w + 5 for w in widths)
    out = np.empty((n, row_length), dtype=np.uint8)
    at = 0
    for width, (_, data, nulls) in zip(widths, parts, strict=False):
        out[:, at] = np.where(nulls, 0, 1)
        out[:, at + 1 : at + 5] = np.frombuffer(np.uint32(width).astype("<u4").tobytes(), dtype=np.uint8)
        out[:, at + 5 : at + 5 + width] = data[: n * width].reshape(n, width)
        at += width + 5
    return np.full(n, row_length, dtype=np.int64), out.reshape(-1)


def _column(table: pa.Table, name: str) -> pa.Array | None:
    if name not in table.column_names:
        return None
    return table.column(name).combine_chunks()


def row_digests(table: pa.Table, spec: CollectionSpec) -> pa.FixedSizeBinaryArray:
    """One 16-byte digest per row of a snapshot-form table (see the module docstring)."""
    n = table.num_rows
    parts: list[Bytes] = []
    fields = list(spec.fields)
    if spec.enable_dynamic_field:
        fields.append(META_FIELD)
    for field in fields:
        column = _column(table, field.name)
        if column is None:
            nulls = np.ones(n, dtype=bool)
            parts.append((np.zeros(n, np.int64), np.zeros(0, np.uint8), nulls))
            continue
        if field is META_FIELD and column.null_count:
            column = column.fill_null("{}")
        parts.append(rule(field).canonical_bytes(column, field))
    lengths, data = concat_row_bytes(parts)
    return md5_blobs(lengths, data)


def unkeyed_digests(table: pa.Table, spec: CollectionSpec) -> pa.FixedSizeBinaryArray:
    """Row digests with the primary key left out (hashed as a null): what identifies a row of an auto_id insert
    before Milvus names its key, computed the same way from the rows Milvus later returns."""
    if spec.primary.name in table.column_names:
        table = table.drop_columns([spec.primary.name])
    return row_digests(table, spec)


def md5_blobs(lengths: np.ndarray, data: np.ndarray) -> pa.FixedSizeBinaryArray:
    """The md5 of each of `len(lengths)` byte strings laid end to end in `data`."""
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return md5_of(pa.Array.from_buffers(pa.large_binary(), len(lengths), buffers))


def md5_of(blobs: pa.Array) -> pa.FixedSizeBinaryArray:
    """The md5 of every value of a binary array, hashed by DuckDB in one query (a null hashes to null)."""
    con = _cursor()
    try:
        con.register("frame", pa.table({"b": blobs}))
        hashed = con.sql("SELECT unhex(md5(b)) AS d FROM frame").fetch_arrow_table().column("d")
    finally:
        con.close()
    return hashed.combine_chunks().cast(DIGEST_TYPE)
