"""Three-way agreement: the rows in Milvus, the rows in the PostgreSQL shadow, the journal's key states.

Each store is read back into the snapshot form (one Arrow table, one column per field, `$meta`,
`$partition`) through the project's own conversions: Milvus rows through `rows_to_table`, PostgreSQL
columns through `coerce_pg_column`. Tables are compared as plain Python values in which every float is
replaced by its exact hex spelling, so -0.0, NaN, subnormals and one-ulp differences all count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
from pymilvus import MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.services.journal import STATE_SCHEMA_FIELDS, Journal
from milvusdiff.services.pg import ShadowStore
from milvusdiff.snapshot_format import META_COLUMN, PARTITION_COLUMN
from milvusdiff.types.convert import rows_to_table, snapshot_schema
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec, FieldSpec
from milvusdiff.types.typemap import coerce_pg_column

QUERY_BATCH = 1000


def plain(value: Any) -> Any:
    """A value with every float replaced by its exact hex form (keeps -0.0 and NaN comparable)."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else value.hex()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def table_values(table: pa.Table, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a table as plain values (see plain()), restricted to `columns` when given."""
    if columns is not None:
        table = table.select(list(columns))
    return [plain(row) for row in table.to_pylist()]


def sort_by_key(table: pa.Table, spec: CollectionSpec) -> pa.Table:
    return table.sort_by(spec.primary.name) if table.num_rows else table


def read_pg_arrow(conninfo: str, query: str) -> pa.Table:
    """One query through the ADBC PostgreSQL driver, as the export does."""
    with adbc.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetch_arrow_table()


def pg_columns_to_snapshot(raw: pa.Table, spec: CollectionSpec, *, with_partition: bool) -> pa.Table:
    """Columns as PostgreSQL returned them -> the snapshot form, through the type map."""
    columns = [coerce_pg_column(raw.column(f.name).combine_chunks(), f) for f in spec.fields]
    if spec.enable_dynamic_field:
        meta = FieldSpec(name=META_COLUMN, type="JSON", nullable=True)
        columns.append(coerce_pg_column(raw.column(META_COLUMN).combine_chunks(), meta))
    if with_partition:
        columns.append(raw.column(PARTITION_COLUMN).combine_chunks().cast(pa.string()))
    return pa.Table.from_arrays(columns, schema=snapshot_schema(spec, with_partition=with_partition))


def pg_table(store: ShadowStore, spec: CollectionSpec) -> pa.Table:
    """The whole shadow table of a collection in snapshot form, `$partition` included, sorted by key."""
    raw = read_pg_arrow(store.conninfo, store.render(store.select_sql(spec)))
    return sort_by_key(pg_columns_to_snapshot(raw, spec, with_partition=True), spec)


def milvus_rows(client: MilvusClient, collection: str, partition: str | None = None) -> list[dict[str, Any]]:
    """Every row of a collection (or of one partition) through query_iterator, all fields and dynamic keys."""
    iterator = client.query_iterator(
        collection,
        batch_size=QUERY_BATCH,
        filter="",
        output_fields=["*"],
        partition_names=[partition] if partition else None,
    )
    rows: list[dict[str, Any]] = []
    try:
        while batch := iterator.next():
            rows.extend(dict(r) for r in batch)
    finally:
        iterator.close()
    return rows


def milvus_table(client: MilvusClient, spec: CollectionSpec) -> pa.Table:
    """Every row in Milvus in snapshot form with `$partition` (read partition by partition), sorted by key.

    Under a partition key the shadow does not know the partition, so `$partition` is null there too.
    """
    if spec.has_partition_key:
        tables = [rows_to_table(milvus_rows(client, spec.name), spec, partition=None, with_partition=True)]
    else:
        tables = [
            rows_to_table(milvus_rows(client, spec.name, p), spec, partition=p, with_partition=True)
            for p in client.list_partitions(spec.name)
        ]
    return sort_by_key(pa.concat_tables(tables), spec)


def journal_table(journal: Journal, spec: CollectionSpec) -> pa.Table:
    """Every key state of the collection as one Arrow table (key, state, last_seq, last_op, digest, flags)."""
    key_type = pa.int64() if spec.primary.type == "INT64" else pa.string()
    batches = list(journal.iter_state_batches(spec.name, spec.primary.name, key_type))
    schema = pa.schema([pa.field(spec.primary.name, key_type), *STATE_SCHEMA_FIELDS])
    return pa.Table.from_batches(batches, schema=schema)


@dataclass
class Stores:
    """One collection as each store holds it."""

    spec: CollectionSpec
    milvus: pa.Table
    pg: pa.Table
    journal: pa.Table

    def keys(self, table: pa.Table) -> list[Any]:
        return table.column(self.spec.primary.name).to_pylist()

    def journal_keys(self, state: str) -> list[Any]:
        states = self.journal.column("state").to_pylist()
        return sorted(k for k, s in zip(self.keys(self.journal), states, strict=True) if s == state)

    def journal_digests(self) -> dict[Any, bytes]:
        rows = self.journal.select([self.spec.primary.name, "state", "digest"]).to_pylist()
        return {r[self.spec.primary.name]: r["digest"] for r in rows if r["state"] == "EXISTS"}


def read_stores(client: ShadowClient, collection: str) -> Stores:
    spec = client.spec(collection)
    return Stores(
        spec=spec,
        milvus=milvus_table(client, spec),
        pg=pg_table(client.shadow, spec),
        journal=journal_table(client.journal, spec),
    )


def assert_agreement(client: ShadowClient, collection: str, *, in_doubt: Iterable[Any] = ()) -> Stores:
    """Milvus rows == PostgreSQL rows (every column, `$partition` too) == the journal's EXISTS keys, whose
    digests equal row_digests of the Milvus rows; the only IN_DOUBT keys are those named in `in_doubt`."""
    stores = read_stores(client, collection)
    spec = stores.spec
    milvus_keys = stores.keys(stores.milvus)
    assert len(set(milvus_keys)) == len(milvus_keys), "Milvus returned a key twice"
    assert milvus_keys == stores.keys(stores.pg), "Milvus and PostgreSQL hold different keys"
    assert table_values(stores.milvus) == table_values(stores.pg), "Milvus and PostgreSQL hold different values"
    assert stores.journal_keys("EXISTS") == milvus_keys, "journal EXISTS keys differ from the rows in Milvus"
    assert stores.journal_keys("IN_DOUBT") == sorted(in_doubt)
    expected = dict(zip(milvus_keys, row_digests(stores.milvus, spec).to_pylist(), strict=True))
    assert stores.journal_digests() == expected, "journal digests differ from the digests of the Milvus rows"
    return stores
