"""Change ONE store behind the ShadowClient's back, for drills and demos of what validation finds.

Milvus is changed through a plain pymilvus MilvusClient, PostgreSQL through psycopg on the shadow
table (identifiers quoted with psycopg.sql, values always parameters), and the journal is never
told: that is the point. Kinds of damage, each the kind a real incident produces:

- delete: rows vanish from one store;
- update: one scalar field gets another value;
- vector: one element of one vector field is perturbed (or one bit flipped);
- insert: a row appears that was never written through the ShadowClient.

Keys are drawn (seeded) from the rows the target store holds; every change is returned, so the
caller can print exactly which keys were changed and compare that with what validation reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import sql
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from milvusdiff.config import Settings
from milvusdiff.errors import ConfigError, MilvusDiffError, SchemaError, first_line
from milvusdiff.services.milvus import key_in_filter, milvus_client_kwargs, resolve_collection, shadow_database
from milvusdiff.services.pg import ShadowStore
from milvusdiff.services.pg_target import resolve_pg_conn
from milvusdiff.snapshot_format import PARTITION_COLUMN
from milvusdiff.types.convert import rows_to_table, table_to_rows
from milvusdiff.types.spec import DEFAULT_PARTITION, CollectionSpec, FieldSpec
from milvusdiff.types.typemap import VECTOR_TYPES
from milvusdiff.workflow import fetch
from milvusdiff.workload import tamper
from milvusdiff.workload.generate import KEY_DIGITS, RowGenerator
from milvusdiff.workload.schemas import Hints, Preset

STORES = ("milvus", "pg")
KINDS = ("delete", "update", "vector", "insert")
_PROBE_CHUNK = 256
_VARCHAR_PREFIX = "corrupt-"
_VARCHAR_BASE = 900_000_000_000


@dataclass(frozen=True)
class Change:
    """One changed row: which key, in which store, and what was done to it."""

    store: str
    kind: str
    key_name: str
    key: Any
    detail: str

    def __str__(self) -> str:
        return f"{self.store} {self.kind} {self.key_name}={self.key!r}: {self.detail}"


def corrupt(
    settings: Settings,
    collection: str,
    store: str = "milvus",
    kind: str = "delete",
    count: int = 1,
    seed: int | None = None,
) -> list[Change]:
    """Apply `count` changes of `kind` to `store` only; returns them (fewer if the store has fewer rows)."""
    if store not in STORES:
        raise ConfigError(f"store must be one of {', '.join(STORES)}, got {store!r}")
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    # Store and kind are part of the stream, so one seed corrupts different keys in each drill step.
    rng = np.random.default_rng(None if seed is None else [seed, STORES.index(store), KINDS.index(kind)])
    with _open(settings, collection) as stores:
        action: Callable[[_Stores, str, int, np.random.Generator], list[Change]] = {
            "delete": _delete,
            "update": _update,
            "vector": _vector,
            "insert": _insert,
        }[kind]
        return action(stores, store, count, rng)


@dataclass
class _Stores:
    """Both stores of one collection, reached directly (not through a ShadowClient)."""

    shadow: ShadowStore
    milvus: MilvusClient
    spec: CollectionSpec

    @property
    def key(self) -> FieldSpec:
        return self.spec.primary

    def pg_keys(self) -> list[Any]:
        query = sql.SQL("SELECT {k} FROM {t} ORDER BY {k}").format(
            k=sql.Identifier(self.key.name), t=self.shadow.table(self.spec.name)
        )
        with self.shadow.connection() as conn:
            return [row[0] for row in conn.execute(query).fetchall()]

    def pg_values(self, column: str, keys: Sequence[Any]) -> dict[Any, Any]:
        query = sql.SQL("SELECT {k}, {c} FROM {t} WHERE {k} = ANY(%s)").format(
            k=sql.Identifier(self.key.name), c=sql.Identifier(column), t=self.shadow.table(self.spec.name)
        )
        with self.shadow.connection() as conn:
            return {row[0]: row[1] for row in conn.execute(query, (list(keys),)).fetchall()}

    def pg_set(self, column: str, values: dict[Any, Any]) -> None:
        statement = sql.SQL("UPDATE {t} SET {c} = %s WHERE {k} = %s").format(
            t=self.shadow.table(self.spec.name), c=sql.Identifier(column), k=sql.Identifier(self.key.name)
        )
        with self.shadow.connection() as conn, conn.cursor() as cur:
            cur.executemany(statement, [(value, key) for key, value in values.items()])

    def pg_delete(self, keys: Sequence[Any]) -> None:
        statement = sql.SQL("DELETE FROM {t} WHERE {k} = ANY(%s)").format(
            t=self.shadow.table(self.spec.name), k=sql.Identifier(self.key.name)
        )
        with self.shadow.connection() as conn:
            conn.execute(statement, (list(keys),))

    def milvus_keys(self, keys: Sequence[Any]) -> set[Any]:
        """Which of these keys Milvus holds."""
        filter_ = key_in_filter(self.key.name, keys)
        return {
            row[self.key.name]
            for row in self.milvus.query(self.spec.name, filter=filter_, output_fields=[self.key.name])
        }

    def milvus_rows(self, keys: Sequence[Any]) -> tuple[dict[Any, dict[str, Any]], dict[Any, str]]:
        """Whole rows as pymilvus takes them back, and the partition each was found in."""
        table = fetch.milvus_rows(self.milvus, self.spec, keys)
        rows = table_to_rows(table, self.spec)
        partitions = table.column(PARTITION_COLUMN).to_pylist()
        by_key = {row[self.key.name]: row for row in rows}
        return by_key, {row[self.key.name]: p or "" for row, p in zip(rows, partitions, strict=True)}

    def milvus_put(self, rows: dict[Any, dict[str, Any]], partitions: dict[Any, str]) -> None:
        """Write rows back with upsert, each into the partition it was read from."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for key, row in rows.items():
            groups.setdefault(partitions[key], []).append(row)
        for partition, group in groups.items():
            self.milvus.upsert(self.spec.name, group, partition_name=partition)


@contextmanager
def _open(settings: Settings, collection: str) -> Iterator[_Stores]:
    database, collection = resolve_collection(settings, collection)
    shadow = ShadowStore(resolve_pg_conn(settings), max_connections=2, database=shadow_database(settings, database))
    try:
        spec = shadow.spec(collection)
        if spec is None:
            raise ConfigError(f"collection {collection!r} has no shadow table: it was not created through ShadowClient")
        milvus = MilvusClient(**milvus_client_kwargs(settings), db_name=database)
        try:
            if not milvus.has_collection(collection):
                raise ConfigError(f"collection {collection!r} does not exist in Milvus")
            if not str(milvus.get_load_state(collection).get("state", "")).endswith("Loaded"):
                milvus.load_collection(collection)  # Milvus Lite reopens collections released
            yield _Stores(shadow, milvus, spec)
        except MilvusException as exc:
            raise MilvusDiffError(f"Milvus refused: {first_line(exc)}") from exc
        finally:
            milvus.close()
    finally:
        shadow.close()


def _existing_keys(stores: _Stores, store: str, count: int, rng: np.random.Generator) -> list[Any]:
    """`count` keys (seeded choice among the shadow's keys) that the target store holds."""
    keys = stores.pg_keys()
    order = rng.permutation(len(keys))
    chosen: list[Any] = []
    for start in range(0, len(order), max(_PROBE_CHUNK, 2 * count)):
        candidates = [keys[i] for i in order[start : start + max(_PROBE_CHUNK, 2 * count)].tolist()]
        present = set(candidates) if store == "pg" else stores.milvus_keys(candidates)
        chosen.extend(k for k in candidates if k in present)
        if len(chosen) >= count:
            return chosen[:count]
    if not chosen:
        raise ConfigError(f"collection {stores.spec.name!r} has no rows in {store} that the shadow also holds")
    return chosen


def _delete(stores: _Stores, store: str, count: int, rng: np.random.Generator) -> list[Change]:
    keys = _existing_keys(stores, store, count, rng)
    if store == "pg":
        stores.pg_delete(keys)
    else:
        stores.milvus.delete(stores.spec.name, ids=keys)
    return [Change(store, "delete", stores.key.name, key, "deleted") for key in keys]


def _update(stores: _Stores, store: str, count: int, rng: np.random.Generator) -> list[Change]:
    candidates = [
        f for f in stores.spec.fields if f.type in tamper.SCALAR_TYPES and not (f.is_primary or f.is_partition_key)
    ]
    if not candidates:
        raise SchemaError(f"collection {stores.spec.name!r} has no scalar field that update could change")
    field = candidates[int(rng.integers(len(candidates)))]
    keys = _existing_keys(stores, store, count, rng)
    if store == "pg":
        old = stores.pg_values(field.name, keys)
        new = {key: tamper.bump(field, old[key]) for key in keys}
        stores.pg_set(field.name, new)
    else:
        rows, partitions = stores.milvus_rows(keys)
        old = {key: rows[key].get(field.name) for key in keys}
        new = {key: tamper.bump(field, old[key]) for key in keys}
        for key in keys:
            rows[key][field.name] = new[key]
        stores.milvus_put(rows, partitions)
    return [
        Change(store, "update", stores.key.name, key, f"{field.name}: {old[key]!r} -> {new[key]!r}") for key in keys
    ]


def _vector(stores: _Stores, store: str, count: int, rng: np.random.Generator) -> list[Change]:
    candidates = [f for f in stores.spec.fields if f.type in VECTOR_TYPES]
    field = candidates[int(rng.integers(len(candidates)))]
    keys = _existing_keys(stores, store, count, rng)
    rows, partitions = stores.milvus_rows(keys) if store == "milvus" else ({}, {})
    blobs = (
        {key: tamper.to_blob(field, rows[key][field.name]) for key in keys}
        if store == "milvus"
        else {key: bytes(value) for key, value in stores.pg_values(field.name, keys).items()}
    )
    changes, new_blobs = [], {}
    for key in keys:
        new_blobs[key], detail = tamper.perturb(field, blobs[key], rng)
        changes.append(Change(store, "vector", stores.key.name, key, f"{field.name}{detail}"))
    if store == "pg":
        stores.pg_set(field.name, new_blobs)
    else:
        for key in keys:
            rows[key][field.name] = tamper.from_blob(field, new_blobs[key])
        stores.milvus_put(rows, partitions)
    return changes


def _insert(stores: _Stores, store: str, count: int, rng: np.random.Generator) -> list[Change]:
    """Rows with keys neither store has, generated like a workload's, written to one store only."""
    spec, key = stores.spec, stores.key
    hints = {}
    if key.type == "VARCHAR" and len(_VARCHAR_PREFIX) + KEY_DIGITS <= (key.max_length or 0):
        hints[key.name] = Hints(prefix=_VARCHAR_PREFIX)
    generator = RowGenerator(Preset(spec=spec, hints=hints))
    pg_keys = stores.pg_keys()
    base = (max(pg_keys) + 1 if pg_keys else 1) if key.type == "INT64" else _VARCHAR_BASE
    ordinals = base + np.arange(count, dtype=np.int64)
    while True:
        keys = generator.keys(ordinals)
        taken = stores.milvus_keys(keys) | stores.shadow.existing_keys(spec, keys)
        if not taken:
            break
        ordinals = ordinals + count
    rows = generator.generate(rng, ordinals).rows
    if store == "pg":
        partition = None if spec.has_partition_key else DEFAULT_PARTITION
        stores.shadow.stage_upsert(spec, rows_to_table(rows, spec), partition).commit()
    else:
        stores.milvus.insert(spec.name, rows)
    return [Change(store, "insert", key.name, k, "inserted (never written through the ShadowClient)") for k in keys]
