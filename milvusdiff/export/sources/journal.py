"""Read the journal: one row per key (what was last intended for it) plus the operation log.

The key states are what compare's arbitration consults for each differing key; the operation log
goes beside them (`oplog.parquet`) so a snapshot can explain how a key got its state.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.config import Settings
from milvusdiff.errors import SnapshotError
from milvusdiff.export.sources import ExtraFile, ReadOptions, tag_source
from milvusdiff.services.journal import (
    COMPLETE_KEY,
    FORMAT_VERSION,
    FORMAT_VERSION_KEY,
    STATE_SCHEMA_FIELDS,
    Adoption,
    Journal,
)
from milvusdiff.snapshot_format import KEY_META, format_metadata
from milvusdiff.types.digest import DIGEST_VERSION, DIGEST_VERSION_KEY
from milvusdiff.types.spec import shadow_name, split_shadow_name
from milvusdiff.types.typemap import TIMESTAMP_TYPE, arrow_field

OPLOG_NAME = "oplog.parquet"
_OPLOG_TEXT_COLUMNS = ("collection", "op", "partition", "status", "error")


def _oplog_schema(key_type: pa.DataType) -> pa.Schema:
    return pa.schema(
        [
            pa.field("seq", pa.uint64()),
            pa.field("collection", pa.string()),
            pa.field("op", pa.string()),
            pa.field("partition", pa.string()),
            pa.field("n_keys", pa.int64()),
            pa.field("keys_sample", pa.list_(key_type)),
            pa.field("time", TIMESTAMP_TYPE),
            pa.field("status", pa.string()),
            pa.field("error", pa.string()),
        ]
    )


class JournalReading:
    kind = "journal"
    with_partition = False
    expected_rows: int | None = None  # counting a collection's keys would take a pass of its own

    def __init__(
        self, journal: Journal, collection: str, options: ReadOptions, adopted: Adoption | None = None
    ) -> None:
        self.journal = journal
        self.adopted = adopted
        self.name = collection
        self.uri = str(journal.path.resolve())
        self.options = options
        self.notes: list[str] = []
        spec = journal.collection_spec(collection)
        if spec is None:
            raise SnapshotError(f"the journal at {self.uri} has no collection {collection!r}")
        self.spec = spec.with_name(collection)  # a collection of another database: by its shadow name
        self.key_field = arrow_field(spec.primary).remove_metadata()
        self.complete = journal.covers_creation(collection)
        metadata: dict[bytes, bytes] = {
            KEY_META: json.dumps([spec.primary.name]).encode(),
            **format_metadata(),
            FORMAT_VERSION_KEY.encode(): str(FORMAT_VERSION).encode(),
            DIGEST_VERSION_KEY.encode(): str(DIGEST_VERSION).encode(),
            COMPLETE_KEY.encode(): b"true" if self.complete else b"false",
        }
        self.schema = tag_source(pa.schema([self.key_field, *STATE_SCHEMA_FIELDS], metadata=metadata), self.kind)
        self.states: Counter[str] = Counter()

    def producers(self) -> list[Iterable[pa.Table]]:
        return [self._read()]

    def _read(self) -> Iterator[pa.Table]:
        batches = self.journal.iter_state_batches(
            self.name, self.key_field.name, self.key_field.type, self.options.batch_size, self.adopted
        )
        for batch in batches:
            for entry in pc.value_counts(batch.column("state")).to_pylist():
                self.states[entry["values"]] += entry["counts"]
            yield pa.Table.from_batches([batch], schema=self.schema)

    def store_count(self) -> int | None:
        return None

    def extras(self) -> dict[str, Any]:
        return {
            "states": dict(sorted(self.states.items())),
            "complete": self.complete,
            "format_version": FORMAT_VERSION,
            "digest_version": DIGEST_VERSION,
            "renames_in_doubt": self._renames_in_doubt(),
        }

    def _renames_in_doubt(self) -> list[dict[str, Any]]:
        """Renames from or to this collection whose outcome is unknown: its rows may be under either name."""
        found = []
        for record in self.journal.renames_in_doubt():
            new = shadow_name(split_shadow_name(record["collection"])[0], record["target"])
            if self.name in (record["collection"], new):
                found.append({"seq": record["seq"], "from": record["collection"], "to": new})
        return found

    def extra_files(self) -> list[ExtraFile]:
        schema = _oplog_schema(self.key_field.type)
        return [ExtraFile(OPLOG_NAME, schema, self._oplog_batches(schema))]

    def _oplog_batches(self, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        records: list[dict[str, Any]] = []
        for record in self.journal.iter_ops(self.name):
            records.append(record)
            if len(records) >= self.options.batch_size:
                yield _oplog_batch(records, schema)
                records = []
        if records:
            yield _oplog_batch(records, schema)


def _oplog_batch(records: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Journal records (JSON dicts, as the journal hands them back) as one batch of the oplog schema."""
    seconds = np.array([r["time"] for r in records], dtype=np.float64)
    columns = {
        "seq": pa.array([r["seq"] for r in records], pa.uint64()),
        **{name: pa.array([r.get(name) for r in records], pa.string()) for name in _OPLOG_TEXT_COLUMNS},
        "n_keys": pa.array([r["n_keys"] for r in records], pa.int64()),
        "keys_sample": pa.array([r["keys_sample"] for r in records], schema.field("keys_sample").type),
        "time": pa.array(np.round(seconds * 1e6).astype(np.int64), pa.int64()).cast(TIMESTAMP_TYPE),
    }
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)


@contextmanager
def open_journal(
    collection: str, settings: Settings, options: ReadOptions, adopted: Adoption | None = None
) -> Iterator[JournalReading]:
    path = settings.journal_path
    if not (path / "data.mdb").exists():
        raise SnapshotError(f"no journal at {path}")
    with Journal(path, readonly=True) as journal:
        yield JournalReading(journal, collection, options, adopted)
