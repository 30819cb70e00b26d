"""Journal arbitration: for every differing key, which side holds what was written.

A side is right for a key when it holds exactly what the journal intended: one row whose digest is
the journal's (EXISTS), or no row at all (DELETED, or never seen by a journal that saw the collection
created). Digests are computed only for the differing rows, from the rows as stored (pyarrow reads
them back with their exact types). With three_way (validate), the keys on which both sides agree are
checked against the journal as well (compare.threeway).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from milvusdiff.compare.inputs import Side
from milvusdiff.compare.journal_source import DIGEST, check_journal, journal_states
from milvusdiff.compare.keyset import fetch_rows
from milvusdiff.compare.plan import Plan
from milvusdiff.compare.summary import VERDICTS
from milvusdiff.compare.tally import Tally
from milvusdiff.errors import CompareError
from milvusdiff.snapshot_format import DIGEST_COLUMN
from milvusdiff.types.digest import check_stored_version, row_digests
from milvusdiff.types.spec import CollectionSpec


def _spec(side: Side, other: Side) -> CollectionSpec:
    text = side.spec_json or other.spec_json
    if text is None:
        raise CompareError("`journal` needs the collection spec (milvusdiff.spec metadata) in at least one input")
    return CollectionSpec.from_json(text)


def _collection(side: Side, other: Side) -> str | None:
    """The collection the inputs are snapshots of (spec metadata, else manifest), if they say."""
    for candidate in (side, other):
        if candidate.spec_json is not None:
            return CollectionSpec.from_json(candidate.spec_json).name
        if candidate.manifest and candidate.manifest.get("collection"):
            return str(candidate.manifest["collection"])
    return None


def _side_digests(side: Side, names: list[str], keys: pa.Table, spec: CollectionSpec) -> pa.Table:
    """Key columns + `digest_<side>` for the given keys, each held exactly once on this side: the
    snapshot's own `$digest` when it has one (computed at export from the same rows), else computed here."""
    stored = DIGEST_COLUMN in side.schema.names
    rows = fetch_rows(side.file_list, names, keys, columns=[*names, DIGEST_COLUMN] if stored else None)
    digests = (rows.column(DIGEST_COLUMN).combine_chunks() if stored else row_digests(rows, spec)).cast(DIGEST)
    key_columns = rows.select(names).rename_columns(keys.column_names).cast(keys.schema)
    return key_columns.append_column(f"digest_{side.label}", digests)


def _left_join(left: pa.Table, right: pa.Table, keys: list[str]) -> pa.Table:
    return left.join(right, keys=keys, join_type="left outer").sort_by("__row")


def verdicts_for(table: pa.Table) -> pa.Array:
    """From columns state, digest, count_a/b, digest_a/b (one row per differing key) to verdicts.

    Both sides holding what was intended can only mean a difference the digest does not cover (such as
    `$partition`): that is `unknown`, not a verdict on either side.
    """
    state = table.column("state").combine_chunks()
    exists, deleted = pc.equal(state, "EXISTS").fill_null(False), pc.equal(state, "DELETED").fill_null(False)
    ok = {}
    for label in ("a", "b"):
        count = table.column(f"count_{label}")
        holds_intended = pc.and_(
            pc.equal(count, 1), pc.equal(table.column(f"digest_{label}"), table.column("digest")).fill_null(False)
        )
        ok[label] = pc.or_(pc.and_(exists, holds_intended), pc.and_(deleted, pc.equal(count, 0))).to_numpy(
            zero_copy_only=False
        )
    decided = pc.or_(pc.and_(exists, pc.is_valid(table.column("digest"))), deleted)
    decided_np = np.asarray(decided.to_numpy(zero_copy_only=False))
    verdict = np.full(table.num_rows, "unknown", dtype=object)
    verdict[pc.equal(state, "IN_DOUBT").fill_null(False).to_numpy(zero_copy_only=False)] = "in_doubt"
    verdict[decided_np & ~ok["a"] & ok["b"]] = "a_wrong"
    verdict[decided_np & ok["a"] & ~ok["b"]] = "b_wrong"
    verdict[decided_np & ~ok["a"] & ~ok["b"]] = "both_wrong"
    return pa.array(verdict, pa.string())


def _rewrite_verdicts(diff: Path, verdicts: pa.Array, scratch: Path, appended: pa.RecordBatch | None) -> None:
    parquet = pq.ParquetFile(diff)
    staged = scratch / "diff.verdicts.parquet"
    at = 0
    with pq.ParquetWriter(staged, parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=32768):
            index = batch.schema.get_field_index("verdict")
            writer.write_batch(batch.set_column(index, "verdict", verdicts.slice(at, batch.num_rows)))
            at += batch.num_rows
        if appended is not None and appended.num_rows:
            writer.write_batch(appended)
    os.replace(staged, diff)


def arbitrate(
    diff: Path,
    tally: Tally,
    plan: Plan,
    side_a: Side,
    side_b: Side,
    journal: Path,
    scratch: Path,
    *,
    three_way: Side | None = None,
) -> tuple[dict[str, int], pa.Array]:
    """Fill diff.parquet's `verdict` column; return the count per verdict and the verdicts in diff order.

    three_way: side A whole (side_a may hold only a staged compare's candidate rows): every key of it
    outside the diff is also checked against the journal; the keys found are appended to diff.parquet
    (class `against_journal`, verdict `both_wrong`) and counted in `tally`.
    """
    names = plan.key_names
    info = check_journal(journal, _collection(side_a, side_b))
    for side in (side_a, side_b):
        if DIGEST_COLUMN in side.schema.names:
            check_stored_version(side.schema.field(DIGEST_COLUMN).metadata, f"{side.path} ({DIGEST_COLUMN})")
    listed = pa.Table.from_batches(tally.keys, schema=tally.keys[0].schema) if tally.keys else None
    appended = None
    if three_way is not None:
        from milvusdiff.compare.threeway import CLASS, against_journal, finding_rows

        diff_keys = listed.select(names) if listed is not None else pa.table({n: pa.array([]) for n in names})
        found = against_journal(three_way, plan, _spec(side_a, side_b), journal, info, diff_keys)
        appended = finding_rows(found, pq.read_schema(diff))
        tally.classes[CLASS] += appended.num_rows
        tally.written += appended.num_rows
        tally.against_journal = appended.num_rows
    counts = dict.fromkeys(VERDICTS, 0)
    counts["both_wrong"] = appended.num_rows if appended is not None else 0
    if listed is None or listed.num_rows == 0:
        if counts["both_wrong"]:
            _rewrite_verdicts(diff, pa.array([], pa.string()), scratch, appended)
        return counts, pa.array([], pa.string())
    listed = listed.append_column("__row", pa.array(np.arange(listed.num_rows, dtype=np.int64)))
    keys = listed.select(names)
    spec_a, spec_b = _spec(side_a, side_b), _spec(side_b, side_a)
    table = _left_join(listed, journal_states(journal, plan, keys, spec_a), names)
    if info.complete:  # a key the journal never saw was never written: it was intended absent
        table = table.set_column(
            table.schema.get_field_index("state"), "state", pc.fill_null(table.column("state"), "DELETED")
        )
    exists = pc.equal(table.column("state"), "EXISTS").fill_null(False)
    for side, spec in ((side_a, spec_a), (side_b, spec_b)):
        wanted = table.filter(pc.and_(exists, pc.equal(table.column(f"count_{side.label}"), 1))).select(names)
        side_names = [k.name if side.label == "a" else k.b_name for k in plan.keys]
        table = _left_join(table, _side_digests(side, side_names, wanted, spec), names)
    verdicts = verdicts_for(table)
    _rewrite_verdicts(diff, verdicts, scratch, appended)
    for entry in pc.value_counts(verdicts).to_pylist():
        counts[entry["values"]] += entry["counts"]
    return counts, verdicts
