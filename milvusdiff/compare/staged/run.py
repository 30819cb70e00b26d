"""Run the stages over every unsettled bucket and hand back reduced inputs for the ordinary engine.

With `jobs` > 1 the buckets go to that many worker processes (spawned: DuckDB and gRPC threads do not
survive a fork), each with one DuckDB thread and its own memory limit, so peak memory depends on the
bucket size, not on the collection. The reduced inputs keep everything the originals say about
themselves (manifest, metadata, label) and only point at the copied rows.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from milvusdiff.compare.inputs import Side, verify_read
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan import Plan
from milvusdiff.compare.staged.bucket import BucketJob, BucketOutcome, empty_file, settle_bucket
from milvusdiff.compare.staged.layout import Layout, co_partitioned
from milvusdiff.compare.summary import Staged

WORKER_MEMORY = "512MB"
# A group's key + digest columns (24 bytes a row for INT64 keys) are joined in memory: about 100 MB.
ROWS_PER_GROUP = 4_000_000


@dataclasses.dataclass(frozen=True)
class Reduced:
    side_a: Side
    side_b: Side
    stats: Staged


def _groups(layout: Layout, jobs: int) -> list[list[int]]:
    """Unsettled buckets in contiguous groups: at least one per job, none above ROWS_PER_GROUP rows."""
    unsettled = layout.unsettled
    rows = sum(layout.rows[b] for b in unsettled)
    count = min(len(unsettled), max(jobs, -(-rows // ROWS_PER_GROUP)))
    return [group for group in (unsettled[i::count] for i in range(count)) if group] if count else []


def _jobs(layout: Layout, scratch: Path, options: CompareOptions, threads: int) -> list[BucketJob]:
    return [
        BucketJob(
            tuple(group),
            tuple(str(f) for b in group for f in layout.files_a[b]),
            tuple(str(f) for b in group for f in layout.files_b[b]),
            layout.key_a,
            layout.key_b,
            layout.with_partition,
            str(scratch / "a" / f"part-g{index:05d}.parquet"),
            str(scratch / "b" / f"part-g{index:05d}.parquet"),
            WORKER_MEMORY if options.jobs > 1 else options.memory_limit,
            threads,
        )
        for index, group in enumerate(_groups(layout, options.jobs))
    ]


def _run(jobs: list[BucketJob], workers: int) -> Iterator[BucketOutcome]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(settle_bucket, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        yield from pool.map(settle_bucket, jobs)


def _reduced(side: Side, directory: Path) -> Side:
    files = tuple(sorted(directory.glob("part-*.parquet"))) or (
        empty_file(side.schema, directory / "part-empty.parquet"),
    )
    return dataclasses.replace(side, files=files)


def reduce_sides(side_a: Side, side_b: Side, plan: Plan, options: CompareOptions, scratch: Path) -> Reduced | str:
    """Reduced inputs holding every row that may differ, or the reason staged compare does not apply."""
    started = time.perf_counter()
    layout = co_partitioned(side_a, side_b, plan, options)
    if isinstance(layout, str):
        return layout
    unsettled = layout.unsettled
    verify_read(  # the page checksums of the buckets about to be read, and only those
        plan,
        dataclasses.replace(side_a, files=tuple(f for b in unsettled for f in layout.files_a[b])),
        dataclasses.replace(side_b, files=tuple(f for b in unsettled for f in layout.files_b[b])),
    )
    root = scratch / "staged"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
    threads = 1 if options.jobs > 1 else options.threads
    outcomes = list(_run(_jobs(layout, root, options, threads), options.jobs))
    stats = Staged(
        buckets=layout.buckets,
        settled=layout.buckets - len(layout.unsettled),
        examined=len(layout.unsettled),
        candidate_keys=sum(o.candidates for o in outcomes),
        rows_read_a=sum(o.rows_a for o in outcomes),
        rows_read_b=sum(o.rows_b for o in outcomes),
        jobs=options.jobs,
        seconds=round(time.perf_counter() - started, 3),
    )
    return Reduced(_reduced(side_a, root / "a"), _reduced(side_b, root / "b"), stats)
