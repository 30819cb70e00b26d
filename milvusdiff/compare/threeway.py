"""The third way of validate: keys on which Milvus and PostgreSQL agree, checked against the journal.

A key both stores hold alike (or both lack) never reaches the diff, yet both can be wrong the same way:
rows deleted or changed in both behind the client's back, or phantom keys the journal still holds. For
every key outside the diff, the journal's intent is set against what Milvus holds (the same as what
PostgreSQL holds, since the key did not differ): one DuckDB full join of the journal's (key, state,
digest) with Milvus's (key, row digest). A key that does not match is a finding of class
`against_journal`, verdict `both_wrong`.

The Milvus digests come from the snapshot's `$digest` column, which every Milvus export carries.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from milvusdiff.compare.inputs import KEY_META, Side
from milvusdiff.compare.journal_source import DIGEST, JournalInfo, journal_files
from milvusdiff.compare.plan import Plan
from milvusdiff.errors import CompareError
from milvusdiff.snapshot_format import DIGEST_COLUMN
from milvusdiff.types.spec import CollectionSpec

CLASS = "against_journal"
VERDICT = "both_wrong"
_BATCH_ROWS = 65536
_KEY = "k"  # the key under one name in the join: column names need no quoting, case twins cannot meet

# Per key outside the diff: M = what Milvus holds (and so PostgreSQL), J = what the journal intended.
# EXISTS wants one row with the journal's digest (a digest-less intent, only the row); DELETED wants none;
# a key the journal never saw wants none when the journal covers the collection from its creation; and
# IN_DOUBT wants nothing in particular.
_FINDINGS = """
SELECT coalesce(m.k, j.k) AS k, m.k IS NOT NULL AS present, j.state AS state
FROM m FULL OUTER JOIN j ON m.k = j.k
WHERE coalesce(m.k, j.k) IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM d WHERE d.k = coalesce(m.k, j.k))
  AND CASE
        WHEN j.state = 'EXISTS' THEN m.k IS NULL OR (j.digest IS NOT NULL AND m.d IS DISTINCT FROM j.digest)
        WHEN j.state = 'DELETED' THEN m.k IS NOT NULL
        WHEN j.state IS NULL THEN m.k IS NOT NULL AND $complete
        ELSE false
      END
ORDER BY 1
"""


def _milvus_digests(side: Side, key: str) -> pa.RecordBatchReader:
    """(k, d) for every row of the snapshot, streamed from its `$digest` column (arbitrate checked its version)."""
    dataset = ds.dataset(side.file_list, format="parquet")
    if DIGEST_COLUMN not in dataset.schema.names:
        raise CompareError(f"{side.path} has no {DIGEST_COLUMN} column: export it again with this milvusdiff")
    schema = pa.schema([pa.field(_KEY, dataset.schema.field(key).type), pa.field("d", DIGEST)])
    scanner = dataset.scanner(columns={_KEY: ds.field(key), "d": ds.field(DIGEST_COLUMN)}, batch_size=_BATCH_ROWS)
    return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in scanner.to_batches()))


def _journal_states(
    journal: Path, spec: CollectionSpec, key_type: pa.DataType, stack: ExitStack
) -> pa.RecordBatchReader:
    """(k, state, digest) for every key the journal holds, streamed from a snapshot or the LMDB journal."""
    schema = pa.schema([pa.field(_KEY, key_type), pa.field("state", pa.string()), pa.field("digest", DIGEST)])
    files = journal_files(journal)
    if files:
        dataset = ds.dataset([str(f) for f in files], format="parquet")
        meta = dataset.schema.metadata or {}
        name = json.loads(meta[KEY_META])[0] if KEY_META in meta else spec.primary.name
        columns = {_KEY: ds.field(name), "state": ds.field("state"), "digest": ds.field("digest")}
        batches = dataset.scanner(columns=columns, batch_size=_BATCH_ROWS).to_batches()
    else:
        from milvusdiff.services.journal import Journal

        opened = stack.enter_context(Journal(journal, readonly=True))
        states = opened.iter_state_batches(spec.name, _KEY, key_type, batch_rows=_BATCH_ROWS)
        batches = (b.select([_KEY, "state", "digest"]) for b in states)
    return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in batches))


def against_journal(
    side: Side, plan: Plan, spec: CollectionSpec, journal: Path, info: JournalInfo, diff_keys: pa.Table
) -> pa.Table:
    """The keys outside `diff_keys` on which Milvus (side A) and the journal disagree: the plan's key
    column, `present` (Milvus holds the key) and the journal's `state` (null: never seen)."""
    if len(plan.keys) != 1:
        raise CompareError("checking every key against the journal needs a single-column primary key")
    key = plan.keys[0]
    with ExitStack() as stack:
        milvus = _milvus_digests(side, key.name)
        states = _journal_states(journal, spec, milvus.schema.field(_KEY).type, stack)
        con = stack.enter_context(duckdb.connect())
        con.register("m", milvus)
        con.register("j", states)
        con.register("d", diff_keys.select([0]).rename_columns([_KEY]).cast(pa.schema([milvus.schema.field(_KEY)])))
        found = con.sql(_FINDINGS, params={"complete": info.complete}).to_arrow_table()
    return found.rename_columns([key.name, "present", "state"]).cast(
        pa.schema([pa.field(key.name, key.arrow_type), pa.field("present", pa.bool_()), pa.field("state", pa.string())])
    )


def finding_rows(found: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """The findings as diff.parquet rows: counts the same on both sides, no values (both stores agree)."""
    n = found.num_rows
    counts = found.column("present").cast(pa.int64()).combine_chunks()
    given = {
        found.column_names[0]: found.column(0).combine_chunks(),
        "class": pa.array([CLASS] * n, pa.string()),
        "count_a": counts,
        "count_b": counts,
        "changed_columns": pa.array([[]] * n, pa.list_(pa.string())),
        "verdict": pa.array([VERDICT] * n, pa.string()),
    }
    arrays = [given[f.name].cast(f.type) if f.name in given else pa.nulls(n, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
