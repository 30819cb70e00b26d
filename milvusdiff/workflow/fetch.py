"""Rows of a few named keys from Milvus and from the PostgreSQL shadow, in snapshot form.

Repair and the checks look at the handful of keys a comparison flagged; a keyed read is far
cheaper than another export. Both readers return the same columns (snapshot form plus
`$partition`), so their rows can be digested and written across.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from pymilvus import MilvusClient

from milvusdiff.services.milvus import key_in_filter
from milvusdiff.types.convert import rows_to_table, snapshot_schema
from milvusdiff.types.spec import DEFAULT_PARTITION, CollectionSpec

_KEYS_PER_QUERY = 1000


def milvus_partitions(client: MilvusClient, spec: CollectionSpec) -> list[str | None]:
    """Partitions to read one by one, so each row's partition is known; None under a partition key."""
    if spec.has_partition_key:
        return [None]
    return list(client.list_partitions(spec.name)) or [DEFAULT_PARTITION]


@contextmanager
def loaded(client: MilvusClient, collection: str) -> Iterator[None]:
    """Queries need the collection loaded, and a collection can be released: Milvus Lite releases every
    collection when a database is reopened, which every new process does. Load it for the read if needed,
    and release it again after, leaving the server as it was found."""
    if str(MilvusClient.get_load_state(client, collection).get("state", "")).endswith("Loaded"):
        yield
        return
    MilvusClient.load_collection(client, collection)
    try:
        yield
    finally:
        MilvusClient.release_collection(client, collection)


def milvus_rows(client: MilvusClient, spec: CollectionSpec, keys: Sequence[Any]) -> pa.Table:
    """The rows Milvus holds for these keys (every copy, if a server kept duplicates)."""
    with loaded(client, spec.name):
        return _milvus_rows(client, spec, keys)


def _milvus_rows(client: MilvusClient, spec: CollectionSpec, keys: Sequence[Any]) -> pa.Table:
    tables = []
    key = spec.primary.name
    for partition in milvus_partitions(client, spec):
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = list(keys[start : start + _KEYS_PER_QUERY])
            rows = MilvusClient.query(
                client,
                spec.name,
                filter=key_in_filter(key, chunk),
                output_fields=["*"],
                partition_names=[partition] if partition else None,
            )
            if rows:
                tables.append(rows_to_table(list(rows), spec, partition=partition, with_partition=True))
    if not tables:
        return snapshot_schema(spec, with_partition=True).empty_table()
    return pa.concat_tables(tables)
