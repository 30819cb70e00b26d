"""Float vector columns decoded straight from their Parquet pages: the column that costs the most to read.

A vector column is stored as a list of floats: every element carries a repetition and a definition
level, and DuckDB and pyarrow decode it element by element. For 1M 128-dim float32 vectors that took
1.14 s of one core, against 0.39 s to decompress the same pages: nine tenths of reading a typical
collection went to levels that, for vectors, say nothing but "one more row of `dim` values".

So the pages are read here: each page is decompressed with pyarrow's codecs and its levels are checked,
not assumed: the repetition levels must say rows of exactly `dim` values (checked as one row's encoding
repeated byte for byte, or unpacked whole where a writer bit-packs them in long runs), and the
definition levels must all be at the maximum (no null vector, no null element). Then the
values are the page's bytes (PLAIN), its bytes regrouped (BYTE_STREAM_SPLIT) or the dictionary at
the decoded indices (RLE_DICTIONARY). Anything else (a null, another list length, a codec or encoding
not listed here, an unreadable page) hands the rest of that row group to pyarrow, which is slower and
never different: the values are the same bits either way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.errors import CompareError
from milvusdiff.parquet_pages import (
    BYTE_STREAM_SPLIT,
    DATA_PAGE,
    DATA_PAGE_V2,
    DICTIONARY_PAGE,
    PLAIN,
    PLAIN_DICTIONARY,
    RLE,
    RLE_DICTIONARY,
    Compact,
    PageHeader,
    leaf_count,
    read_page_header,
)

# The codecs whose pages decode here: those where a page that inflates to fewer bytes than its header says
# is caught. pyarrow's Codec.decompress does not say how many bytes it wrote: zstd fails on any other
# size, a snappy stream starts with its length (checked below); gzip, brotli and lz4 would leave the
# rest of the buffer unwritten, so their pages go to pyarrow's reader, which checks.
_CODECS = {"UNCOMPRESSED": None, "SNAPPY": "snappy", "ZSTD": "zstd"}
_VALUE_TYPES: dict[pa.DataType, tuple[str, np.dtype]] = {
    pa.float32(): ("FLOAT", np.dtype("<f4")),
    pa.float64(): ("DOUBLE", np.dtype("<f8")),
}
# Parts are yielded in slices of about this size, whatever the writer's page size: a reader holding a
# number of parts ahead then holds that many MB plus the page being sliced, not that many pages.
PART_BYTES = 1 << 20
_MAX_PERIOD_ROWS = 8  # a bit-packed group holds 8 levels: some whole number of rows up to 8 ends on a group


class _Fallback(Exception):
    """The rest of this row group is pyarrow's to read."""


# Consecutive rows of vectors: a (rows, dim) matrix, or an Arrow array where pyarrow read them.
Part: TypeAlias = np.ndarray | pa.Array


def _leaf(parquet: pq.ParquetFile, name: str) -> tuple[int, pa.Field] | None:
    """The Parquet leaf column holding top-level column `name` (the first of that exact name, as the SQL
    reads it), and its field, if the column is stored as a single leaf."""
    leaf = 0
    for field in parquet.schema_arrow:
        count = leaf_count(field.type)
        if field.name == name:
            return (leaf, field) if count == 1 else None
        leaf += count
    return None


def readable(files: Sequence[Path], name: str, arrow_type: pa.DataType) -> bool:
    """Whether column `name` of every file is a fixed-size list of float32 or float64 stored as one
    repeated leaf of that physical type: what this module decodes (else DuckDB reads the column)."""
    if not pa.types.is_fixed_size_list(arrow_type) or arrow_type.value_type not in _VALUE_TYPES:
        return False
    physical = _VALUE_TYPES[arrow_type.value_type][0]
    for path in files:
        parquet = pq.ParquetFile(path)
        found = _leaf(parquet, name)
        if found is None or not found[1].type.equals(arrow_type):
            return False
        column = parquet.metadata.schema.column(found[0])
        if column.max_repetition_level != 1 or column.physical_type != physical:
            return False
    return True


def _unpack(packed: memoryview, width: int, count: int) -> np.ndarray:
    """Values of `width` bits, packed least significant bit first (Parquet's bit-packing): `count` of
    them, or all that `packed` holds when `count` is 0."""
    count = count or len(packed) * 8 // max(width, 1)
    if width == 0:
        return np.zeros(count, dtype=np.uint32)
    if width == 1:  # levels of lists: the bits are the values
        return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), bitorder="little")[:count].astype(np.uint32)
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), bitorder="little")[: count * width]
    padded = np.zeros((count, 32), dtype=np.uint8)
    padded[:, :width] = bits.reshape(count, width)
    return np.packbits(padded, axis=1, bitorder="little").view("<u4").reshape(count)


class _Run(NamedTuple):
    """One run of an RLE / bit-packed hybrid stream: `size` times `value` (repeated), or `packed`, the bytes
    of `size` values of `width` bits (bit-packed, padded to a multiple of 8 values). `end`: the byte after."""

    end: int
    size: int
    value: int
    packed: memoryview | None


def _runs(data: memoryview, width: int) -> Iterator[_Run]:
    size = (width + 7) // 8
    reader = Compact(data)  # run headers are ULEB128 varints, as Thrift's
    while reader.pos < len(data):
        header = reader.varint()
        count, start = (header >> 1) * (8 if header & 1 else 1), reader.pos
        reader.pos += (header >> 1) * width if header & 1 else size
        end = reader.pos
        if not count or end > len(data):
            raise _Fallback
        if header & 1:
            yield _Run(end, count, 0, data[start:end])
        else:
            yield _Run(end, count, int.from_bytes(data[start:end], "little"), None)


def _values_of(run: _Run, width: int) -> np.ndarray:
    if run.packed is None:
        return np.full(run.size, run.value, dtype=np.uint32)
    return _unpack(run.packed, width, run.size)


def _decoded(data: memoryview, width: int, count: int, max_runs: int = sys.maxsize) -> np.ndarray:
    """The first `count` values of a hybrid stream (of at most `max_runs` runs). The bit-packed runs are
    unpacked in one call: a page of dictionary indices holds hundreds of them."""
    runs, got = [], 0
    for run in _runs(data, width):
        runs.append(run)
        got += run.size
        if got >= count or len(runs) > max_runs:
            break
    if got < count or len(runs) > max_runs:
        raise _Fallback
    unpacked = _unpack(memoryview(b"".join(r.packed for r in runs if r.packed is not None)), width, 0)
    out = np.empty(got, dtype=np.uint32)
    at = taken = 0
    for run in runs:
        if run.packed is None:
            out[at : at + run.size] = run.value
        else:
            out[at : at + run.size] = unpacked[taken : taken + run.size]
            taken += run.size
        at += run.size
    return out[:count]


def _all_at(data: memoryview, width: int, count: int, level: int) -> None:
    """The definition levels: all `count` at `level` (no null vector, no null element)."""
    got = 0
    for run in _runs(data, width):
        take = min(run.size, count - got)
        if (run.value != level) if run.packed is None else (_values_of(run, width)[:take] != level).any():
            raise _Fallback
        got += take
        if got == count:
            return
    raise _Fallback


def _rows_of(data: memoryview, rows: int, dim: int) -> None:
    """The repetition levels: `rows` rows of exactly `dim` values. Writers encode them in two ways: a few
    long bit-packed runs (Polars), decoded here at once, or a couple of runs a row (pyarrow),
    too many to walk one by one: there the stream must be its first whole rows' encoding repeated."""
    if _periodic(data, rows, dim):
        return
    levels = _decoded(data, 1, rows * dim, max_runs=64 + rows * dim // 512).reshape(rows, dim)
    if levels[:, 0].any() or not levels[:, 1:].all():
        raise _Fallback


def _periodic(data: memoryview, rows: int, dim: int) -> bool:
    """Whether the stream is the encoding of its first whole rows (up to _MAX_PERIOD_ROWS) repeated byte
    for byte, those rows being `dim` values each: then every repeat decodes to the same rows."""
    got, parts = 0, []
    for run in _runs(data, 1):
        parts.append(_values_of(run, 1))
        got += run.size
        if got % dim == 0:
            period, end = got // dim, run.end
            expected = np.ones(got, dtype=np.uint32)
            expected[::dim] = 0
            stream = np.frombuffer(data, dtype=np.uint8)
            return (
                np.array_equal(np.concatenate(parts), expected)
                and rows % period == 0
                and len(stream) == end * (rows // period)
                and np.array_equal(stream.reshape(-1, end), np.broadcast_to(stream[:end], (rows // period, end)))
            )
        if got > _MAX_PERIOD_ROWS * dim:
            return False
    return False


class _Bytes:
    """A file's bytes by position, read a window at a time: a mapped file would count its pages in the
    process's resident memory for as long as it is mapped (the whole vector column: 0.46 GB of 1M rows).
    `reuse`: the window's memory is read into again (the bytes handed out are decompressed before the
    next read; uncompressed pages become the values and must keep their bytes)."""

    WINDOW = 4 << 20
    HEADER = 64 << 10  # a page header (statistics included) is far smaller

    def __init__(self, fd: int, reuse: bool) -> None:
        self.fd = fd
        self.buffer = bytearray(self.WINDOW) if reuse else None
        self.start = 0
        self.data = memoryview(b"")

    def span(self, pos: int, size: int) -> memoryview:
        """`size` bytes at `pos` (fewer at the end of the file)."""
        if pos < self.start or pos + size > self.start + len(self.data):
            if self.buffer is not None and size <= len(self.buffer):
                self.data = memoryview(self.buffer)[: os.preadv(self.fd, [self.buffer], pos)]
            else:
                self.data = memoryview(os.pread(self.fd, max(size, self.WINDOW), pos))
            self.start = pos
        return self.data[pos - self.start : pos - self.start + size]

    def header(self, pos: int, end: int) -> PageHeader:
        return read_page_header(self.span(pos, min(self.HEADER, end - pos)), 0)


class _Chunk:
    """One column chunk's pages, decoded in order."""

    def __init__(self, codec: str | None, dim: int, dtype: np.dtype, max_def: int) -> None:
        self.codec = None if codec is None else pa.Codec(codec)
        self.dim, self.dtype, self.max_def = dim, dtype, max_def
        self.dictionary: np.ndarray | None = None

    def _inflate(self, body: memoryview, size: int) -> memoryview:
        if self.codec is None:
            return body
        if self.codec.name == "snappy" and Compact(body).varint() != size:
            raise _Fallback
        return memoryview(self.codec.decompress(body, decompressed_size=size))

    def page(self, header: PageHeader, body: memoryview) -> np.ndarray | None:
        """A data page's rows as a (rows, dim) matrix; None after a dictionary page (kept for the next)."""
        # No more than its values and their levels could take (a tampered header must not make us allocate
        # gigabytes): beyond that, pyarrow's reader has the last word.
        if header.uncompressed_size > header.values * (self.dtype.itemsize + 8) + 1024 or header.size < 0:
            raise _Fallback
        if header.type == DICTIONARY_PAGE:
            raw = self._inflate(body, header.uncompressed_size)
            if header.encoding not in (PLAIN, PLAIN_DICTIONARY) or len(raw) != header.values * self.dtype.itemsize:
                raise _Fallback
            self.dictionary = np.frombuffer(raw, dtype=self.dtype)
            return None
        if header.type == DATA_PAGE:
            if header.rep_encoding != RLE or (self.max_def and header.def_encoding != RLE):
                raise _Fallback
            raw = self._inflate(body, header.uncompressed_size)
            rep_end = 4 + int.from_bytes(raw[0:4], "little")
            rep = raw[4:rep_end]
            def_end = rep_end + 4 + int.from_bytes(raw[rep_end : rep_end + 4], "little") if self.max_def else rep_end
            levels = raw[rep_end + 4 : def_end]
            values = raw[def_end:]
        elif header.type == DATA_PAGE_V2:
            if header.nulls:
                raise _Fallback
            rep = body[: header.rep_bytes]
            levels = body[header.rep_bytes : header.rep_bytes + header.def_bytes]
            stored = body[header.rep_bytes + header.def_bytes :]
            size = header.uncompressed_size - header.rep_bytes - header.def_bytes
            # stored uncompressed: copied, as the values must outlive the window they were read into
            values = self._inflate(stored, size) if header.compressed else memoryview(bytes(stored))
        else:
            raise _Fallback
        count = header.values
        if not count or count % self.dim:
            raise _Fallback
        _rows_of(rep, count // self.dim, self.dim)
        if self.max_def:
            _all_at(levels, self.max_def.bit_length(), count, self.max_def)
        return self._values(header.encoding, values, count).reshape(-1, self.dim)

    def _values(self, encoding: int, values: memoryview, count: int) -> np.ndarray:
        itemsize = self.dtype.itemsize
        if encoding == PLAIN:
            if len(values) != count * itemsize:
                raise _Fallback
            return np.frombuffer(values, dtype=self.dtype)
        if encoding == BYTE_STREAM_SPLIT:
            if len(values) != count * itemsize:
                raise _Fallback
            streams = np.frombuffer(values, dtype=np.uint8).reshape(itemsize, count)
            return np.ascontiguousarray(streams.T).view(self.dtype).reshape(count)
        if encoding in (RLE_DICTIONARY, PLAIN_DICTIONARY) and self.dictionary is not None and len(values):
            indices = _decoded(values[1:], values[0], count)
            if count and int(indices.max()) >= len(self.dictionary):
                raise _Fallback
            return self.dictionary[indices]
        raise _Fallback


class VectorPages:
    """Column `name` of `files`, in file order, as parts of consecutive rows: (rows, dim) matrices where the
    pages were decoded here, Arrow arrays of `arrow_type` where pyarrow read them. `label` names the input
    in errors."""

    def __init__(self, files: Sequence[Path], name: str, arrow_type: pa.DataType, label: str) -> None:
        self.files, self.name, self.type, self.label = tuple(files), name, arrow_type, label
        self.dim = arrow_type.list_size
        self.dtype = _VALUE_TYPES[arrow_type.value_type][1]

    def __iter__(self) -> Iterator[Part]:
        for path in self.files:
            parquet = pq.ParquetFile(path)
            found = _leaf(parquet, self.name)
            assert found is not None  # readable() said so
            leaf = found[0]
            max_def = parquet.metadata.schema.column(leaf).max_definition_level
            with path.open("rb", buffering=0) as handle:
                for group in range(parquet.metadata.num_row_groups):
                    reuse = parquet.metadata.row_group(group).column(leaf).compression != "UNCOMPRESSED"
                    yield from self._group(path, parquet, _Bytes(handle.fileno(), reuse), group, leaf, max_def)

    def _group(
        self, path: Path, parquet: pq.ParquetFile, data: _Bytes, group: int, leaf: int, max_def: int
    ) -> Iterator[Part]:
        meta = parquet.metadata.row_group(group)
        chunk, rows, done = meta.column(leaf), meta.num_rows, 0
        try:
            if chunk.compression not in _CODECS:
                raise _Fallback
            pages = _Chunk(_CODECS[chunk.compression], self.dim, self.dtype, max_def)
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                start = min(start, chunk.dictionary_page_offset)
            pos, end = start, start + chunk.total_compressed_size
            while pos < end and done < rows:
                header = data.header(pos, end)
                body = data.span(pos + header.length, header.size)
                pos += header.length + header.size
                matrix = pages.page(header, body)
                if matrix is None:
                    continue
                if done + len(matrix) > rows:
                    raise _Fallback
                done += len(matrix)
                step = max(1, PART_BYTES // (self.dim * self.dtype.itemsize))
                for first in range(0, len(matrix), step):
                    yield matrix[first : first + step]
            if done != rows:
                raise _Fallback
        except (_Fallback, ValueError, IndexError, OSError, pa.ArrowException):
            yield from self._pyarrow(path, parquet, group, leaf, done)

    def _pyarrow(self, path: Path, parquet: pq.ParquetFile, group: int, leaf: int, first: int) -> Iterator[pa.Array]:
        try:  # by leaf index: a name is read as a dotted path, which other columns' names may share
            table = parquet.reader.read_row_group(group, column_indices=[leaf])
        except (OSError, pa.ArrowException) as exc:
            where = f"input {self.label.upper()}: {path}: column {self.name!r}, row group {group}"
            raise CompareError(f"{where}: {exc}") from exc
        for part in table.column(0).slice(first).chunks:
            yield part if part.type.equals(self.type) else part.cast(self.type)


class VectorRows:
    """Consecutive rows of one vector column from its parts, `take(n)` at a time, as Arrow arrays."""

    def __init__(self, parts: Iterator[Part], arrow_type: pa.DataType) -> None:
        self.parts, self.type = parts, arrow_type
        self.held: Part | None = None
        self.offset = 0

    def take(self, count: int) -> pa.Array:
        if not count:
            return pa.array([], self.type)
        pieces: list[Part] = []
        while count:
            if self.held is None or self.offset == len(self.held):
                self.held, self.offset = next(self.parts, None), 0
                if self.held is None:  # the files changed under the scan: the other columns hold more rows
                    raise CompareError("a vector column ended before the other columns of its file")
            piece = self.held[self.offset : self.offset + count]
            self.offset += len(piece)
            count -= len(piece)
            pieces.append(piece)
        if all(isinstance(p, np.ndarray) for p in pieces):
            return self._arrow(np.concatenate(pieces))  # one copy into the batch
        arrays = [self._arrow(p) for p in pieces]
        return pa.concat_arrays(arrays) if len(arrays) != 1 else arrays[0]

    def _arrow(self, part: Part) -> pa.Array:
        if isinstance(part, np.ndarray):
            return pa.FixedSizeListArray.from_arrays(pa.array(part.reshape(-1), self.type.value_type), type=self.type)
        return part
