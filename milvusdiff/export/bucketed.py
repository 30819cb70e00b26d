"""The part files of a bucketed snapshot: one or more per bucket, named `part-bBBBBB-NNNNN.parquet`.

Each reader batch spreads over every bucket, a few hundred rows each; written as they come, the files
would be made of tiny row groups that read slowly. So each bucket buffers its rows and writes them as
one row group once it holds its share of a fixed memory budget, and when the buffers together exceed
the budget the largest is written out. Memory therefore stays flat whatever the collection size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import pyarrow as pa

from milvusdiff.export.manifest import FileEntry
from milvusdiff.snapshot_format import part_name

BUFFER_BYTES = 256 << 20
_MIN_FLUSH_BYTES = 1 << 20
_MAX_FLUSH_BYTES = 64 << 20


class PartFile(Protocol):
    rows: int

    def write(self, table: pa.Table) -> None: ...

    def close(self) -> FileEntry: ...

    def abandon(self) -> None: ...


class BucketFiles:
    def __init__(self, buckets: int, open_part: Callable[[str], PartFile], *, rows_per_part: int) -> None:
        self._open_part = open_part
        self._rows_per_part = rows_per_part
        self._flush_bytes = min(max(BUFFER_BYTES // buckets, _MIN_FLUSH_BYTES), _MAX_FLUSH_BYTES)
        self._buffers: list[list[pa.Table]] = [[] for _ in range(buckets)]
        self._buffered = [0] * buckets
        self._total = 0
        self._parts: list[PartFile | None] = [None] * buckets
        self._opened = [0] * buckets
        self.files: list[FileEntry] = []

    def add(self, parts: list[pa.Table | None]) -> None:
        for bucket, table in enumerate(parts):
            if table is None:
                continue
            self._buffers[bucket].append(table)
            self._buffered[bucket] += table.nbytes
            self._total += table.nbytes
            if self._buffered[bucket] >= self._flush_bytes:
                self._flush(bucket)
        while self._total > BUFFER_BYTES:
            self._flush(max(range(len(self._buffered)), key=self._buffered.__getitem__))

    def _flush(self, bucket: int) -> None:
        tables = self._buffers[bucket]
        if not tables:
            return
        part = self._parts[bucket]
        if part is not None and part.rows >= self._rows_per_part:
            self.files.append(dataclasses.replace(part.close(), bucket=bucket))
            part = None
        if part is None:
            part = self._open_part(part_name(self._opened[bucket], bucket))
            self._parts[bucket], self._opened[bucket] = part, self._opened[bucket] + 1
        part.write(pa.concat_tables(tables))
        self._total -= self._buffered[bucket]
        self._buffers[bucket], self._buffered[bucket] = [], 0

    def close(self) -> list[FileEntry]:
        for bucket in range(len(self._buffers)):
            self._flush(bucket)
        for bucket, part in enumerate(self._parts):
            if part is not None:
                self.files.append(dataclasses.replace(part.close(), bucket=bucket))
                self._parts[bucket] = None
        return self.files

    def abandon(self) -> None:
        for part in self._parts:
            if part is not None:
                part.abandon()
        self._parts = [None] * len(self._parts)
