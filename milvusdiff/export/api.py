"""export_collection: one collection, from one store (or all three), to a published snapshot.

The order of work is chosen so that a failure costs as little as possible and never leaves a
complete-looking output: the destination is checked before any store is contacted, the store is
checked (reachable, collection exists) before anything is written, and the snapshot is renamed
into place only after the data, the key census and the manifest are on disk.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from milvusdiff import __version__
from milvusdiff.config import Settings
from milvusdiff.destination import guard
from milvusdiff.errors import SnapshotError
from milvusdiff.export.manifest import FileEntry, KeyStats, Manifest, store_warnings
from milvusdiff.export.pipeline import run_producers
from milvusdiff.export.prepare import Preparer, prepared
from milvusdiff.export.progress import progress
from milvusdiff.export.sources import SOURCES, Reading, ReadOptions, open_source
from milvusdiff.export.staging import Staging
from milvusdiff.export.writer import DEFAULT_ROWS_PER_PART, SnapshotWriter
from milvusdiff.services.journal import Adoption
from milvusdiff.snapshot_format import DIGEST_COLUMN
from milvusdiff.types.buckets import HASH_NAME, MAX_BUCKETS

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16384
# Batches in flight per reader; enough to keep the writer busy, few enough that memory stays flat.
_QUEUE_DEPTH_PER_READER = 2


def export_collection(
    collection: str,
    *,
    source: str = "milvus",
    out: str | Path,
    settings: Settings | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    flush: bool = True,
    parallel: int = 1,
    quiet: bool = True,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
    overwrite: bool = False,
    fsync: bool = False,
    buckets: int | None = None,
    adopted: Adoption | None = None,
) -> Manifest:
    """Export `collection` from `source` ("milvus", "pg", "journal" or "all") to `out`.

    `out` ending in `.parquet` gives a single self-describing file; anything else a directory of
    part files plus manifest.json (with "all": a directory holding milvus/, pg/ and journal/).
    Disagreements between the rows read and the store's own counts are in `manifest.warnings`
    (and logged); they never stop the export and rows are never deduplicated. `fsync` makes the
    snapshot durable before it is published (see staging for what that costs and what it guards).
    `buckets` lays the rows out in that many buckets of the primary key (types/buckets.py), so that
    compare can skip the buckets two snapshots agree on; it needs a directory. `adopted`: the rows of in-doubt
    auto_id inserts found in Milvus (workflow.adopt), which the journal's key states then include as IN_DOUBT,
    as validate reads them without writing to the journal.
    """
    if source not in (*SOURCES, "all"):
        raise SnapshotError(f"unknown source {source!r}: choose one of {', '.join((*SOURCES, 'all'))}")
    if batch_size < 1 or parallel < 1 or rows_per_part < 1:
        raise SnapshotError("batch_size, parallel and rows_per_part must be positive")
    if buckets is not None and not 1 <= buckets <= MAX_BUCKETS:
        raise SnapshotError(f"`buckets` must be between 1 and {MAX_BUCKETS}, got {buckets}")
    options = ReadOptions(batch_size=batch_size, flush=flush, parallel=parallel)
    job = _Job(collection, settings or Settings.resolve(), options, quiet, rows_per_part, fsync, buckets, adopted)
    out = Path(out)
    if buckets and out.suffix == ".parquet":
        raise SnapshotError("a bucketed snapshot is a directory (part files per bucket): give `out` a directory")
    if source == "all":
        return _export_all(job, out, overwrite)
    if source == "journal" and out.suffix == ".parquet":
        raise SnapshotError("a journal snapshot is a directory (key states plus oplog.parquet): give `out` a directory")
    guard(out, kind="snapshot", overwrite=overwrite, settings=job.settings)
    return _export_one(job, source, out, overwrite)


@dataclass(frozen=True)
class _Job:
    collection: str
    settings: Settings
    options: ReadOptions
    quiet: bool
    rows_per_part: int
    fsync: bool
    buckets: int | None
    adopted: Adoption | None


def _export_one(job: _Job, kind: str, out: Path, overwrite: bool) -> Manifest:
    started = time.perf_counter()
    with open_source(kind, job.collection, job.settings, job.options, job.adopted) as reading:
        preparer = Preparer(reading.spec, digest=kind != "journal", buckets=job.buckets)
        writer = SnapshotWriter(
            out,
            preparer.schema(reading.schema),
            reading.spec.primary.name,
            rows_per_part=job.rows_per_part,
            overwrite=overwrite,
            durable=job.fsync,
            buckets=job.buckets,
            settings=job.settings,
        )
        try:
            producers = prepared(reading.producers(), preparer)
            depth = _QUEUE_DEPTH_PER_READER * len(producers)
            with progress(f"{kind} {job.collection}", lambda: reading.expected_rows, quiet=job.quiet) as advance:
                for batch in run_producers(producers, depth=depth):
                    writer.write(batch)
                    advance(batch.table.num_rows)
            for extra in reading.extra_files():
                writer.write_extra(extra.name, extra.schema, extra.batches)
            files, keys = writer.close_data()
            manifest = _manifest(reading, job, writer.rows, files, keys)
            manifest.digest_column = DIGEST_COLUMN if preparer.digest else None
            if job.buckets:
                manifest.buckets, manifest.bucket_hash = job.buckets, HASH_NAME
                manifest.bucket_stats = writer.bucket_stats(with_partition=reading.with_partition)
            manifest.elapsed_seconds = round(time.perf_counter() - started, 3)
            writer.publish(manifest)
        except BaseException:
            writer.discard()
            raise
    for warning in manifest.warnings:
        log.warning("%s export of %r: %s", kind, job.collection, warning)
    return manifest


def _manifest(reading: Reading, job: _Job, rows: int, files: list[FileEntry], keys: KeyStats) -> Manifest:
    store_count = reading.store_count()
    options = job.options
    manifest = Manifest(
        source=reading.kind,
        collection=reading.spec.name,
        uri=reading.uri,
        spec=reading.spec.to_dict(),
        primary_key=reading.spec.primary.name,
        primary_key_type=reading.spec.primary.type,
        with_partition=reading.with_partition,
        rows_written=rows,
        store_count=store_count,
        distinct_keys=keys.distinct_keys,
        duplicate_keys=keys.duplicate_keys,
        duplicate_rows=keys.duplicate_rows,
        duplicate_key_sample=keys.duplicate_sample,
        files=files,
        extra=reading.extras(),
        options={
            "batch_size": options.batch_size,
            "flush": options.flush,
            "parallel": options.parallel,
            "fsync": job.fsync,
        },
        notes=list(reading.notes),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        milvusdiff_version=__version__,
    )
    if reading.expected_rows is not None and store_count is not None and reading.expected_rows != store_count:
        manifest.warnings.append(
            f"the store's count changed during the export ({reading.expected_rows} before, {store_count} after)"
        )
    manifest.warnings += store_warnings(rows, store_count, keys, reading.kind)
    return manifest


def _export_all(job: _Job, out: Path, overwrite: bool) -> Manifest:
    """The three stores side by side, published together: one rename makes all three appear."""
    if out.suffix == ".parquet":
        raise SnapshotError("`source` all writes a directory (milvus/, pg/, journal/): give `out` a directory")
    started = time.perf_counter()
    staging = Staging(
        out, directory=True, overwrite=overwrite, kind="snapshot-set", durable=job.fsync, settings=job.settings
    )
    try:
        children = {kind: _export_one(job, kind, staging.path / kind, False) for kind in SOURCES}
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    return Manifest(
        source="all",
        collection=job.collection,
        children=children,
        warnings=[f"{kind}: {w}" for kind, child in children.items() for w in child.warnings],
        elapsed_seconds=round(time.perf_counter() - started, 3),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        milvusdiff_version=__version__,
    )
