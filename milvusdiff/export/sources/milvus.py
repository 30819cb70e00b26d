"""Read a Milvus collection with query_iterator, in the largest batches that pay off, into snapshot tables.

Measured on Milvus Lite: about 10k rows/s at batch 16384 after a flush, 400 rows/s at batch 1000 on
unflushed data (every filtered query scans the memtable), so the export flushes first and reads big
batches. Rows come back as dicts with dynamic keys flattened; `rows_to_table` folds those into `$meta`
exactly as the ShadowClient did when the rows were written, so both stores land in the same form.

Partitions: when the collection has user partitions that hold rows (and no partition-key field), each
partition is read in its own pass so `$partition` can be filled. The PostgreSQL source applies the
same rule to its `$partition` column, so snapshots of two agreeing stores have the same columns.

Parallel readers split an INT64 key space into disjoint ranges between the smallest and largest key
(found by bisecting with count(*), a few dozen cheap queries); the outer ranges are open-ended, so the
split only affects balance, never which rows are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from milvusdiff.config import Settings, is_milvus_lite
from milvusdiff.errors import SnapshotError, first_line
from milvusdiff.export.sources import ExtraFile, ReadOptions, tag_source
from milvusdiff.services.milvus import (
    describe_target,
    milvus_client_kwargs,
    silence_known_lite_noise,
    unreachable,
)
from milvusdiff.types.convert import rows_to_table, snapshot_schema
from milvusdiff.types.spec import DEFAULT_PARTITION, CollectionSpec

_INT64_MIN = -(2**63) + 1  # the parser reads "-9223372036854775808" as a negated literal that overflows
_INT64_MAX = 2**63 - 1
_COUNT = "count(*)"
# Every write acknowledged before the export started must be read: the default (Bounded) may lag.
_STRONG = "Strong"


silence_known_lite_noise()


def connect(settings: Settings, database: str = "") -> MilvusClient:
    """A plain client (export only reads), in `database` if named (else the URI's); a Lite database that
    does not exist is an error, not created."""
    if is_milvus_lite(settings.milvus_uri) and not Path(settings.milvus_uri).expanduser().exists():
        raise SnapshotError(f"no Milvus Lite database at {Path(settings.milvus_uri).expanduser()}")
    try:
        return MilvusClient(**milvus_client_kwargs(settings), db_name=database)
    except MilvusException as exc:
        raise unreachable(settings, exc) from exc


@dataclass(frozen=True)
class _Task:
    partition: str | None
    filter: str


class MilvusReading:
    kind = "milvus"

    def __init__(
        self, client: MilvusClient, collection: str, settings: Settings, options: ReadOptions, label: str = ""
    ) -> None:
        self.client = client
        self.name = collection
        self.uri = describe_target(settings)
        self.options = options
        self.notes: list[str] = []
        if not client.has_collection(collection):
            raise SnapshotError(f"collection {collection!r} does not exist in Milvus at {self.uri}")
        # named as the shadow names it (`label`: `db.collection` in another database than the URI's)
        self.spec = CollectionSpec.from_milvus(label or collection, client.describe_collection(collection))
        if options.flush:
            client.flush(collection)
            self.notes.append("flushed before reading")
        self.loaded_here = self._ensure_loaded()
        partitions = client.list_partitions(collection)
        self.with_partition = not self.spec.has_partition_key and any(
            p != DEFAULT_PARTITION and self._holds_rows(p) for p in partitions
        )
        self.partitions: list[str | None] = list(partitions) if self.with_partition else [None]
        self.schema = tag_source(snapshot_schema(self.spec, with_partition=self.with_partition), self.kind)
        self.expected_rows: int | None = self._count()

    def _ensure_loaded(self) -> bool:
        state = str(self.client.get_load_state(self.name).get("state", ""))
        if state.endswith("Loaded"):
            return False
        self.client.load_collection(self.name)
        self.notes.append("the collection was not loaded: loaded for the export, released after")
        return True

    def _count(self, expr: str = "") -> int:
        result = self.client.query(self.name, filter=expr, output_fields=[_COUNT], consistency_level=_STRONG)
        return int(result[0][_COUNT])

    def _holds_rows(self, partition: str) -> bool:
        # not count(*): Milvus Lite 3.2 ignores partition_names there and counts the whole collection
        found = self.client.query(
            self.name,
            filter="",
            output_fields=[self.spec.primary.name],
            partition_names=[partition],
            limit=1,
            consistency_level=_STRONG,
        )
        return bool(found)

    # -- parallel key ranges -------------------------------------------------------------------

    def _key_ranges(self) -> list[str]:
        wanted = self.options.parallel
        if wanted <= 1:
            return [""]
        key = self.spec.primary
        if key.type != "INT64":
            self.notes.append(f"parallel export needs an INT64 primary key ({key.name} is {key.type}): one reader")
            return [""]
        if not self.expected_rows:
            return [""]
        smallest = _bisect(lambda x: self._count(f"{key.name} <= {x}") > 0, _INT64_MIN, _INT64_MAX)
        largest = _bisect(lambda x: self._count(f"{key.name} > {x}") == 0, smallest, _INT64_MAX)
        span = largest - smallest + 1
        cuts = sorted({smallest + span * i // wanted for i in range(1, wanted)} - {smallest})
        if not cuts:
            return [""]
        bounds: list[tuple[int | None, int | None]] = list(zip([None, *cuts], [*cuts, None], strict=True))
        self.notes.append(f"{len(bounds)} parallel readers over {key.name} ranges split at {cuts}")
        return [_range_filter(key.name, low, high) for low, high in bounds]

    # -- reading -------------------------------------------------------------------------------

    def producers(self) -> list[Iterable[pa.Table]]:
        tasks = [_Task(p, f) for p in self.partitions for f in self._key_ranges()]
        readers = min(self.options.parallel, len(tasks))
        return [self._read(tasks[i::readers]) for i in range(readers)]

    def _read(self, tasks: list[_Task]) -> Iterator[pa.Table]:
        for task in tasks:
            try:
                iterator = self.client.query_iterator(
                    self.name,
                    batch_size=self.options.batch_size,
                    filter=task.filter,
                    output_fields=["*"],
                    partition_names=[task.partition] if task.partition else None,
                    consistency_level=_STRONG,
                )
                try:
                    while rows := iterator.next():
                        yield rows_to_table(
                            rows, self.spec, partition=task.partition, with_partition=self.with_partition
                        )
                finally:
                    iterator.close()
            except MilvusException as exc:
                raise SnapshotError(f"reading {self.name!r} from Milvus failed: {first_line(exc)}") from exc

    def store_count(self) -> int | None:
        return self._count()

    def extras(self) -> dict[str, Any]:
        return {"partitions": [p for p in self.partitions if p is not None]}

    def extra_files(self) -> list[ExtraFile]:
        return []


def _bisect(holds: Callable[[int], bool], lo: int, hi: int) -> int:
    """Smallest x in [lo, hi] for which holds(x), given that holds is monotone and holds(hi)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _range_filter(key: str, low: int | None, high: int | None) -> str:
    parts = ([f"{key} >= {low}"] if low is not None else []) + ([f"{key} < {high}"] if high is not None else [])
    return " and ".join(parts)


@contextmanager
def open_milvus(
    collection: str, settings: Settings, options: ReadOptions, database: str = "", label: str = ""
) -> Iterator[MilvusReading]:
    client = connect(settings, database)
    reading: MilvusReading | None = None
    try:
        reading = MilvusReading(client, collection, settings, options, label)
        yield reading
    finally:
        if reading is not None and reading.loaded_here:
            client.release_collection(collection)
        client.close()
