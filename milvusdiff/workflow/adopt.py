"""Find the rows of auto_id inserts whose outcome is unknown, so they count as in doubt, not as unknown.

An auto_id insert learns its keys only from Milvus' answer. When that answer never comes (a timeout, or the
writer killed in flight), the journal holds the number of rows and each row's digest without its key
(`Journal.begin_unkeyed`). Here Milvus is read for the keys the journal has never seen, and those rows' digests
without key are matched against the write's: the matching keys are that write's keys, IN_DOUBT.

Repair records them for good (`Journal.adopt_unkeyed`): from then on they are ordinary in-doubt keys, which
`repair --from journal` settles from Milvus. Validate only reads: it computes the same match in memory and lays
it over the key states it exports (`adopted_for_validate`), so it reports those rows `in_doubt` and leaves the
journal's files byte-identical.

The read costs a pass over Milvus' keys plus the rows of the unseen keys, and happens only while such a write
is outstanding (nothing is read otherwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pymilvus import MilvusClient

from milvusdiff.config import Settings
from milvusdiff.services.journal import Journal
from milvusdiff.services.milvus import resolve_collection, shadow_database
from milvusdiff.types.digest import row_digests, unkeyed_digests
from milvusdiff.types.spec import CollectionSpec
from milvusdiff.workflow.fetch import loaded, milvus_rows

_KEY_BATCH = 16384  # Milvus' largest query result
Matched = dict[int, tuple[list[Any], list[bytes]]]  # seq -> keys and digests (with key) of its rows in Milvus


def adopted_for_validate(collection: str, settings: Settings) -> Matched:
    """The rows of the outstanding auto_id inserts of `collection` (settled in doubt, or still pending: a read
    takes a pending write as in doubt), matched in Milvus, for validate to read as IN_DOUBT. The journal is
    opened read-only, and Milvus is read only when such a write exists."""
    from milvusdiff.export.sources.milvus import connect

    if not (settings.journal_path / "data.mdb").exists():
        return {}
    database, name = resolve_collection(settings, collection)
    with Journal(settings.journal_path, readonly=True, database=shadow_database(settings, database)) as journal:
        spec = journal.collection_spec(name)
        outstanding = journal.unkeyed_outstanding(name)
        if spec is None or not outstanding:
            return {}
        client = connect(settings, database)
        try:
            return match_unkeyed_rows(client, journal, spec, outstanding)
        finally:
            client.close()


def adopt_unkeyed_rows(client: MilvusClient, journal: Journal, spec: CollectionSpec) -> int:
    """Record, for every auto_id insert of `spec` settled in doubt with no key known, the keys of its rows in
    Milvus (none: none were written); returns how many keys were adopted."""
    matched = match_unkeyed_rows(client, journal, spec, journal.unkeyed_in_doubt(spec.name))
    for seq, (keys, digests) in sorted(matched.items()):
        journal.adopt_unkeyed(seq, keys, digests)
    return sum(len(keys) for keys, _ in matched.values())


def match_unkeyed_rows(
    client: MilvusClient, journal: Journal, spec: CollectionSpec, outstanding: dict[int, list[bytes]]
) -> Matched:
    """For each write of `outstanding` (seq -> digests without key of its rows), the rows Milvus holds under
    keys the journal has never seen whose digests match; every write gets an entry, empty when none match."""
    if not outstanding:
        return {}
    key = spec.primary.name
    key_type = pa.int64() if spec.primary.type == "INT64" else pa.string()
    with loaded(client, spec.name):
        held = _milvus_keys(client, spec, key_type)
        known = [b.column(key) for b in journal.iter_state_batches(spec.name, key, key_type)]
        if known:
            held = held.filter(pc.invert(pc.is_in(held, value_set=pa.concat_arrays(known))))
        rows = milvus_rows(client, spec, held.to_pylist()) if len(held) else None
    if rows is None or rows.num_rows == 0:
        return {seq: ([], []) for seq in outstanding}  # Milvus holds none of their rows: none were written
    without_key = np.array(unkeyed_digests(rows, spec).to_pylist(), dtype=object)
    with_key = row_digests(rows, spec).to_pylist()
    keys = rows.column(key).to_pylist()
    taken = np.zeros(rows.num_rows, dtype=bool)
    matched: Matched = {}
    for seq, digests in sorted(outstanding.items()):
        match = _take(without_key, taken, digests)
        matched[seq] = ([keys[i] for i in match], [with_key[i] for i in match])
    return matched


def _take(without_key: np.ndarray, taken: np.ndarray, digests: list[bytes]) -> list[int]:
    """Positions of rows matching `digests`, each row at most once and each digest as often as the write had it
    (a batch may hold identical rows); marks them taken."""
    wanted: dict[bytes, int] = {}
    for digest in digests:
        wanted[digest] = wanted.get(digest, 0) + 1
    match: list[int] = []
    # An object array: numpy would make a list of bytes a fixed-width one, dropping a digest's trailing NULs.
    candidates = np.isin(without_key, np.array(list(wanted), dtype=object))
    for i in np.flatnonzero(~taken & candidates).tolist():
        digest = without_key[i]
        if wanted[digest]:
            wanted[digest] -= 1
            taken[i] = True
            match.append(i)
    return match


def _milvus_keys(client: MilvusClient, spec: CollectionSpec, key_type: pa.DataType) -> pa.Array:
    key = spec.primary.name
    iterator = MilvusClient.query_iterator(client, spec.name, batch_size=_KEY_BATCH, filter="", output_fields=[key])
    found: list[Any] = []
    try:
        while batch := iterator.next():
            found.extend(row[key] for row in batch)
    finally:
        iterator.close()
    return pa.array(found, key_type)
