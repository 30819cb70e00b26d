"""The PostgreSQL shadow store: one table per collection, written in bulk, read as Arrow.

Writes go through psycopg (transactions, binary COPY) from a pool; reads go through the ADBC driver,
which hands back Arrow batches without a Python object per value (measured here: ~2x psycopg's
binary COPY for 128-dim rows). Every identifier is quoted with psycopg.sql and every value is a
parameter or a COPY field: nothing from a row or a name is ever formatted into SQL text.

A write is staged, not committed: the ShadowClient holds the open transaction while it calls
Milvus, then commits or rolls back according to what Milvus said.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg_pool import ConnectionPool

from milvusdiff.config import redact
from milvusdiff.errors import ConfigError, SchemaError, SyncError, first_line
from milvusdiff.snapshot_format import META_COLUMN, PARTITION_COLUMN
from milvusdiff.types.convert import snapshot_schema
from milvusdiff.types.spec import DEFAULT_PARTITION, META_FIELD, CollectionSpec, FieldSpec, in_database, shadow_name
from milvusdiff.types.typemap import coerce_pg_column, rule

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "milvusdiff"
SCHEMA_ENV = "MILVUSDIFF_PG_SCHEMA"
# The registry shares the schema with the shadow tables, so its name must be one no collection can take: a
# Milvus server allows only [A-Za-z_][A-Za-z0-9_]* ("$" never), and check_collection_name refuses it anyway
# (Milvus Lite accepts more). Shadows made before it was renamed are migrated at open (_migrate_registry).
REGISTRY_TABLE = "$collections"
_OLD_REGISTRY_TABLE = "_collections"
_PG_IDENTIFIER_BYTES = 63
_CONNECT_TIMEOUT_S = 10
_TOO_MANY_CONNECTIONS = "53300"  # SQLSTATE: the role's CONNECTION LIMIT, or the server's max_connections, is reached
_BUDGET_ATTEMPTS = 3  # a backend that just closed may still count against the limit for a few milliseconds
CONNECTIONS_NEEDED = 2  # export and validate: one connection streams the rows, one counts them in their snapshot
_STAGE_ATTEMPTS = 6  # a staged write that deadlocks or fails to serialize is tried again this many times in all
_RETRY_BASE_S = 0.01  # backoff before attempt n: uniform(0, base * 2**n) seconds (full jitter)
_BOOTSTRAP_LOCK = 0x6D696C7675736466  # advisory lock key serialising schema/registry creation ("milvusdf")
_COPY_TYPE_NAMES = {
    "boolean": "bool",
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "real": "float4",
    "double precision": "float8",
    "text": "text",
    "jsonb": "jsonb",
    "timestamptz": "timestamptz",
    "bytea": "bytea",
}


def _copy_type(sql_type: str) -> str:
    if sql_type.endswith("[]"):
        return _COPY_TYPE_NAMES[sql_type[:-2]] + "[]"
    return _COPY_TYPE_NAMES[sql_type]


def check_identifier(name: str, what: str) -> None:
    """PostgreSQL silently truncates identifiers past 63 bytes; refuse them rather than mirror a wrong name."""
    if not name or "\0" in name:
        raise SchemaError(f"{what} {name!r} cannot be used as a PostgreSQL identifier")
    if len(name.encode("utf-8")) > _PG_IDENTIFIER_BYTES:
        raise SchemaError(f"{what} {name!r} is longer than PostgreSQL's {_PG_IDENTIFIER_BYTES}-byte identifier limit")


def check_collection_name(name: str) -> None:
    """A collection name the shadow can mirror: a PostgreSQL identifier that is not an internal table's."""
    check_identifier(name, "collection name")
    if name == REGISTRY_TABLE:
        raise SchemaError(f"collection name {name!r} is reserved for milvusdiff's registry of shadow tables")


def _outside_default() -> sql.Composed:
    """Rows outside `_default`. The predicate of a partial index and of the query asking whether any such
    row exists: the two must stay identical (a literal, not a parameter), or the planner cannot use the index."""
    return sql.SQL("{} <> {}").format(sql.Identifier(PARTITION_COLUMN), sql.Literal(DEFAULT_PARTITION))


def shadow_columns(spec: CollectionSpec) -> list[tuple[str, str]]:
    """(column, SQL type) of the shadow table, in snapshot column order."""
    columns = [(f.name, rule(f).pg(f)) for f in spec.fields]
    if spec.enable_dynamic_field:
        columns.append((META_COLUMN, "jsonb"))
    columns.append((PARTITION_COLUMN, "text"))
    return columns


def stage_with_retries(stage: Callable[[], PendingWrite]) -> PendingWrite:
    """Stage a write, trying again when PostgreSQL aborts it as a deadlock victim or a serialization failure.

    Both say the transaction lost a race with another writer and nothing of it remains (a failed stage rolls
    back), so trying again is safe: nothing has been sent to Milvus yet. Writers lock rows in key order, which
    avoids most deadlocks; the bounded, jittered retries absorb the rest (deletes of absent keys, other
    clients). The last failure propagates.
    """
    for attempt in range(1, _STAGE_ATTEMPTS + 1):
        try:
            return stage()
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
            if attempt == _STAGE_ATTEMPTS:
                raise
            log.info("staged write lost a race (%s), attempt %d of %d", type(exc).__name__, attempt, _STAGE_ATTEMPTS)
            time.sleep(random.uniform(0, _RETRY_BASE_S * 2**attempt))
    raise AssertionError("unreachable")


class PendingWrite:
    """An open transaction holding one staged write; exactly one of commit() or rollback() ends it."""

    def __init__(self, pool: ConnectionPool, conn: psycopg.Connection[Any]) -> None:
        self._pool = pool
        self._conn: psycopg.Connection[Any] | None = conn

    def commit(self) -> None:
        conn = self._take()
        try:
            conn.commit()
        finally:
            self._pool.putconn(conn)

    def rollback(self) -> None:
        conn = self._take()
        try:
            conn.rollback()
        except psycopg.Error as exc:  # a dead connection has nothing left to roll back
            log.warning("rollback failed: %s", exc)
        finally:
            self._pool.putconn(conn)

    def _take(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError("this write was already committed or rolled back")
        conn, self._conn = self._conn, None
        return conn


class ShadowStore:
    """The shadow tables of one PostgreSQL database, behind a connection pool, for the collections of one
    Milvus database (`database`, None for the one the Milvus URI names; `in_database` gives the same store
    for another). Collections are named as in Milvus; tables and registry entries by `shadow_name`."""

    def __init__(
        self, conninfo: str, *, schema: str | None = None, max_connections: int = 8, database: str | None = None
    ) -> None:
        self.conninfo = conninfo
        self.database = database
        # One database can hold several independent shadow sets (environments, test runs): one schema each.
        self.schema = schema or os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA
        check_identifier(self.schema, "PostgreSQL schema")
        self._registry = sql.Identifier(self.schema, REGISTRY_TABLE)
        _check_reachable(conninfo)
        try:
            self._pool = ConnectionPool(
                conninfo, min_size=1, max_size=max_connections, open=True, timeout=30, name="milvusdiff"
            )
            self._pool.wait(timeout=15)
            with self._pool.connection() as conn:
                # CREATE ... IF NOT EXISTS is not safe against a concurrent twin (unique violation in the
                # catalog): clients starting together take turns, the lock ends with this transaction.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_BOOTSTRAP_LOCK])
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                self._migrate_registry(conn)
                conn.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, spec jsonb NOT NULL)").format(
                        self._registry
                    )
                )
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._pool.close()
            raise ConfigError(f"cannot reach PostgreSQL at {redact(conninfo)}: {first_line(exc)}") from exc

    def _migrate_registry(self, conn: psycopg.Connection[Any]) -> None:
        """Rename a registry made under its old name, `_collections`, which a collection could also take.
        Recognised by its exact two columns: a shadow table always has a `$partition` column as well."""
        found = conn.execute(
            "SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " AND NOT EXISTS (SELECT 1 FROM pg_class c2 WHERE c2.relnamespace = n.oid AND c2.relname = %s)",
            (self.schema, _OLD_REGISTRY_TABLE, REGISTRY_TABLE),
        ).fetchone()
        if found and found[0] == ["name", "spec"]:
            conn.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    sql.Identifier(self.schema, _OLD_REGISTRY_TABLE), sql.Identifier(REGISTRY_TABLE)
                )
            )
            log.info(
                "shadow registry of schema %r renamed from %r to %r", self.schema, _OLD_REGISTRY_TABLE, REGISTRY_TABLE
            )

    def close(self) -> None:
        self._pool.close()

    def in_database(self, database: str | None) -> ShadowStore:
        """This store, for the collections of another Milvus database; it shares the pool, so close this one."""
        view = copy.copy(self)
        view.database = database
        return view

    def _name(self, collection: str) -> str:
        return shadow_name(self.database, collection)

    def table(self, collection: str) -> sql.Identifier:
        return sql.Identifier(self.schema, self._name(collection))

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn:
            yield conn

    # -- DDL -----------------------------------------------------------------------------------

    def create_table(self, spec: CollectionSpec) -> None:
        check_collection_name(self._name(spec.name))
        for field in spec.fields:
            if field.name in (META_COLUMN, PARTITION_COLUMN):  # Milvus accepts a field named $partition
                raise SchemaError(
                    f"field {field.name!r} in collection {spec.name!r}: the shadow table reserves that name"
                )
        for name, _ in shadow_columns(spec):
            check_identifier(name, f"field name in collection {spec.name!r}")
        columns = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in shadow_columns(spec)]
        ddl = sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
            self.table(spec.name), sql.SQL(", ").join(columns), sql.Identifier(spec.primary.name)
        )
        with self._pool.connection() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self.table(spec.name)))
            conn.execute(ddl)
            if not spec.has_partition_key:
                # Holds only rows in user partitions: empty, so free to maintain, for the many collections
                # that have none, and it answers `user_partition_row_sql` without a scan of the table.
                conn.execute(
                    sql.SQL("CREATE INDEX ON {} ({}) WHERE {}").format(
                        self.table(spec.name), sql.Identifier(PARTITION_COLUMN), _outside_default()
                    )
                )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, spec) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec"
                ).format(self._registry),
                (self._name(spec.name), spec.to_json()),
            )

    def drop_table(self, collection: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self.table(collection)))
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s").format(self._registry),
                (self._name(collection),),
            )

    def collections(self) -> list[str]:
        """The collections of this store's database that have a shadow."""
        with self._pool.connection() as conn:
            rows = conn.execute(sql.SQL("SELECT name FROM {} ORDER BY name").format(self._registry)).fetchall()
        return in_database([r[0] for r in rows], self.database)

    def stage_rename(self, spec: CollectionSpec, new_name: str) -> PendingWrite:
        """Stage the shadow table's and the registry entry's rename, in an open transaction."""
        check_collection_name(self._name(new_name))
        conn, pending = self._begin()
        try:
            conn.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    self.table(spec.name), sql.Identifier(self._name(new_name))
                )
            )
            conn.execute(
                sql.SQL("UPDATE {} SET name = %s, spec = %s WHERE name = %s").format(self._registry),
                (self._name(new_name), spec.with_name(new_name).to_json(), self._name(spec.name)),
            )
        except BaseException:
            pending.rollback()
            raise
        return pending

    def spec(self, collection: str) -> CollectionSpec | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                sql.SQL("SELECT spec::text FROM {} WHERE name = %s").format(self._registry),
                (self._name(collection),),
            ).fetchone()
        return CollectionSpec.from_json(row[0]) if row else None

    # -- staged writes -------------------------------------------------------------------------

    def _begin(self) -> tuple[psycopg.Connection[Any], PendingWrite]:
        conn = self._pool.getconn()
        return conn, PendingWrite(self._pool, conn)

    def stage_upsert(self, spec: CollectionSpec, table: pa.Table, partition: str | None) -> PendingWrite:
        """Stage rows (snapshot form) as insert-or-replace by primary key, in an open transaction. Rows are
        written in key order, so two writers of overlapping keys lock them in the same order (no deadlock)."""
        table = _last_per_key(table, spec.primary.name).sort_by(spec.primary.name)
        columns = shadow_columns(spec)
        conn, pending = self._begin()
        try:
            stage = sql.Identifier(f"_stage_{id(pending)}")
            conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(stage, self.table(spec.name)))
            names = sql.SQL(", ").join(sql.Identifier(n) for n, _ in columns)
            with conn.cursor() as cur:
                stream = _copy_stream(spec, table, partition)
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, names)) as copy:
                    if stream is not None:
                        copy.write(stream)
                    else:
                        copy.set_types([_copy_type(t) for _, t in columns])
                        for row in _pg_rows(spec, table, partition):
                            copy.write_row(row)
                updates = sql.SQL(", ").join(
                    sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
                    for n, _ in columns
                    if n != spec.primary.name
                )
                key = sql.Identifier(spec.primary.name)
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {} ON CONFLICT ({}) DO UPDATE SET {}"
                    ).format(self.table(spec.name), names, names, stage, key, key, updates)
                )
        except BaseException:
            pending.rollback()
            raise
        return pending

    def stage_delete(self, spec: CollectionSpec, keys: Sequence[Any], partition: str | None = None) -> PendingWrite:
        """Stage a delete holding a lock on every key, present or not, in key order, until commit or rollback.

        A key with no row would otherwise be locked by nothing: a concurrent insert of it and this delete could
        then reach Milvus in one order and commit in PostgreSQL as if in the other. So each absent key gets a
        placeholder row inside this transaction (an insert that waits for any concurrent writer of the key),
        which the delete then removes with the rest; no other transaction ever sees it.
        """
        conn, pending = self._begin()
        key = sql.Identifier(spec.primary.name)
        table = self.table(spec.name)
        try:
            claimed = conn.execute(
                sql.SQL(
                    "INSERT INTO {} ({}) SELECT k FROM unnest(%s::{}[]) AS k ORDER BY k"
                    " ON CONFLICT ({}) DO UPDATE SET {} = EXCLUDED.{} RETURNING {}, xmax = 0"
                ).format(table, key, sql.SQL(rule(spec.primary).pg(spec.primary)), key, key, key, key),
                [list(keys)],
            ).fetchall()
            placeholders = [k for k, inserted in claimed if inserted]
            where = sql.SQL("{} = ANY(%s)").format(key)
            params: list[Any] = [list(keys)]
            if partition is not None:
                where = sql.SQL("{} AND ({} = %s OR {} = ANY(%s))").format(where, sql.Identifier(PARTITION_COLUMN), key)
                params += [partition, placeholders]
            conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(table, where), params)
        except BaseException:
            pending.rollback()
            raise
        return pending

    # -- reads ---------------------------------------------------------------------------------

    def count(self, collection: str, *, snapshot: str | None = None) -> int:
        """count(*), or, given a `pg_export_snapshot()` id, count(*) as that other transaction sees the table."""
        with self._pool.connection() as conn:
            if snapshot is not None:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table(collection))).fetchone()
            conn.rollback()  # the transaction only read
        return int(row[0]) if row else 0

    def user_partition_row_sql(self, collection: str) -> sql.Composed:
        """One row outside `_default`, if there is any (the rule for a `$partition` column in a snapshot).
        A look at the partial index, not a scan, on tables created with it: ORDER BY the indexed column
        makes the planner take the index even before the table has statistics (EXISTS did not)."""
        partition = sql.Identifier(PARTITION_COLUMN)
        return sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT 1").format(
            partition, self.table(collection), _outside_default(), partition
        )

    def keys(self, spec: CollectionSpec, partition: str | None = None) -> list[Any]:
        """Every key of the shadow table, or of one partition."""
        query = sql.SQL("SELECT {} FROM {}").format(sql.Identifier(spec.primary.name), self.table(spec.name))
        params: list[Any] = []
        if partition is not None:
            query = sql.SQL("{} WHERE {} = %s").format(query, sql.Identifier(PARTITION_COLUMN))
            params.append(partition)
        with self._pool.connection() as conn:
            rows = conn.execute(query, params).fetchall()
        return [r[0] for r in rows]

    def existing_keys(self, spec: CollectionSpec, keys: Sequence[Any]) -> set[Any]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
                    sql.Identifier(spec.primary.name), self.table(spec.name), sql.Identifier(spec.primary.name)
                ),
                (list(keys),),
            ).fetchall()
        return {r[0] for r in rows}

    def select_sql(
        self, spec: CollectionSpec, where: sql.Composable | None = None, *, partition: bool = True
    ) -> sql.Composed:
        """The SELECT that reads a shadow table in snapshot column order (for ADBC and for checks);
        without `$partition` when the reader has no use for it (a column less to send and parse)."""
        columns = [n for n, _ in shadow_columns(spec) if partition or n != PARTITION_COLUMN]
        names = sql.SQL(", ").join(sql.Identifier(n) for n in columns)
        query = sql.SQL("SELECT {} FROM {}").format(names, self.table(spec.name))
        if where is not None:
            query = sql.SQL("{} WHERE {}").format(query, where)
        return query

    def rows_for_keys(self, spec: CollectionSpec, keys: Sequence[Any]) -> pa.Table:
        """The shadow rows of these keys in snapshot form (plus `$partition`), read as Arrow with ADBC."""
        where = sql.SQL("{} = ANY($1)").format(sql.Identifier(spec.primary.name))
        try:
            with adbc_connect(self.conninfo) as conn, conn.cursor() as cur:
                cur.execute(self.render(self.select_sql(spec, where)), parameters=(list(keys),))
                raw = cur.fetch_arrow_table()
        except adbc.Error as exc:
            raise SyncError(f"cannot read the shadow rows of {spec.name!r}: {first_line(exc)}") from exc
        columns = []
        for name, _ in shadow_columns(spec):
            column = raw.column(name).combine_chunks()
            if name == PARTITION_COLUMN:
                columns.append(column.cast(pa.string()))
            else:
                field = spec.field(name) if name != META_COLUMN else META_FIELD
                columns.append(coerce_pg_column(column, field))
        return pa.Table.from_arrays(columns, schema=snapshot_schema(spec, with_partition=True))

    def render(self, query: sql.Composable) -> str:
        """SQL text for drivers (ADBC) that do not take psycopg.sql objects; identifiers stay quoted."""
        with self._pool.connection() as conn:
            return query.as_string(conn)


def _over_budget(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.Error):
        return exc.sqlstate == _TOO_MANY_CONNECTIONS
    return "too many connections" in str(exc) or "too many clients" in str(exc)  # ADBC reports libpq's text


def _budget_error(conninfo: str, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"PostgreSQL at {redact(conninfo)} refused another connection ({first_line(exc)}): milvusdiff needs "
        f"{CONNECTIONS_NEEDED} at once; raise the role's CONNECTION LIMIT (or the server's max_connections)"
    )


def adbc_connect(conninfo: str, **kwargs: Any) -> Any:
    """An ADBC connection for Arrow reads. A role at its connection limit gets one clear line naming the limit,
    after a short wait for connections of this process that are still being torn down on the server."""
    for attempt in range(1, _BUDGET_ATTEMPTS + 1):
        try:
            return adbc.connect(conninfo, **kwargs)
        except adbc.Error as exc:
            if not _over_budget(exc):
                raise
            if attempt == _BUDGET_ATTEMPTS:
                raise _budget_error(conninfo, exc) from exc
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _check_reachable(conninfo: str) -> None:
    """One direct connection before the pool: a server that is down fails here at once, with libpq's own
    reason, instead of after the pool's 15 s of retries (each logging a warning) with "pool initialization
    incomplete"."""
    timeout = {} if "connect_timeout" in conninfo else {"connect_timeout": _CONNECT_TIMEOUT_S}
    try:
        psycopg.connect(conninfo, **timeout).close()  # type: ignore[arg-type]
    except psycopg.Error as exc:
        if _over_budget(exc):
            raise _budget_error(conninfo, exc) from exc
        raise ConfigError(f"cannot reach PostgreSQL at {redact(conninfo)}: {first_line(exc)}") from exc


def _last_per_key(table: pa.Table, key: str) -> pa.Table:
    """A batch may repeat a key; the shadow keeps the last row given, as Milvus Lite does."""
    keys = table.column(key).to_numpy(zero_copy_only=False)
    if len(keys) < 2:
        return table
    reversed_keys = keys[::-1]
    _, first_in_reversed = np.unique(reversed_keys, return_index=True)
    if len(first_in_reversed) == len(keys):
        return table
    keep = np.sort(len(keys) - 1 - first_in_reversed)
    return table.take(pa.array(keep))


def _pg_rows(spec: CollectionSpec, table: pa.Table, partition: str | None) -> Iterator[tuple[Any, ...]]:
    """Rows for COPY: each column converted once by the type map, then zipped."""
    fields: list[FieldSpec] = list(spec.fields)
    columns: list[list[Any]] = []
    for f in fields:
        columns.append(rule(f).to_pg(table.column(f.name).combine_chunks(), f))
    if spec.enable_dynamic_field:
        meta = FieldSpec(name=META_COLUMN, type="JSON")
        columns.append(rule(meta).to_pg(table.column(META_COLUMN).combine_chunks(), meta))
    columns.append([partition] * table.num_rows)
    return zip(*columns, strict=False)


# -- the COPY BINARY stream, built column by column -------------------------------------------------------
# psycopg's write_row encodes row by row in C, but the Python values it needs (one bytes object per vector,
# one Jsonb per document, a tuple per row) cost more than the copy itself: ~55 ms for 10,000 rows of
# 128-dim vectors against ~5 ms for the whole stream assembled here with numpy. Array columns keep the
# per-row path (_copy_stream returns None).

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"
_NULL_FIELD = b"\xff\xff\xff\xff"
_POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_FIXED_WIRE = {
    "boolean": "u1",
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "real": ">f4",
    "double precision": ">f8",
    "timestamptz": ">i8",
}

# One column framed for COPY (each value as int32 big-endian length, then its bytes; -1 for null): an
# (n, 4 + width) matrix when every value has the same width and none is null, else one bytes object a row.
Framed = np.ndarray | list[bytes]


def _copy_stream(spec: CollectionSpec, table: pa.Table, partition: str | None) -> bytes | None:
    """The whole COPY ... (FORMAT BINARY) payload for the shadow columns, or None to use write_row."""
    n = table.num_rows
    framed: list[Framed] = []
    for name, sql_type in shadow_columns(spec):
        if name == PARTITION_COLUMN:
            column = pa.array([partition] * n, pa.string())
            field = None
        else:
            column = table.column(name).combine_chunks()
            field = META_FIELD if name == META_COLUMN else spec.field(name)
        encoded = _wire_column(column, sql_type, field)
        if encoded is None:
            return None
        framed.append(encoded)
    row_header = len(framed).to_bytes(2, "big")
    matrices = [c for c in framed if isinstance(c, np.ndarray)]
    if len(matrices) == len(framed):  # every row the same size: one 2-D array, no per-row objects
        out = np.empty((n, 2 + sum(m.shape[1] for m in matrices)), dtype=np.uint8)
        out[:, :2] = np.frombuffer(row_header, dtype=np.uint8)
        at = 2
        for matrix in matrices:
            out[:, at : at + matrix.shape[1]] = matrix
            at += matrix.shape[1]
        return _COPY_SIGNATURE + out.tobytes() + _COPY_TRAILER
    per_row = [_matrix_rows(c) if isinstance(c, np.ndarray) else c for c in framed]
    fields = itertools.chain.from_iterable(zip(itertools.repeat(row_header, n), *per_row, strict=True))
    return b"".join([_COPY_SIGNATURE, *fields, _COPY_TRAILER])


def _wire_column(column: pa.Array, sql_type: str, field: FieldSpec | None) -> Framed | None:
    """One column in PostgreSQL's binary wire form, framed; None for types left to psycopg (arrays)."""
    nulls = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if sql_type in _FIXED_WIRE:
        if sql_type == "timestamptz":
            values = column.cast(pa.int64()).fill_null(0).to_numpy() - _POSTGRES_EPOCH_US
        elif sql_type == "boolean":
            values = column.cast(pa.uint8()).fill_null(0).to_numpy()
        else:
            values = column.fill_null(pa.scalar(0, column.type)).to_numpy(zero_copy_only=False)
        body = np.ascontiguousarray(values.astype(_FIXED_WIRE[sql_type])).view(np.uint8).reshape(len(column), -1)
        return _frame_matrix(body, nulls)
    if sql_type == "bytea" and field is not None:  # vectors: their bytes come from the type map
        return _frame_values(rule(field).to_pg(column, field), b"")
    if sql_type in ("text", "jsonb"):  # jsonb's binary form is a version byte, then the text
        texts = column.cast(pa.string()).to_pylist()
        return _frame_values(
            [None if t is None else t.encode() for t in texts], b"\x01" if sql_type == "jsonb" else b""
        )
    return None


def _frame_matrix(body: np.ndarray, nulls: np.ndarray) -> Framed:
    n, width = body.shape
    framed = np.empty((n, 4 + width), dtype=np.uint8)
    framed[:, :4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
    framed[:, 4:] = body
    if not nulls.any():
        return framed
    rows = _matrix_rows(framed)
    return [_NULL_FIELD if null else row for row, null in zip(rows, nulls.tolist(), strict=True)]


def _frame_values(values: Sequence[bytes | None], prefix: bytes) -> Framed:
    widths = {None if v is None else len(v) for v in values}
    if len(widths) == 1 and None not in widths and values:
        body = np.frombuffer(b"".join(v for v in values if v is not None), dtype=np.uint8).reshape(len(values), -1)
        if prefix:
            body = np.hstack([np.tile(np.frombuffer(prefix, dtype=np.uint8), (len(values), 1)), body])
        return _frame_matrix(body, np.zeros(len(values), dtype=bool))
    return [_NULL_FIELD if v is None else (len(prefix) + len(v)).to_bytes(4, "big") + prefix + v for v in values]


def _matrix_rows(matrix: np.ndarray) -> list[bytes]:
    n, width = matrix.shape
    fixed = pa.Array.from_buffers(pa.binary(width), n, [None, pa.py_buffer(np.ascontiguousarray(matrix))])
    return list(fixed.to_pylist())
