"""What the journal intended for a set of keys: state and digest, from a journal snapshot or LMDB.

A journal snapshot (export --source journal) is read with a key filter, so only the differing keys
are loaded; the LMDB journal is asked key by key, which is fine for the differing keys only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from milvusdiff.compare.inputs import snapshot_parts
from milvusdiff.compare.keyset import key_filter, select_keys
from milvusdiff.compare.plan import Plan
from milvusdiff.errors import CompareError
from milvusdiff.services.journal import COMPLETE_KEY, FORMAT_VERSION, FORMAT_VERSION_KEY, Journal
from milvusdiff.snapshot_format import KEY_META, MANIFEST_NAME, PART_GLOB
from milvusdiff.snapshot_verify import check_rows, verify_pages
from milvusdiff.types.digest import check_stored_version
from milvusdiff.types.spec import CollectionSpec

STATE_COLUMNS = ("state", "last_seq", "last_op", "digest", "flags")
DIGEST = pa.binary(16)


def journal_files(path: Path) -> list[Path]:
    """The data files of a journal snapshot, checked against its manifest like any snapshot read (none: LMDB)."""
    if path.is_dir() and not any(path.glob(PART_GLOB)):
        return []
    if not path.is_dir() and path.suffix != ".parquet":
        return []
    files, manifest = snapshot_parts(path, "journal")
    if manifest is not None:
        check_rows(files, [pq.ParquetFile(f).metadata.num_rows for f in files], manifest, "journal")
    return list(files)


def _from_snapshot(files: list[Path], plan: Plan, keys: pa.Table) -> pa.Table:
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    meta = dataset.schema.metadata or {}
    names = json.loads(meta[KEY_META]) if KEY_META in meta else plan.key_names
    missing = [n for n in names if n not in dataset.schema.names]
    if missing or len(names) != len(plan.keys):
        raise CompareError(f"journal {files[0].parent}: key {names} does not match the compared key {plan.key_names}")
    verify_pages(files, [*names, "state", "digest"], "journal")
    table = dataset.to_table(columns=[*names, "state", "digest"], filter=key_filter(dataset, names, keys))
    table = select_keys(table, names, keys)
    return table.rename_columns([*plan.key_names, "state", "digest"]).cast(
        pa.schema([*keys.schema, pa.field("state", pa.string()), pa.field("digest", DIGEST)])
    )


def _from_lmdb(path: Path, plan: Plan, keys: pa.Table, spec: CollectionSpec) -> pa.Table:
    if len(plan.keys) != 1:
        raise CompareError("the LMDB journal records single-column primary keys; the compared key is composite")
    wanted = keys.column(0).to_pylist()
    with Journal(path, readonly=True) as journal:
        states = journal.states(spec.name, [k for k in wanted if k is not None])
    found = [k for k in wanted if k in states]
    return pa.table(
        {
            plan.key_names[0]: pa.array(found, keys.schema.field(0).type),
            "state": pa.array([states[k].state for k in found], pa.string()),
            "digest": pa.array([states[k].digest for k in found], DIGEST),
        }
    )


@dataclass(frozen=True)
class JournalInfo:
    """What arbitration needs to know about a journal beyond its key states."""

    complete: bool  # it saw the collection created, so a key it does not hold was never written


def _snapshot_info(files: list[Path]) -> JournalInfo:
    """Refuse a journal snapshot of another format or digest layout (absent: written before versions, 1)."""
    meta = pq.read_schema(files[0]).metadata or {}
    found = meta.get(FORMAT_VERSION_KEY.encode(), b"1").decode(errors="replace")
    if found != str(FORMAT_VERSION):
        raise CompareError(
            f"journal {files[0]}: format version {found}; this milvusdiff reads version {FORMAT_VERSION} only"
        )
    check_stored_version(meta, f"journal {files[0]}")
    return JournalInfo(complete=meta.get(COMPLETE_KEY.encode()) == b"true")


def check_journal(path: Path, collection: str | None) -> JournalInfo:
    """Refuse a --journal that is missing, is not a journal, is of a version this milvusdiff does not read,
    or records another collection, whether or not any key differs: arbitrating with another collection's
    journal would turn every verdict into a confident-looking `unknown` (or worse, a wrong one when keys
    happen to coincide)."""
    if not path.exists():
        raise CompareError(f"journal does not exist: {path}")
    files = journal_files(path)
    if files:
        info = _snapshot_info(files)
        manifest = path / MANIFEST_NAME if path.is_dir() else None
        if collection is None or manifest is None or not manifest.exists():
            return info
        recorded = json.loads(manifest.read_text(encoding="utf-8")).get("collection")
        if recorded is not None and recorded != collection:
            raise CompareError(f"journal {path} records collection {recorded!r}, not {collection!r}")
        return info
    if not (path / "data.mdb").exists():
        raise CompareError(f"not a journal snapshot (part-*.parquet) nor an LMDB journal (data.mdb): {path}")
    with Journal(path, readonly=True) as journal:
        if collection is None:
            return JournalInfo(complete=False)
        if journal.collection_spec(collection) is None:
            known = ", ".join(repr(c) for c in journal.collections()) or "none"
            raise CompareError(f"the journal at {path} has no collection {collection!r} (it has: {known})")
        return JournalInfo(complete=journal.covers_creation(collection))


def journal_states(path: Path, plan: Plan, keys: pa.Table, spec: CollectionSpec) -> pa.Table:
    """Columns: the plan's key columns, `state`, `digest`; keys the journal does not know are absent."""
    if not path.exists():
        raise CompareError(f"journal does not exist: {path}")
    files = journal_files(path)
    if files:
        return _from_snapshot(files, plan, keys)
    if (path / "data.mdb").exists():
        return _from_lmdb(path, plan, keys, spec)
    raise CompareError(f"not a journal snapshot (part-*.parquet) nor an LMDB journal (data.mdb): {path}")
