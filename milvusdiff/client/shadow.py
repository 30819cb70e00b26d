"""ShadowClient: a pymilvus MilvusClient whose every write is mirrored and journaled.

One write goes, in this order:
  1. the journal records the intent (keys, digests of the rows as written), durably;
  2. the PostgreSQL transaction is written but not committed;
  3. Milvus is called;
  4. PostgreSQL commits;
  5. the journal marks the operation committed and updates each key's state.
A definite Milvus error rolls PostgreSQL back, marks the operation failed and raises SyncError.
An unknown outcome (timeout, dropped connection) marks the keys IN_DOUBT and raises InDoubtError.
A PostgreSQL commit failure after Milvus succeeded is journaled as pg_missing and raises SyncError.
If the process dies anywhere in between, the pending intent turns IN_DOUBT when the journal is
next opened. So the journal always knows what happened; nothing is lost silently.

With auto_id the keys exist only once Milvus has answered, so steps 2 and 3 swap for inserts.
Reads (query, search, get, iterators) are inherited untouched.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pymilvus import MilvusClient
from pymilvus.client.types import OmitZeroDict
from pymilvus.exceptions import MilvusException

from milvusdiff.client.outcome import outcome_unknown
from milvusdiff.config import Settings, redact
from milvusdiff.errors import InDoubtError, MilvusDiffError, SchemaError, SyncError, first_line
from milvusdiff.services.journal import Journal
from milvusdiff.services.milvus import hold_lite, key_in_filter, let_go_lite, milvus_client_kwargs, unreachable
from milvusdiff.services.pg import (
    PendingWrite,
    ShadowStore,
    check_collection_name,
    check_identifier,
    stage_with_retries,
)
from milvusdiff.services.pg_target import resolve_pg_conn
from milvusdiff.snapshot_format import META_COLUMN
from milvusdiff.types.canonical import canonical_json
from milvusdiff.types.convert import rows_to_table
from milvusdiff.types.digest import row_digests, unkeyed_digests
from milvusdiff.types.spec import DEFAULT_PARTITION, CollectionSpec
from milvusdiff.types.typemap import validate_field

log = logging.getLogger(__name__)

_KEY_QUERY_BATCH = 16384  # Milvus' largest query result (offset + limit)


class ShadowClient(MilvusClient):
    """Drop-in MilvusClient that mirrors writes into PostgreSQL and journals them in LMDB.

    Extra keyword arguments: `pg_conn` (default: PG_CONN, else an embedded server),
    `journal_path` (default: MILVUSDIFF_JOURNAL, else ./.milvusdiff/journal) and `pg_schema`
    (the PostgreSQL schema of the shadow tables; default: MILVUSDIFF_PG_SCHEMA, else milvusdiff).
    """

    def __init__(
        self,
        uri: str | None = None,
        user: str = "",
        password: str = "",
        db_name: str = "",
        token: str = "",
        timeout: float | None = None,
        *,
        pg_conn: str | None = None,
        journal_path: str | Path | None = None,
        pg_schema: str | None = None,
        **kwargs: Any,
    ) -> None:
        settings = Settings.resolve(
            milvus_uri=uri, milvus_token=token or None, pg_conn=pg_conn, journal_path=journal_path
        )
        try:
            super().__init__(
                **milvus_client_kwargs(settings),
                user=user,
                password=password,
                db_name=db_name,
                timeout=timeout,
                **kwargs,
            )
        except MilvusException as exc:
            raise unreachable(settings, exc) from exc
        self.settings = settings
        self.shadow = ShadowStore(resolve_pg_conn(settings), schema=pg_schema)
        self.journal = Journal(settings.journal_path)
        self._lite = hold_lite(settings)
        self._specs: dict[str, CollectionSpec] = {}
        self._specs_lock = threading.Lock()
        log.info("ShadowClient: milvus=%s journal=%s", redact(settings.milvus_uri), settings.journal_path)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ShadowClient:
        return cls(
            settings.milvus_uri,
            token=settings.milvus_token or "",
            pg_conn=settings.pg_conn,
            journal_path=settings.journal_path,
            **kwargs,
        )

    def close(self) -> None:
        """Close the three stores; the last client of a Milvus Lite database frees it for other processes."""
        super().close()
        self.shadow.close()
        self.journal.close()
        lite, self._lite = self._lite, None
        let_go_lite(lite)

    # -- collections ---------------------------------------------------------------------------

    def spec(self, collection_name: str) -> CollectionSpec:
        """The mirrored collection's spec; refuses collections this client's stores never saw created."""
        with self._specs_lock:
            cached = self._specs.get(collection_name)
        if cached is not None:
            return cached
        found = self.shadow.spec(collection_name) or self.journal.collection_spec(collection_name)
        if found is None:
            raise SchemaError(
                f"collection {collection_name!r} has no shadow copy: create it through ShadowClient first"
            )
        with self._specs_lock:
            self._specs[collection_name] = found
        return found

    def create_collection(
        self,
        collection_name: str,
        dimension: int | None = None,
        primary_field_name: str = "id",
        id_type: str = "int",
        vector_field_name: str = "vector",
        metric_type: str = "COSINE",
        auto_id: bool = False,
        timeout: float | None = None,
        schema: Any = None,
        index_params: Any = None,
        **kwargs: Any,
    ) -> None:
        check_collection_name(collection_name)
        if schema is not None:
            planned = CollectionSpec.from_milvus(collection_name, schema)
            for field in planned.fields:
                validate_field(field)
                check_identifier(field.name, f"field name in collection {collection_name!r}")
        existed = self.has_collection(collection_name)
        super().create_collection(
            collection_name,
            dimension=dimension,
            primary_field_name=primary_field_name,
            id_type=id_type,
            vector_field_name=vector_field_name,
            metric_type=metric_type,
            auto_id=auto_id,
            timeout=timeout,
            schema=schema,
            index_params=index_params,
            **kwargs,
        )
        if existed:
            self.spec(collection_name)  # an existing collection must already be mirrored
            return
        spec = CollectionSpec.from_milvus(collection_name, self.describe_collection(collection_name))
        try:
            for field in spec.fields:
                validate_field(field)
            self.shadow.create_table(spec)
        except MilvusDiffError:
            super().drop_collection(collection_name)
            raise
        self.journal.record_creation(spec)
        with self._specs_lock:
            self._specs[collection_name] = spec

    def drop_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        super().drop_collection(collection_name, timeout=timeout, **kwargs)
        self.shadow.drop_table(collection_name)
        self.journal.record_drop_collection(collection_name)
        with self._specs_lock:
            self._specs.pop(collection_name, None)

    def create_partition(
        self, collection_name: str, partition_name: str, timeout: float | None = None, **kwargs: Any
    ) -> None:
        self.spec(collection_name)
        seq = self.journal.begin(collection_name, "create_partition", [], partition=partition_name)
        self._settle_ddl(
            seq,
            lambda: super(ShadowClient, self).create_partition(
                collection_name, partition_name, timeout=timeout, **kwargs
            ),
        )

    def drop_partition(
        self, collection_name: str, partition_name: str, timeout: float | None = None, **kwargs: Any
    ) -> None:
        spec = self.spec(collection_name)
        keys = self.shadow.partition_keys(spec, partition_name)
        seq = self.journal.begin(collection_name, "drop_partition", keys, partition=partition_name)
        pending = self._stage(seq, lambda: self.shadow.stage_delete(spec, keys, partition=partition_name))
        self._finish(
            seq,
            pending,
            lambda: super(ShadowClient, self).drop_partition(
                collection_name, partition_name, timeout=timeout, **kwargs
            ),
        )

    # -- row writes ----------------------------------------------------------------------------

    def insert(
        self,
        collection_name: str,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        timeout: float | None = None,
        partition_name: str | None = "",
        **kwargs: Any,
    ) -> dict[str, Any]:
        return self._write_rows("insert", collection_name, data, timeout, partition_name, kwargs)

    def upsert(
        self,
        collection_name: str,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        timeout: float | None = None,
        partition_name: str | None = "",
        **kwargs: Any,
    ) -> dict[str, Any]:
        return self._write_rows("upsert", collection_name, data, timeout, partition_name, kwargs)

    def _write_rows(
        self,
        op: str,
        collection_name: str,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        timeout: float | None,
        partition_name: str | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        rows = [data] if isinstance(data, Mapping) else list(data)
        parent = super().insert if op == "insert" else super().upsert
        if not rows:
            return parent(collection_name, rows, timeout=timeout, partition_name=partition_name, **kwargs)
        spec = self.spec(collection_name)
        partition = self._partition_of(spec, partition_name)
        table = rows_to_table(rows, spec)
        if op == "upsert" and kwargs.get("partial_update"):
            table = self._merge_partial(spec, table, rows)

        def call_milvus() -> Any:
            return parent(collection_name, data, timeout=timeout, partition_name=partition_name, **kwargs)

        if spec.auto_id and op == "insert":
            return self._write_auto_id(spec, table, partition, call_milvus)
        keys = table.column(spec.primary.name).to_pylist()
        digests = row_digests(table, spec).to_pylist()
        seq = self.journal.begin(collection_name, op, keys, digests, partition=partition)
        pending = self._stage(seq, lambda: self.shadow.stage_upsert(spec, table, partition))
        return self._finish(seq, pending, call_milvus)

    def _merge_partial(self, spec: CollectionSpec, table: pa.Table, rows: list[Mapping[str, Any]]) -> pa.Table:
        """A partial_update upsert changes only the fields it names (and merges dynamic keys); the
        shadow and the journal need the whole row as it will be, so the named fields are laid over
        the row the shadow holds. Keys not yet present take the row as given, like Milvus does.

        Two concurrent partial updates of one key may each merge with the row before the other.
        """
        key = spec.primary.name
        named = {name for row in rows for name in row}
        current = self.shadow.rows_for_keys(spec, table.column(key).to_pylist())
        if current.num_rows == 0:
            return table
        where = {k: i for i, k in enumerate(current.column(key).to_pylist())}
        positions = np.array([where.get(k, -1) for k in table.column(key).to_pylist()], dtype=np.int64)
        known = pa.array(positions >= 0)
        take = pa.array(np.where(positions >= 0, positions, 0))
        for field in spec.fields:
            if field.name in named or field.is_primary:
                continue
            before = current.column(field.name).take(take).combine_chunks()
            index = table.schema.get_field_index(field.name)
            merged = pc.if_else(known, before, table.column(field.name).combine_chunks())
            table = table.set_column(index, table.schema.field(index), merged)
        if spec.enable_dynamic_field:
            before_meta = current.column(META_COLUMN).take(take).to_pylist()
            given_meta = table.column(META_COLUMN).to_pylist()
            merged_meta = [
                canonical_json({**json.loads(old or "{}"), **json.loads(new or "{}")}) if hit else new
                for old, new, hit in zip(before_meta, given_meta, (positions >= 0).tolist(), strict=True)
            ]
            index = table.schema.get_field_index(META_COLUMN)
            table = table.set_column(index, table.schema.field(index), pa.array(merged_meta, pa.string()))
        return table

    def _write_auto_id(
        self, spec: CollectionSpec, table: pa.Table, partition: str | None, call_milvus: Callable[[], Any]
    ) -> Any:
        """Milvus assigns the keys, so the shadow write is staged once the ids are known. The intent records
        the rows' digests without their keys, so that rows of a write whose outcome stays unknown can be told
        apart from rows nobody wrote."""
        seq = self.journal.begin_unkeyed(spec.name, unkeyed_digests(table, spec).to_pylist(), partition=partition)
        result = self._call_milvus(seq, None, call_milvus)
        ids = list(result["ids"])
        keyed = table.set_column(
            table.schema.get_field_index(spec.primary.name),
            table.schema.field(spec.primary.name),
            pa.array(ids, table.schema.field(spec.primary.name).type),
        )
        self.journal.attach_keys(seq, ids, row_digests(keyed, spec).to_pylist())
        try:
            pending = stage_with_retries(lambda: self.shadow.stage_upsert(spec, keyed, partition))
            pending.commit()
        except Exception as exc:
            self.journal.mark_pg_missing(seq, _describe(exc))
            raise SyncError(f"Milvus inserted {len(ids)} rows but PostgreSQL did not: {_describe(exc)}") from exc
        self.journal.commit(seq)
        return result

    def delete(
        self,
        collection_name: str,
        ids: list[Any] | str | int | None = None,
        timeout: float | None = None,
        filter: str | None = None,
        partition_name: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Delete by ids or by filter. A filter (or a partition) is first resolved to the exact keys
        it matches in Milvus, and those keys are deleted everywhere, so every store drops the same rows."""
        spec = self.spec(collection_name)
        keys = [] if ids is None else [ids] if isinstance(ids, (int, str)) else list(ids)
        if (filter and keys) or not (filter or keys):
            # Both, or neither (no ids, empty filter): Milvus refuses; let it say so, mirroring nothing.
            # Resolving an empty filter here would match, and so delete, every row.
            return super().delete(
                collection_name, ids=ids, filter=filter, timeout=timeout, partition_name=partition_name, **kwargs
            )
        if keys:
            if partition_name:
                keys = self._matching_keys(spec, key_in_filter(spec.primary.name, keys), partition_name, timeout)
        else:
            keys = self._matching_keys(spec, filter or "", partition_name, timeout)
        if not keys:
            return OmitZeroDict({"delete_count": 0})  # what pymilvus returns when nothing matched
        seq = self.journal.begin(collection_name, "delete", keys, partition=partition_name or None)
        pending = self._stage(seq, lambda: self.shadow.stage_delete(spec, keys, partition=partition_name or None))

        def call_milvus() -> Any:
            return super(ShadowClient, self).delete(
                collection_name, ids=keys, timeout=timeout, partition_name=partition_name, **kwargs
            )

        return self._finish(seq, pending, call_milvus)

    # -- the protocol --------------------------------------------------------------------------

    def _stage(self, seq: int, stage: Callable[[], PendingWrite]) -> PendingWrite:
        """Step 2, staged in PostgreSQL (retried when it loses a race with another writer) before Milvus."""
        try:
            return stage_with_retries(stage)
        except Exception as exc:
            self.journal.fail(seq, _describe(exc))
            raise SyncError(f"PostgreSQL refused the write, nothing was sent to Milvus: {_describe(exc)}") from exc

    def _call_milvus(self, seq: int, pending: PendingWrite | None, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            if pending is not None:
                pending.rollback()
            if outcome_unknown(exc):
                self.journal.mark_in_doubt(seq, _describe(exc))
                raise InDoubtError(
                    f"Milvus did not confirm operation {seq}; its keys are journaled IN_DOUBT: {_describe(exc)}"
                ) from exc
            self.journal.fail(seq, _describe(exc))
            raise SyncError(f"Milvus rejected operation {seq}: {_describe(exc)}") from exc

    def _finish(self, seq: int, pending: PendingWrite, call: Callable[[], Any]) -> Any:
        result = self._call_milvus(seq, pending, call)
        try:
            pending.commit()
        except Exception as exc:
            self.journal.mark_pg_missing(seq, _describe(exc))
            raise SyncError(
                f"Milvus applied operation {seq} but PostgreSQL could not commit it: {_describe(exc)}"
            ) from exc
        self.journal.commit(seq)
        return result

    def _settle_ddl(self, seq: int, call: Callable[[], Any]) -> None:
        self._call_milvus(seq, None, call)
        self.journal.commit(seq)

    # -- helpers -------------------------------------------------------------------------------

    def _partition_of(self, spec: CollectionSpec, partition_name: str | None) -> str | None:
        """The shadow's partition column: the partition written to, unknown (None) under a partition key."""
        if spec.has_partition_key:
            return None
        return partition_name or DEFAULT_PARTITION

    def _matching_keys(
        self, spec: CollectionSpec, expr: str, partition_name: str | None, timeout: float | None
    ) -> list[Any]:
        """The keys `expr` matches. One query when they fit in Milvus' result window, as a delete's usually
        do; on Milvus Lite that is ~3 ms where a query_iterator takes ~1 s on 25k unflushed rows (each of its
        pages rescans them). The iterator only when the window is full and more keys may match."""
        partitions = [partition_name] if partition_name else None
        found = self.query(
            spec.name,
            filter=expr,
            output_fields=[spec.primary.name],
            partition_names=partitions,
            limit=_KEY_QUERY_BATCH,
            timeout=timeout,
        )
        if len(found) < _KEY_QUERY_BATCH:
            return [row[spec.primary.name] for row in found]
        iterator = self.query_iterator(
            spec.name,
            batch_size=_KEY_QUERY_BATCH,
            filter=expr,
            output_fields=[spec.primary.name],
            partition_names=partitions,
            timeout=timeout,
        )
        keys: list[Any] = []
        try:
            while batch := iterator.next():
                keys.extend(row[spec.primary.name] for row in batch)
        finally:
            iterator.close()
        return keys


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"
