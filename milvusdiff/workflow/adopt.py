"""Find the rows of auto_id inserts whose outcome is unknown, so they count as in doubt, not as unknown.

An auto_id insert learns its keys only from Milvus' answer. When that answer never comes (a timeout, or the
writer killed in flight), the journal holds the number of rows and each row's digest without its key
(`Journal.begin_unkeyed`). Here Milvus is read for the keys the journal has never seen, those rows' digests
without key are matched against the write's, and the matching keys are handed to the journal as that write's
keys, IN_DOUBT (`Journal.adopt_unkeyed`). From then on they are ordinary in-doubt keys: validate reports them
`in_doubt`, and `repair --from journal` makes the rows Milvus holds the truth in the shadow and the journal.

The read costs a pass over Milvus' keys plus the rows of the unseen keys, and happens only while such a write
is outstanding (validate and repair call `adopt_unkeyed_rows` first; it returns at once otherwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pymilvus import MilvusClient

from milvusdiff.config import Settings
from milvusdiff.services.journal import Journal
from milvusdiff.types.digest import row_digests, unkeyed_digests
from milvusdiff.types.spec import CollectionSpec
from milvusdiff.workflow.fetch import loaded, milvus_rows

_KEY_BATCH = 16384  # Milvus' largest query result


def adopt_for_validate(collection: str, settings: Settings) -> int:
    """adopt_unkeyed_rows before validate exports the journal. The journal is only read unless an auto_id insert
    of the collection has rows with no known key, settled in doubt or still pending (a killed writer's intent is
    settled by the recovery of the writable open that follows); only then is Milvus read."""
    from milvusdiff.export.sources.milvus import connect

    if not (settings.journal_path / "data.mdb").exists():
        return 0
    with Journal(settings.journal_path, readonly=True) as reader:  # the usual case changes nothing on disk
        spec = reader.collection_spec(collection)
        if spec is None or not reader.unkeyed_outstanding(collection):
            return 0
    with Journal(settings.journal_path) as journal:
        client = connect(settings)
        try:
            return adopt_unkeyed_rows(client, journal, spec)
        finally:
            client.close()


def adopt_unkeyed_rows(client: MilvusClient, journal: Journal, spec: CollectionSpec) -> int:
    """Give every outstanding in-doubt auto_id insert of `spec` the keys of its rows in Milvus; returns how many
    keys were adopted."""
    outstanding = journal.unkeyed_in_doubt(spec.name)
    if not outstanding:
        return 0
    key = spec.primary.name
    key_type = pa.int64() if spec.primary.type == "INT64" else pa.string()
    with loaded(client, spec.name):
        held = _milvus_keys(client, spec, key_type)
        known = [b.column(key) for b in journal.iter_state_batches(spec.name, key, key_type)]
        if known:
            held = held.filter(pc.invert(pc.is_in(held, value_set=pa.concat_arrays(known))))
        rows = milvus_rows(client, spec, held.to_pylist()) if len(held) else None
    if rows is None or rows.num_rows == 0:
        for seq in outstanding:
            journal.adopt_unkeyed(seq, [], [])  # Milvus holds none of its rows: none were written
        return 0
    without_key = np.array(unkeyed_digests(rows, spec).to_pylist(), dtype=object)
    with_key = row_digests(rows, spec).to_pylist()
    keys = rows.column(key).to_pylist()
    taken = np.zeros(rows.num_rows, dtype=bool)
    adopted = 0
    for seq, digests in sorted(outstanding.items()):
        match = _take(without_key, taken, digests)
        journal.adopt_unkeyed(seq, [keys[i] for i in match], [with_key[i] for i in match])
        adopted += len(match)
    return adopted


def _take(without_key: np.ndarray, taken: np.ndarray, digests: list[bytes]) -> list[int]:
    """Positions of rows matching `digests`, each row at most once and each digest as often as the write had it
    (a batch may hold identical rows); marks them taken."""
    wanted: dict[bytes, int] = {}
    for digest in digests:
        wanted[digest] = wanted.get(digest, 0) + 1
    match: list[int] = []
    for i in np.flatnonzero(~taken & np.isin(without_key, list(wanted))).tolist():
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
