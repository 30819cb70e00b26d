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
next opened. So the journal always knows what happened; nothing is lost silently. A rename whose outcome
is in doubt is settled when a ShadowClient opens, by asking Milvus which name it holds (client/renames.py).

With auto_id the keys exist only once Milvus has answered, so steps 2 and 3 swap for inserts.
Reads (query, search, get, iterators) are inherited untouched. Which methods are mirrored, refused
(ShadowUnsupportedError, before Milvus is called) or passed through is listed in client/coverage.py.

Databases: a shadow belongs to a (database, collection) pair (types.spec.shadow_name): the collections of
the database the URI names keep bare names, those of any other are prefixed with it. The database of a
call is its `db_name` keyword, else the client's (URI path, `db_name=`, use_database).
Aliases: a write through an alias is resolved to the collection it points at (asked of Milvus) and sent
to Milvus under that collection's name, so an alias moved meanwhile cannot make the stores disagree.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pymilvus import MilvusClient
from pymilvus.client.call_context import CallContext
from pymilvus.client.types import OmitZeroDict
from pymilvus.exceptions import MilvusException

from milvusdiff.client.coverage import REFUSED, ROW_CHANGING_PROPERTIES
from milvusdiff.client.outcome import outcome_unknown
from milvusdiff.client.renames import RenameRecovery, settle_renames
from milvusdiff.config import Settings, redact
from milvusdiff.errors import (
    InDoubtError,
    JournalError,
    MilvusDiffError,
    SchemaError,
    ShadowUnsupportedError,
    SyncError,
    first_line,
)
from milvusdiff.services.journal import Journal
from milvusdiff.services.milvus import (
    hold_lite,
    key_in_filter,
    let_go_lite,
    milvus_client_kwargs,
    shadow_database,
    unreachable,
    uri_database,
)
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
from milvusdiff.types.spec import DEFAULT_DATABASE, DEFAULT_PARTITION, CollectionSpec, shadow_name
from milvusdiff.types.typemap import validate_field

log = logging.getLogger(__name__)

_KEY_QUERY_BATCH = 16384  # Milvus' largest query result (offset + limit)


@dataclass(frozen=True)
class _Target:
    """Where a call on a collection lands: its name in Milvus (an alias resolved), the call's `db_name`
    keyword (for the Milvus calls made on its behalf), its spec, and the shadow store and journal of its
    database."""

    name: str
    db: dict[str, str]
    spec: CollectionSpec
    shadow: ShadowStore
    journal: Journal


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
        prefix = shadow_database(settings, self.database())
        self.shadow = ShadowStore(resolve_pg_conn(settings), schema=pg_schema, database=prefix)
        self.journal = Journal(settings.journal_path, database=prefix)
        try:
            self.journal.bind_database(uri_database(settings))
        except JournalError:
            self.journal.close()
            self.shadow.close()
            super().close()
            raise
        self._lite = hold_lite(settings)
        self._specs: dict[tuple[str | None, str], CollectionSpec] = {}  # by (shadow database, collection)
        self._specs_lock = threading.Lock()
        # Renames left in doubt (by this journal's recovery at open, or by an earlier client): settled now.
        try:
            self.rename_recovery: list[RenameRecovery] = settle_renames(self)
        except BaseException:
            self.close()
            raise
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

    def _generate_call_context(self, **kwargs: Any) -> CallContext:
        """pymilvus 3.0.2 sends every call to the client's database and ignores a per-call `db_name`; the
        ShadowClient honours it, for Milvus as for the shadow, so the two never disagree on where a call went."""
        context: CallContext = super()._generate_call_context(**kwargs)
        if not kwargs.get("db_name"):
            return context
        return CallContext(db_name=kwargs["db_name"], client_request_id=context._client_request_id)

    def database(self, db_name: str | None = None) -> str:
        """The database a call goes to: its `db_name`, else the client's."""
        return db_name or self._config.db_name or DEFAULT_DATABASE

    def stores(self, db_name: str | None = None) -> tuple[ShadowStore, Journal]:
        """The shadow store and the journal of a database (the client's by default)."""
        prefix = shadow_database(self.settings, self.database(db_name))
        if prefix == self.shadow.database:
            return self.shadow, self.journal
        return self.shadow.in_database(prefix), self.journal.in_database(prefix)

    def spec(self, collection_name: str, *, db_name: str | None = None) -> CollectionSpec:
        """The mirrored collection's spec; refuses collections this client's stores never saw created."""
        return self._target(collection_name, {"db_name": db_name} if db_name else {}).spec

    def _target(self, collection_name: str, kwargs: Mapping[str, Any]) -> _Target:
        db = {"db_name": kwargs["db_name"]} if kwargs.get("db_name") else {}
        database = self.database(db.get("db_name"))
        shadow, journal = self.stores(database)
        with self._specs_lock:
            found = self._specs.get((shadow.database, collection_name))
        if found is None:
            found = shadow.spec(collection_name) or journal.collection_spec(collection_name)
            if found is None:
                where = "" if shadow.database is None else f" in database {database!r}"
                raise SchemaError(
                    f"collection {collection_name!r}{where} has no shadow copy: create it through ShadowClient first"
                )
            with self._specs_lock:
                self._specs[(shadow.database, collection_name)] = found
        return _Target(collection_name, db, found, shadow, journal)

    def _forget(self, target: _Target) -> None:
        with self._specs_lock:
            self._specs.pop((target.shadow.database, target.name), None)

    def _resolve(self, collection_name: str, kwargs: Mapping[str, Any]) -> _Target:
        """The collection a call lands on; an alias resolves, by asking Milvus, to its collection."""
        try:
            return self._target(collection_name, kwargs)
        except SchemaError:
            alias_of = self._alias_target(collection_name, kwargs)
            if alias_of is None:
                raise
        return self._target(alias_of, kwargs)

    def _alias_target(self, alias: str, kwargs: Mapping[str, Any]) -> str | None:
        """The collection an alias points at in the call's database, or None. Milvus 2.3 answers DescribeAlias
        from the default database whatever the call's, so an answer about another database does not count and
        the aliases of the mirrored collections are listed instead (ListAliases names its database)."""
        database = self.database(kwargs.get("db_name"))
        try:
            found = super().describe_alias(alias, db_name=database)
        except MilvusException:
            found = {}
        if found.get("collection_name") and found.get("db_name", database) == database:
            return str(found["collection_name"])
        shadow, _ = self.stores(database)
        for collection in shadow.collections():
            try:
                listed = super().list_aliases(collection, db_name=database)
            except MilvusException:
                continue
            if alias in listed.get("aliases", []):
                return collection
        return None

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
        db = {"db_name": kwargs["db_name"]} if kwargs.get("db_name") else {}
        shadow, journal = self.stores(db.get("db_name"))
        check_collection_name(shadow_name(shadow.database, collection_name))
        if schema is not None:
            planned = CollectionSpec.from_milvus(collection_name, schema)
            for field in planned.fields:
                validate_field(field)
                check_identifier(field.name, f"field name in collection {collection_name!r}")
        # pymilvus creates the index and loads without the call's keywords, so in the client's database
        elsewhere = bool(db) and db["db_name"] != self.database()
        if elsewhere and schema is None:
            raise ShadowUnsupportedError(
                "create_collection without a schema and with a per-call db_name is refused: pymilvus would "
                "create its index in the client's database; pass a schema, or call use_database first"
            )
        if not elsewhere:
            kwargs.pop("db_name", None)
        existed = self.has_collection(collection_name, **db)
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
            index_params=None if elsewhere else index_params,
            **kwargs,
        )
        if elsewhere and index_params is not None:
            self.create_index(collection_name, index_params, timeout=timeout, **db)
            self.load_collection(collection_name, timeout=timeout, **db)
        if existed:
            self._target(collection_name, db)  # an existing collection must already be mirrored
            return
        spec = CollectionSpec.from_milvus(collection_name, self.describe_collection(collection_name, **db))
        try:
            for field in spec.fields:
                validate_field(field)
            shadow.create_table(spec)
        except MilvusDiffError:
            super().drop_collection(collection_name, **db)
            raise
        journal.record_creation(spec)
        with self._specs_lock:
            self._specs[(shadow.database, collection_name)] = spec

    def drop_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        super().drop_collection(collection_name, timeout=timeout, **kwargs)
        self._drop_shadow(collection_name, *self.stores(kwargs.get("db_name")))

    def _drop_shadow(self, collection_name: str, shadow: ShadowStore, journal: Journal) -> None:
        shadow.drop_table(collection_name)
        journal.record_drop_collection(collection_name)
        with self._specs_lock:
            self._specs.pop((shadow.database, collection_name), None)

    def rename_collection(
        self,
        old_name: str,
        new_name: str,
        target_db: str | None = "",
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """The shadow table, its registry entry and the journal's key states move to the new name."""
        database = self.database(kwargs.get("db_name"))
        if target_db and target_db != database:
            raise ShadowUnsupportedError(
                f"rename_collection into another database ({database!r} -> {target_db!r}) is not mirrored: "
                "Milvus Lite ignores target_db, so where the collection ends up is not certain"
            )
        target = self._target(old_name, kwargs)
        spec = target.spec
        check_collection_name(shadow_name(target.shadow.database, new_name))
        seq = target.journal.begin(old_name, "rename_collection", [], target=new_name)
        pending = self._stage(seq, lambda: target.shadow.stage_rename(spec, new_name))
        self._finish(
            seq,
            pending,
            lambda: super(ShadowClient, self).rename_collection(
                old_name, new_name, target_db=target_db, timeout=timeout, **kwargs
            ),
            settle=lambda: target.journal.commit_rename(seq, spec, new_name),
        )
        self._forget(target)

    def truncate_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Every row goes, in every store: the journal records each key DELETED by the truncate, so a
        validate afterwards finds Milvus right to be empty."""
        target = self._resolve(collection_name, kwargs)
        keys = target.shadow.keys(target.spec)
        seq = target.journal.begin(target.name, "truncate_collection", keys)
        pending = self._stage(seq, lambda: target.shadow.stage_delete(target.spec, keys))
        self._finish(
            seq,
            pending,
            lambda: super(ShadowClient, self).truncate_collection(target.name, timeout=timeout, **kwargs),
        )

    def create_partition(
        self, collection_name: str, partition_name: str, timeout: float | None = None, **kwargs: Any
    ) -> None:
        target = self._resolve(collection_name, kwargs)
        seq = target.journal.begin(target.name, "create_partition", [], partition=partition_name)
        self._settle_ddl(
            seq,
            lambda: super(ShadowClient, self).create_partition(target.name, partition_name, timeout=timeout, **kwargs),
        )

    def drop_partition(
        self, collection_name: str, partition_name: str, timeout: float | None = None, **kwargs: Any
    ) -> None:
        target = self._resolve(collection_name, kwargs)
        keys = target.shadow.keys(target.spec, partition_name)
        seq = target.journal.begin(target.name, "drop_partition", keys, partition=partition_name)
        pending = self._stage(seq, lambda: target.shadow.stage_delete(target.spec, keys, partition=partition_name))
        self._finish(
            seq,
            pending,
            lambda: super(ShadowClient, self).drop_partition(target.name, partition_name, timeout=timeout, **kwargs),
        )

    # -- aliases and databases -----------------------------------------------------------------
    # An alias holds no rows: writes through it are resolved to its collection (_resolve), so these only
    # journal what happened, under the collection's shadow name, with the alias as the target.

    def create_alias(self, collection_name: str, alias: str, timeout: float | None = None, **kwargs: Any) -> None:
        target = self._target(collection_name, kwargs)
        seq = target.journal.begin(target.name, "create_alias", [], target=alias)
        self._settle_ddl(
            seq, lambda: super(ShadowClient, self).create_alias(collection_name, alias, timeout=timeout, **kwargs)
        )

    def alter_alias(self, collection_name: str, alias: str, timeout: float | None = None, **kwargs: Any) -> None:
        target = self._target(collection_name, kwargs)
        seq = target.journal.begin(target.name, "alter_alias", [], target=alias)
        self._settle_ddl(
            seq, lambda: super(ShadowClient, self).alter_alias(collection_name, alias, timeout=timeout, **kwargs)
        )

    def drop_alias(self, alias: str, timeout: float | None = None, **kwargs: Any) -> None:
        collection = self._alias_target(alias, kwargs) or alias
        _, journal = self.stores(kwargs.get("db_name"))
        seq = journal.begin(collection, "drop_alias", [], target=alias)
        self._settle_ddl(seq, lambda: super(ShadowClient, self).drop_alias(alias, timeout=timeout, **kwargs))

    def drop_database(self, db_name: str, **kwargs: Any) -> None:
        """Milvus drops only an empty database; any shadow left in it (a collection dropped behind the
        ShadowClient's back) goes with it."""
        shadow, journal = self.stores(db_name)
        seq = journal.begin("", "drop_database", [], target=db_name)
        self._settle_ddl(seq, lambda: super(ShadowClient, self).drop_database(db_name, **kwargs))
        for collection in shadow.collections():
            self._drop_shadow(collection, shadow, journal)

    def alter_collection_properties(
        self, collection_name: str, properties: dict[str, Any], timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Passes through, except properties that change rows (a TTL expires rows the shadow keeps)."""
        changing = sorted(ROW_CHANGING_PROPERTIES & set(properties))
        if changing:
            raise ShadowUnsupportedError(
                f"alter_collection_properties({', '.join(changing)}) is refused by the ShadowClient: "
                "Milvus would expire rows that the shadow keeps"
            )
        super().alter_collection_properties(collection_name, properties, timeout=timeout, **kwargs)

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
        target = self._resolve(collection_name, kwargs)
        spec = target.spec
        partition = self._partition_of(spec, partition_name)
        table = rows_to_table(rows, spec)
        if op == "upsert" and kwargs.get("partial_update"):
            table = self._merge_partial(target, table, rows)

        def call_milvus() -> Any:
            return parent(target.name, data, timeout=timeout, partition_name=partition_name, **kwargs)

        if spec.auto_id and op == "insert":
            return self._write_auto_id(target, table, partition, call_milvus)
        keys = table.column(spec.primary.name).to_pylist()
        digests = row_digests(table, spec).to_pylist()
        seq = target.journal.begin(target.name, op, keys, digests, partition=partition)
        pending = self._stage(seq, lambda: target.shadow.stage_upsert(spec, table, partition))
        return self._finish(seq, pending, call_milvus)

    def _merge_partial(self, target: _Target, table: pa.Table, rows: list[Mapping[str, Any]]) -> pa.Table:
        """A partial_update upsert changes only the fields it names (and merges dynamic keys); the
        shadow and the journal need the whole row as it will be, so the named fields are laid over
        the row the shadow holds. Keys not yet present take the row as given, like Milvus does.

        Two concurrent partial updates of one key may each merge with the row before the other.
        """
        spec = target.spec
        key = spec.primary.name
        named = {name for row in rows for name in row}
        current = target.shadow.rows_for_keys(spec, table.column(key).to_pylist())
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
        self, target: _Target, table: pa.Table, partition: str | None, call_milvus: Callable[[], Any]
    ) -> Any:
        """Milvus assigns the keys, so the shadow write is staged once the ids are known. The intent records
        the rows' digests without their keys, so that rows of a write whose outcome stays unknown can be told
        apart from rows nobody wrote."""
        spec = target.spec
        seq = target.journal.begin_unkeyed(target.name, unkeyed_digests(table, spec).to_pylist(), partition=partition)
        result = self._call_milvus(seq, None, call_milvus)
        ids = list(result["ids"])
        keyed = table.set_column(
            table.schema.get_field_index(spec.primary.name),
            table.schema.field(spec.primary.name),
            pa.array(ids, table.schema.field(spec.primary.name).type),
        )
        self.journal.attach_keys(seq, ids, row_digests(keyed, spec).to_pylist())
        try:
            pending = stage_with_retries(lambda: target.shadow.stage_upsert(spec, keyed, partition))
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
        target = self._resolve(collection_name, kwargs)
        collection_name, spec = target.name, target.spec
        keys = [] if ids is None else [ids] if isinstance(ids, (int, str)) else list(ids)
        if (filter and keys) or not (filter or keys):
            # Both, or neither (no ids, empty filter): Milvus refuses; let it say so, mirroring nothing.
            # Resolving an empty filter here would match, and so delete, every row.
            return super().delete(
                collection_name, ids=ids, filter=filter, timeout=timeout, partition_name=partition_name, **kwargs
            )
        if keys:
            if partition_name:
                keys = self._matching_keys(target, key_in_filter(spec.primary.name, keys), partition_name, timeout)
        else:
            keys = self._matching_keys(target, filter or "", partition_name, timeout)
        if not keys:
            return OmitZeroDict({"delete_count": 0})  # what pymilvus returns when nothing matched
        seq = target.journal.begin(collection_name, "delete", keys, partition=partition_name or None)
        pending = self._stage(seq, lambda: target.shadow.stage_delete(spec, keys, partition=partition_name or None))

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

    def _finish(
        self, seq: int, pending: PendingWrite, call: Callable[[], Any], settle: Callable[[], None] | None = None
    ) -> Any:
        """Steps 3 to 5; `settle` replaces the journal's plain commit where the operation moves key states."""
        result = self._call_milvus(seq, pending, call)
        try:
            pending.commit()
        except Exception as exc:
            self.journal.mark_pg_missing(seq, _describe(exc))
            raise SyncError(
                f"Milvus applied operation {seq} but PostgreSQL could not commit it: {_describe(exc)}"
            ) from exc
        if settle is None:
            self.journal.commit(seq)
        else:
            settle()
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
        self, target: _Target, expr: str, partition_name: str | None, timeout: float | None
    ) -> list[Any]:
        """The keys `expr` matches. One query when they fit in Milvus' result window, as a delete's usually
        do; on Milvus Lite that is ~3 ms where a query_iterator takes ~1 s on 25k unflushed rows (each of its
        pages rescans them). The iterator only when the window is full and more keys may match."""
        collection_name, db, spec = target.name, target.db, target.spec
        partitions = [partition_name] if partition_name else None
        found = self.query(
            collection_name,
            filter=expr,
            output_fields=[spec.primary.name],
            partition_names=partitions,
            limit=_KEY_QUERY_BATCH,
            timeout=timeout,
            **db,
        )
        if len(found) < _KEY_QUERY_BATCH:
            return [row[spec.primary.name] for row in found]
        iterator = self.query_iterator(
            collection_name,
            batch_size=_KEY_QUERY_BATCH,
            filter=expr,
            output_fields=[spec.primary.name],
            partition_names=partitions,
            timeout=timeout,
            **db,
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


def _refusal(method: str, why: str) -> Callable[..., Any]:
    def refuse(self: ShadowClient, *args: Any, **kwargs: Any) -> Any:
        raise ShadowUnsupportedError(f"{method} is refused by the ShadowClient, before Milvus is called: {why}")

    refuse.__name__ = refuse.__qualname__ = method
    refuse.__doc__ = f"Refused (ShadowUnsupportedError): {why}."
    return refuse


for _method, _why in REFUSED.items():
    setattr(ShadowClient, _method, _refusal(_method, _why))
