"""The two stores a check reads, opened once per run.

A check runs many reads (one per filter, per search batch) against the same collection, so the
Milvus client, the shadow store, the collection's spec and its loaded state are set up once here.
The spec comes from the shadow's registry: it is what was written, and what the filters are
translated against. Milvus is read with a plain client, since checks never write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from milvusdiff.config import Settings
from milvusdiff.errors import CheckError, first_line
from milvusdiff.export.sources.milvus import connect
from milvusdiff.filters.columns import ColumnType
from milvusdiff.services.milvus import resolve_collection, shadow_database
from milvusdiff.services.pg import ShadowStore, adbc_connect
from milvusdiff.services.pg_target import resolve_pg_conn
from milvusdiff.types.spec import DEFAULT_PARTITION, CollectionSpec
from milvusdiff.workflow.fetch import loaded, milvus_partitions


@dataclass
class CheckStores:
    settings: Settings
    client: MilvusClient
    shadow: ShadowStore
    spec: CollectionSpec
    # Partitions to read one at a time ([None]: the whole collection at once).
    partitions: list[str | None]
    _arrow_reader: Any = None

    def arrow_reader(self) -> Any:
        """An ADBC connection to the shadow's database, opened on first use and kept for the run:
        connecting costs about 0.1 s, as much as reading a few thousand rows."""
        if self._arrow_reader is None:
            self._arrow_reader = adbc_connect(self.shadow.conninfo, autocommit=True)
        return self._arrow_reader

    def close(self) -> None:
        if self._arrow_reader is not None:
            self._arrow_reader.close()

    @property
    def with_partition(self) -> bool:
        """Whether result sets carry `$partition`: when the collection has user partitions, as in
        export, so that a row in the wrong partition counts as a changed value. Both sides follow
        this one decision, so their columns always match."""
        return self.partitions != [None]


def filter_columns(spec: CollectionSpec) -> dict[str, ColumnType]:
    """The column map the filter translators take: field name -> Milvus type, ("ARRAY", element) for arrays."""
    return {f.name: ("ARRAY", f.element_type or "") if f.type == "ARRAY" else f.type for f in spec.fields}


@contextmanager
def open_stores(collection: str, settings: Settings) -> Iterator[CheckStores]:
    """Both stores of `collection` (`db.collection`, or a bare name in the URI's database), the collection
    loaded in Milvus for the duration (and released after if it was not loaded before)."""
    database, collection = resolve_collection(settings, collection)
    shadow = ShadowStore(resolve_pg_conn(settings), max_connections=2, database=shadow_database(settings, database))
    try:
        spec = shadow.spec(collection)
        if spec is None:
            raise CheckError(f"collection {collection!r} has no shadow table: it was not created through ShadowClient")
        client = connect(settings, database)
        try:
            if not client.has_collection(collection):
                raise CheckError(f"collection {collection!r} does not exist in Milvus")
            with loaded(client, collection):
                partitions = milvus_partitions(client, spec)
                if partitions == [DEFAULT_PARTITION]:
                    partitions = [None]
                stores = CheckStores(settings, client, shadow, spec, partitions)
                try:
                    yield stores
                finally:
                    stores.close()
        except MilvusException as exc:
            raise CheckError(f"Milvus failed on {collection!r}: {first_line(exc)}") from exc
        finally:
            client.close()
    finally:
        shadow.close()


class _Refusals(logging.Filter):
    """pymilvus logs every refused call, traceback included, before raising it; a check turns the
    refusal into one line (CheckError), so the log would only repeat it at length."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("RPC error")


_PYMILVUS_CALLS = logging.getLogger("pymilvus.decorators")


def milvus_call(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a Milvus read; a refusal (bad filter, unknown field, unloaded collection) becomes a CheckError."""
    quiet = _Refusals()
    _PYMILVUS_CALLS.addFilter(quiet)
    try:
        return call(*args, **kwargs)
    except MilvusException as exc:
        raise CheckError(f"Milvus refused {what}: {first_line(getattr(exc, 'message', None) or exc)}") from exc
    finally:
        _PYMILVUS_CALLS.removeFilter(quiet)
