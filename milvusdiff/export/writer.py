"""The snapshot writer: Arrow tables in, a published snapshot (directory or single Parquet file) out.

One table at a time goes straight to a ParquetWriter, so memory holds a batch or two whatever the
collection size. Each part file is hashed as it is written (see checksum), and fsync'd on close when
the export is durable; the whole snapshot appears under its final name only in `publish` (see staging).

A single-file snapshot must carry its manifest in its own footer, but the manifest (rows, key census)
is known only at the end: the Arrow schema stored in the footer (`ARROW:schema`) is replaced just
before closing, so readers see `milvusdiff.manifest` in the schema metadata like every other key.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.config import Settings
from milvusdiff.export.bucketed import BucketFiles
from milvusdiff.export.census import KeyCensus
from milvusdiff.export.checksum import TailHasher
from milvusdiff.export.manifest import (
    BucketStats,
    FileEntry,
    KeyStats,
    Manifest,
)
from milvusdiff.export.prepare import Batch
from milvusdiff.export.staging import Staging, fsync_path
from milvusdiff.snapshot_format import MANIFEST_META, MANIFEST_NAME, TYPE_META, part_name
from milvusdiff.types.buckets import DigestSums
from milvusdiff.types.typemap import VECTOR_TYPES

DEFAULT_ROWS_PER_PART = 1_000_000
_VALUES_PER_ENCODER_BATCH = 65536
_ARROW_SCHEMA_KEY = "ARROW:schema"


def _column_options(schema: pa.Schema) -> dict[str, Any]:
    """Vectors skip dictionary encoding, statistics and compression: none of it pays for float bits
    (measured: dictionary attempts and statistics alone took a third of the write time). Values go to
    the encoder 64k at a time rather than 1k: a vector column is millions of values, each with its
    repetition and definition level, and the larger batches cut the writer's CPU by about a tenth."""
    vectors = {f.name for f in schema if (f.metadata or {}).get(TYPE_META, b"").decode() in VECTOR_TYPES}
    plain = [name for name in schema.names if name not in vectors]
    compression = {name: "none" if name in vectors else "snappy" for name in schema.names}
    return {
        "use_dictionary": plain,
        "write_statistics": plain,
        "compression": compression,
        "write_batch_size": _VALUES_PER_ENCODER_BATCH,
        "write_page_checksum": True,  # CRC-32 per page, checked on every read (milvusdiff.snapshot_verify)
    }


class _Part:
    """One Parquet file, checksummed as it is written when `hashed`, fsync'd when closed when `durable`."""

    def __init__(self, path: Path, schema: pa.Schema, *, hashed: bool, durable: bool) -> None:
        self.path = path
        self.rows = 0
        self.durable = durable
        self.sink = pa.OSFile(str(path), "wb")
        self.hasher = TailHasher(path, sync=durable) if hashed else None
        self.writer = pq.ParquetWriter(self.sink, schema, **_column_options(schema))

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows
        if self.hasher is not None:
            self.hasher.advance(self.sink.tell())

    def close(self) -> FileEntry:
        self.writer.close()
        self.sink.close()
        size = self.path.stat().st_size
        sha256 = self.hasher.finish(size) if self.hasher is not None else None
        if self.durable:
            fsync_path(self.path)
        return FileEntry(self.path.name, self.rows, size, sha256)

    def abandon(self) -> None:
        """Close without caring about the content: it is about to be deleted."""
        if self.hasher is not None:
            self.hasher.abandon()
        with contextlib.suppress(OSError, pa.ArrowException):
            self.writer.close()
        self.sink.close()


class SnapshotWriter:
    """Streams batches into a staged snapshot; `publish(manifest)` completes it, `discard()` removes it.

    With `buckets`, every batch arrives split by bucket (export/prepare.py) and goes to that bucket's
    own part files (export/bucketed.py); a single-file snapshot cannot hold buckets.
    """

    def __init__(
        self,
        out: Path,
        schema: pa.Schema,
        key: str,
        *,
        rows_per_part: int = DEFAULT_ROWS_PER_PART,
        overwrite: bool = False,
        durable: bool = False,
        buckets: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.single_file = out.suffix == ".parquet"
        assert not (buckets and self.single_file), "a bucketed snapshot is a directory"
        self.schema = schema
        self._key = key
        self._rows_per_part = rows_per_part
        self._staging = Staging(
            out,
            directory=not self.single_file,
            overwrite=overwrite,
            kind="snapshot",
            durable=durable,
            settings=settings,
        )
        self._census = KeyCensus(self._staging.scratch, schema.field(key))
        self._files: list[FileEntry] = []
        self.rows = 0
        self.sums = DigestSums(buckets) if buckets else None
        self.placement = DigestSums(buckets) if buckets else None
        self._buckets = BucketFiles(buckets, self._bucket_part, rows_per_part=rows_per_part) if buckets else None
        self._part: _Part | None = None if buckets else self._open_part()

    def _bucket_part(self, name: str) -> _Part:
        return _Part(self._staging.path / name, self.schema, hashed=True, durable=self._staging.durable)

    def _open_part(self) -> _Part:
        if self.single_file:
            return _Part(self._staging.path, self.schema, hashed=False, durable=self._staging.durable)
        path = self._staging.path / part_name(len(self._files))
        return _Part(path, self.schema, hashed=True, durable=self._staging.durable)

    def write(self, batch: Batch) -> None:
        table = batch.table
        self._census.add(table.column(self._key))
        self.rows += table.num_rows
        if self._buckets is not None:
            assert batch.parts is not None and batch.rows is not None and batch.digest_limbs is not None
            assert self.sums is not None and self.placement is not None
            self._buckets.add(batch.parts)
            self.sums.add(batch.rows, batch.digest_limbs)
            if batch.placement_limbs is not None:
                self.placement.add(batch.rows, batch.placement_limbs)
            return
        assert self._part is not None, "the data files are already closed"
        if not self.single_file and self._part.rows >= self._rows_per_part:
            self._files.append(self._part.close())
            self._part = self._open_part()
        self._part.write(table)

    def bucket_stats(self, *, with_partition: bool) -> list[BucketStats]:
        """Per bucket: rows, digest sum and (with `$partition`) placement sum; empty when not bucketed."""
        if self.sums is None or self.placement is None:
            return []
        placement = self.placement.hex() if with_partition else [None] * len(self.sums.rows)
        stats = zip(self.sums.rows, self.sums.hex(), placement, strict=True)
        return [BucketStats(bucket, int(rows), total, moved) for bucket, (rows, total, moved) in enumerate(stats)]

    def write_extra(self, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
        """A second kind of file beside the parts (the journal's oplog.parquet); directory snapshots only."""
        part = _Part(self._staging.path / name, schema, hashed=True, durable=self._staging.durable)
        for batch in batches:
            part.write(pa.Table.from_batches([batch], schema=schema))
        self._files.append(part.close())

    def close_data(self) -> tuple[list[FileEntry], KeyStats]:
        """Finish the data (the single file stays open for its footer) and count the keys written."""
        if self._buckets is not None:
            files = sorted([*self._files, *self._buckets.close()], key=lambda f: f.name)
            self._buckets = None
            return files, self._census.count()
        assert self._part is not None, "the data files are already closed"
        if self.single_file:
            files = [FileEntry(self._staging.out.name, self._part.rows, None, None)]
        else:
            self._files.append(self._part.close())
            self._part = None
            files = sorted(self._files, key=lambda f: f.name)
        return files, self._census.count()

    def publish(self, manifest: Manifest) -> None:
        text = manifest.to_json()
        if self.single_file:
            assert self._part is not None
            final_schema = self.schema.with_metadata({**(self.schema.metadata or {}), MANIFEST_META: text})
            encoded = base64.b64encode(final_schema.serialize().to_pybytes()).decode("ascii")
            self._part.writer.add_key_value_metadata({MANIFEST_META.decode(): text, _ARROW_SCHEMA_KEY: encoded})
            self._part.close()
            self._part = None
        else:
            manifest_path = self._staging.path / MANIFEST_NAME
            manifest_path.write_text(text + "\n", encoding="utf-8")
            if self._staging.durable:
                fsync_path(manifest_path)
        self._staging.publish()

    def discard(self) -> None:
        """Drop everything written so far; the destination is left as it was."""
        self._census.abandon()
        if self._buckets is not None:
            self._buckets.abandon()
            self._buckets = None
        if self._part is not None:
            self._part.abandon()
            self._part = None
        self._staging.discard()
