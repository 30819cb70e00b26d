"""Bring Milvus and the shadow back into agreement for the keys a drill or a validate flagged.

The winning side is re-read and written over the other, key by key class (present rows are
upserted, absent ones deleted), and the journal records a `repair` / `repair_delete` operation
whose per-key states replace IN_DOUBT and pg_missing marks. With `--from journal` the journal
decides per key: the store whose row has the digest that was written wins; a DELETED key is
deleted from both; an IN_DOUBT key is settled by Milvus, because Milvus is the store whose
outcome was unknown. A key neither store can satisfy is reported as unresolved, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pymilvus import MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.errors import MilvusDiffError
from milvusdiff.services.journal import KeyState
from milvusdiff.snapshot_format import PARTITION_COLUMN
from milvusdiff.types.convert import table_to_rows
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec
from milvusdiff.workflow.adopt import adopt_unkeyed_rows
from milvusdiff.workflow.fetch import milvus_rows

SOURCES = ("milvus", "pg", "journal")


@dataclass
class RepairReport:
    collection: str
    source: str
    keys_examined: int = 0
    written_to_pg: list[Any] = field(default_factory=list)
    deleted_from_pg: list[Any] = field(default_factory=list)
    written_to_milvus: list[Any] = field(default_factory=list)
    deleted_from_milvus: list[Any] = field(default_factory=list)
    unresolved: dict[Any, str] = field(default_factory=dict)
    journal_ops: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "source": self.source,
            "keys_examined": self.keys_examined,
            "written_to_pg": self.written_to_pg,
            "deleted_from_pg": self.deleted_from_pg,
            "written_to_milvus": self.written_to_milvus,
            "deleted_from_milvus": self.deleted_from_milvus,
            "unresolved": {str(k): v for k, v in self.unresolved.items()},
            "journal_ops": self.journal_ops,
        }


def latest_run(runs: Path, collection: str) -> Path | None:
    """The newest validate output of a collection under a runs directory (names end in a UTC stamp)."""
    found = sorted(p for p in runs.glob(f"{collection}-*") if (p / "diff.parquet").is_file())
    return found[-1] if found else None


def diff_keys(run: Path, key: str) -> list[Any]:
    """The differing keys a validate (or compare) output directory lists."""
    return pq.read_table(run / "diff.parquet", columns=[key]).column(key).to_pylist()


def repair(
    client: ShadowClient,
    collection: str,
    source: str,
    keys: Sequence[Any] | None = None,
    diff: Path | None = None,
) -> RepairReport:
    """Repair `keys` from `source`. Without keys: every IN_DOUBT or pg_missing key in the journal, plus
    the differing keys of `diff` (a validate output directory) when one is given."""
    if source not in SOURCES:
        raise MilvusDiffError(f"repair `source` must be one of {', '.join(SOURCES)}, not {source!r}")
    spec = client.spec(collection)
    key_type = pa.int64() if spec.primary.type == "INT64" else pa.string()
    adopt_unkeyed_rows(client, client.journal, spec)  # rows of auto_id inserts in doubt get their keys
    if keys is None:
        keys = client.journal.unsettled_keys(collection, spec.primary.name, key_type)
        if diff is not None:
            keys = [*keys, *diff_keys(diff, spec.primary.name)]
    keys = list(dict.fromkeys(keys))
    report = RepairReport(collection, source, keys_examined=len(keys))
    if not keys:
        return report
    in_milvus = milvus_rows(client, spec, keys)
    in_pg = client.shadow.rows_for_keys(spec, keys)
    if source == "milvus":
        _copy(client, spec, in_milvus, keys, to="pg", report=report)
    elif source == "pg":
        _copy(client, spec, in_pg, keys, to="milvus", report=report)
    else:
        _repair_from_journal(client, spec, keys, in_milvus, in_pg, report)
    return report


def _repair_from_journal(
    client: ShadowClient,
    spec: CollectionSpec,
    keys: list[Any],
    in_milvus: pa.Table,
    in_pg: pa.Table,
    report: RepairReport,
) -> None:
    states = client.journal.states(spec.name, keys)
    milvus_digest = _digests_by_key(in_milvus, spec)
    pg_digest = _digests_by_key(in_pg, spec)
    milvus_wins: list[Any] = []
    pg_wins: list[Any] = []
    delete_everywhere: list[Any] = []
    for key in keys:
        state: KeyState | None = states.get(key)
        if state is None:
            report.unresolved[key] = "no journal record"
        elif state.state == "IN_DOUBT":
            milvus_wins.append(key)
        elif state.state == "DELETED":
            delete_everywhere.append(key)
        elif milvus_digest.get(key) == state.digest:
            milvus_wins.append(key)
        elif pg_digest.get(key) == state.digest:
            pg_wins.append(key)
        else:
            report.unresolved[key] = "neither store holds the row as it was written"
    if delete_everywhere:
        nothing = in_pg.slice(0, 0)
        _copy(client, spec, nothing, delete_everywhere, to="pg", report=report)
        _copy(client, spec, nothing, delete_everywhere, to="milvus", report=report)
    if milvus_wins:
        _copy(client, spec, _rows_for(in_milvus, spec, milvus_wins), milvus_wins, to="pg", report=report)
    if pg_wins:
        _copy(client, spec, _rows_for(in_pg, spec, pg_wins), pg_wins, to="milvus", report=report)


def _rows_for(table: pa.Table, spec: CollectionSpec, keys: Sequence[Any]) -> pa.Table:
    wanted = pa.array(list(keys), table.schema.field(spec.primary.name).type)
    return table.filter(pc.is_in(table.column(spec.primary.name), value_set=wanted))


def _digests_by_key(table: pa.Table, spec: CollectionSpec) -> dict[Any, bytes]:
    if table.num_rows == 0:
        return {}
    digests = row_digests(table, spec).to_pylist()
    return dict(zip(table.column(spec.primary.name).to_pylist(), digests, strict=True))


def _copy(
    client: ShadowClient, spec: CollectionSpec, winner: pa.Table, keys: Sequence[Any], *, to: str, report: RepairReport
) -> None:
    """Make the `to` store hold exactly the winner's rows for `keys`, and journal it."""
    key_name = spec.primary.name
    present = winner.column(key_name).to_pylist()
    absent = [k for k in keys if k not in set(present)]
    journal = client.journal
    if present:
        seq = journal.begin(spec.name, "repair", present, row_digests(winner, spec).to_pylist())
        for partition, rows in _by_partition(winner):
            if to == "pg":
                client.shadow.stage_upsert(spec, rows, partition).commit()
            else:
                MilvusClient.upsert(client, spec.name, table_to_rows(rows, spec), partition_name=partition or "")
        journal.commit(seq)
        report.journal_ops.append(seq)
        (report.written_to_pg if to == "pg" else report.written_to_milvus).extend(present)
    if absent:
        seq = journal.begin(spec.name, "repair_delete", absent)
        if to == "pg":
            client.shadow.stage_delete(spec, absent).commit()
        else:
            MilvusClient.delete(client, spec.name, ids=list(absent))
        journal.commit(seq)
        report.journal_ops.append(seq)
        (report.deleted_from_pg if to == "pg" else report.deleted_from_milvus).extend(absent)


def _by_partition(table: pa.Table) -> list[tuple[str | None, pa.Table]]:
    partitions = table.column(PARTITION_COLUMN)
    groups = []
    for partition in pc.unique(partitions).to_pylist():
        mask = pc.is_null(partitions) if partition is None else pc.equal(partitions, partition)
        groups.append((partition, table.filter(mask)))
    return groups
