"""The three stores an export can read, behind one shape the writer consumes.

A source is opened as a context manager that yields a `Reading`: the snapshot schema and spec,
one or more producers of Arrow tables (several when reading in parallel), and the store's own row
count, asked again after reading so that disagreement can be reported rather than assumed away.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from milvusdiff.config import Settings
from milvusdiff.snapshot_format import SOURCE_META
from milvusdiff.types.spec import CollectionSpec

if TYPE_CHECKING:
    from milvusdiff.services.journal import Adoption

SOURCES = ("milvus", "pg", "journal")


@dataclass(frozen=True)
class ReadOptions:
    batch_size: int
    flush: bool
    parallel: int


@dataclass(frozen=True)
class ExtraFile:
    """A file written beside the parts, with its own schema (the journal's operation log)."""

    name: str
    schema: pa.Schema
    batches: Iterable[pa.RecordBatch]


class Reading(Protocol):
    kind: str
    uri: str  # credentials removed
    spec: CollectionSpec
    schema: pa.Schema
    with_partition: bool
    notes: list[str]

    @property
    def expected_rows(self) -> int | None:
        """The store's count before reading, for the progress ETA; None while unknown or when it cannot say cheaply."""

    def producers(self) -> list[Iterable[pa.Table]]: ...

    def store_count(self) -> int | None: ...

    def extras(self) -> dict[str, Any]: ...

    def extra_files(self) -> list[ExtraFile]: ...


def tag_source(schema: pa.Schema, kind: str) -> pa.Schema:
    """Every snapshot file says which store it came from (`milvusdiff.source`)."""
    return schema.with_metadata({**(schema.metadata or {}), SOURCE_META: kind.encode()})


def open_source(
    kind: str, collection: str, settings: Settings, options: ReadOptions, adopted: Adoption | None = None
) -> AbstractContextManager[Reading]:
    """`collection` is `db.collection`, or a bare name in the URI's database. Every snapshot names it by its
    shadow name (types.spec.shadow_name), the name the shadow and the journal know it by, so a compare
    arbitrating with the LMDB journal finds its key states. `adopted` goes to the journal (export_collection)."""
    from milvusdiff.services.milvus import resolve_collection, shadow_database
    from milvusdiff.types.spec import shadow_name

    database, name = resolve_collection(settings, collection)
    shadow = shadow_name(shadow_database(settings, database), name)
    if kind == "milvus":
        from milvusdiff.export.sources.milvus import open_milvus

        return open_milvus(name, settings, options, database, label=shadow)
    if kind == "pg":
        from milvusdiff.export.sources.pg import open_pg

        return open_pg(shadow, settings, options)
    from milvusdiff.export.sources.journal import open_journal

    return open_journal(shadow, settings, options, adopted)
