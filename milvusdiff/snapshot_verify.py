"""A snapshot is checked against its manifest whenever it is read, at a cost proportional to what is read.

On every read (compare, validate, `compare --journal`), before any row is trusted:
  - the file list: every file the manifest lists is there, no Parquet file is there that it does not
    list, and no listed name leads outside the snapshot directory;
  - each file's size and its Parquet footer's row count against the manifest, and `rows_written`
    against the part files' rows;
  - the CRC-32 of every page of every column that is read (export writes page checksums). DuckDB and
    Polars read Parquet without checking them, so `verify_pages` checks the raw pages itself: it walks
    the page headers of the column chunks that will be read and runs zlib's CRC over the page bytes, with
    no decoding (measured here: about 2.4 GB/s per core).
`milvusdiff verify SNAPSHOT` adds every file's full sha256. Any mismatch is a SnapshotError naming the
file (exit 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from milvusdiff.errors import SnapshotError
from milvusdiff.parquet_pages import leaf_count, read_page_header
from milvusdiff.snapshot_format import PART_GLOB

_CHUNK = 4 << 20


def _where(label: str | None, path: Path) -> str:
    return f"input {label.upper()}: {path}" if label else str(path)


def check_listing(directory: Path, manifest: dict[str, Any], label: str | None = None) -> None:
    """The manifest's `files` against the directory: nothing missing, nothing unlisted, nothing outside it."""
    entries = manifest.get("files")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
    ):
        raise SnapshotError(f"{_where(label, directory / 'manifest.json')}: `files` is not a list of file entries")
    listed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        name = entry["name"]
        if Path(name).name != name or name in ("", ".", ".."):
            raise SnapshotError(f"{_where(label, directory)}: the manifest lists {name!r}, a path outside the snapshot")
        listed[name] = entry
    present = {p.name for p in directory.iterdir() if p.suffix == ".parquet"}
    for name in sorted(set(listed) - present):
        raise SnapshotError(f"{_where(label, directory / name)}: listed in the manifest but missing")
    for name in sorted(present - set(listed)):
        raise SnapshotError(f"{_where(label, directory / name)}: not listed in the manifest")
    for name, entry in listed.items():
        size = entry.get("bytes")
        actual = (directory / name).stat().st_size
        if size is not None and size != actual:
            raise SnapshotError(f"{_where(label, directory / name)}: {actual} bytes, the manifest says {size}")


def check_rows(
    files: Sequence[Path], footer_rows: Sequence[int], manifest: dict[str, Any], label: str | None = None
) -> None:
    """Each listed file's footer row count, and `rows_written` against the data files' rows."""
    entries = {e.get("name"): e for e in manifest.get("files") or [] if isinstance(e, dict)}
    for file, rows in zip(files, footer_rows, strict=True):
        expected = (entries.get(file.name) or {}).get("rows")
        if expected is not None and expected != rows:
            raise SnapshotError(f"{_where(label, file)}: {rows} rows, the manifest says {expected}")
    written = manifest.get("rows_written")
    if written is not None and written != sum(footer_rows):
        where = files[0].parent / "manifest.json" if len(files) > 1 or files[0].match(PART_GLOB) else files[0]
        raise SnapshotError(
            f"{_where(label, where)}: rows_written is {written} but the data files hold {sum(footer_rows)} rows"
        )


# -- page checksums --------------------------------------------------------------------------------


def _verify_chunk(data: memoryview, start: int, length: int) -> str | None:
    """None when every page of the column chunk that carries a CRC matches it (a foreign file may carry none;
    export writes one for every page); else what is wrong. `data` maps the file: no copy, zlib reads the
    page cache directly."""
    pos, end = start, start + length
    while pos < end:
        page = read_page_header(data, pos)
        if page.crc is not None:
            body = data[pos + page.length : pos + page.length + page.size]
            if len(body) != page.size or zlib.crc32(body) & 0xFFFFFFFF != page.crc & 0xFFFFFFFF:
                return f"page at byte {pos} does not match its checksum"
        pos += page.length + page.size
    return None


def _chunks(path: Path, columns: Iterable[str] | None) -> list[tuple[str, int, int, int]]:
    """(column, row group, start, length) of every column chunk of `columns` in the file."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    metadata = parquet.metadata
    # Leaf column -> its top-level column (dotted paths are ambiguous when a name holds a dot).
    owner = [f.name for f in parquet.schema_arrow for _ in range(leaf_count(f.type))]
    wanted = None if columns is None else set(columns)
    found = []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            if wanted is None or owner[index] in wanted:
                chunk = row_group.column(index)
                start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
                found.append((owner[index], group, start, chunk.total_compressed_size))
    return found


def _verify_some(path: Path, data: memoryview, chunks: list[tuple[str, int, int, int]], label: str | None) -> None:
    for column, group, start, length in chunks:
        try:
            problem = _verify_chunk(data, start, length)
        except (ValueError, IndexError) as exc:
            problem = f"unreadable page headers ({exc})"
        if problem is not None:
            raise SnapshotError(f"{_where(label, path)}: column {column!r}, row group {group}: {problem}")


def verify_pages(files: Sequence[Path], columns: Iterable[str] | None = None, label: str | None = None) -> None:
    """Check the page checksums of `columns` (all when None) in every file: column chunks in parallel
    (zlib's CRC releases the GIL), each file mapped once."""
    names = None if columns is None else tuple(columns)
    workers = os.cpu_count() or 1
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = []
        for path in files:
            chunks = _chunks(path, names)
            if not chunks:
                continue
            with path.open("rb") as handle:
                mapped = stack.enter_context(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
            data = stack.enter_context(memoryview(mapped))
            for share in range(workers):
                jobs.append(pool.submit(_verify_some, path, data, chunks[share::workers], label))
        for job in jobs:
            job.result()


# -- full verification -------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_checksums(directory: Path, manifest: dict[str, Any]) -> int:
    """Every listed file's sha256 against the manifest; returns how many files were hashed."""
    checked = 0
    for entry in manifest.get("files") or []:
        expected = entry.get("sha256")
        if expected is None:
            continue
        if sha256_of(directory / entry["name"]) != expected:
            raise SnapshotError(f"{directory / entry['name']}: sha256 does not match the manifest")
        checked += 1
    return checked
