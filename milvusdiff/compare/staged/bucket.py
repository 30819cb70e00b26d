"""Stages (b) and (c) for a group of buckets, in whatever process runs it (the caller's, a --jobs worker,
or an engine's executor): a self-contained job in, two small Parquet files and counts out.

Keys never cross buckets, so joining the union of a group's buckets finds exactly what joining each
bucket alone would; a group is one scan instead of one per bucket (per-bucket queries spent more time
in setup than in reading). Groups are sized so their key + digest columns stay small (run.py).

(b) reads only key, `$digest` and `$partition` of the bucket and keeps the keys that are on one side
only, more than once on a side, or whose digest or partition differ: `candidate_keys`, on Arrow tables,
so any engine that can hand over a bucket's key columns as Arrow can reuse it. (c) copies the full rows
of those keys from both sides: DuckDB decodes the wide columns only for the rows the key filter keeps
(measured here: about half the time of reading every row), and the result is cast back to the
snapshot's exact Arrow schema, so the reduced inputs compare exactly as the originals would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.snapshot_format import DIGEST_COLUMN, PARTITION_COLUMN

_K, _D, _P = "k", "d", "p"
_database: tuple[int, duckdb.DuckDBPyConnection] | None = None


@dataclass(frozen=True)
class BucketJob:
    buckets: tuple[int, ...]
    files_a: tuple[str, ...]
    files_b: tuple[str, ...]
    key_a: str
    key_b: str
    with_partition: bool
    out_a: str
    out_b: str
    memory_limit: str
    threads: int


@dataclass(frozen=True)
class BucketOutcome:
    buckets: tuple[int, ...]
    candidates: int  # keys that may differ
    rows_a: int  # full rows copied for them
    rows_b: int


def _narrow(files: tuple[str, ...], key: str, with_partition: bool, schema: pa.Schema) -> pa.Table:
    """Key, digest and partition of a bucket's rows, renamed k, d, p."""
    columns = [key, DIGEST_COLUMN, *([PARTITION_COLUMN] if with_partition else [])]
    names = [_K, _D, *([_P] if with_partition else [])]
    if not files:
        return pa.table({n: pa.array([], schema.field(c).type) for n, c in zip(names, columns, strict=True)})
    return pq.read_table(list(files), columns=columns).rename_columns(names)


def candidate_keys(con: duckdb.DuckDBPyConnection, a: pa.Table, b: pa.Table) -> pa.Table:
    """Stage (b) on one bucket: from tables k, d[, p] of each side, the keys k that may differ."""
    partition = _P in a.column_names
    differs = f"a.{_D} IS DISTINCT FROM b.{_D}" + (f" OR a.{_P} IS DISTINCT FROM b.{_P}" if partition else "")
    pick = f", min({_P}) AS {_P}" if partition else ""
    con.register("na", a)
    con.register("nb", b)
    try:
        return con.sql(
            f"""WITH a AS (SELECT {_K}, count(*) AS n, min({_D}) AS {_D}{pick} FROM na GROUP BY {_K}),
                     b AS (SELECT {_K}, count(*) AS n, min({_D}) AS {_D}{pick} FROM nb GROUP BY {_K})
                SELECT coalesce(a.{_K}, b.{_K}) AS {_K} FROM a FULL OUTER JOIN b ON a.{_K} = b.{_K}
                WHERE a.n IS DISTINCT FROM 1 OR b.n IS DISTINCT FROM 1 OR {differs}"""
        ).to_arrow_table()
    finally:
        con.unregister("na")
        con.unregister("nb")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_rows(con: duckdb.DuckDBPyConnection, files: tuple[str, ...], key: str, schema: pa.Schema, out: str) -> int:
    """Stage (c): the full rows of the candidate keys (table `keys`) from `files`, written to `out`."""
    if not files:
        return 0
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    table = con.sql(
        f"SELECT * FROM read_parquet([{listed}]) WHERE {_quoted(key)} IN (SELECT {_K} FROM keys)"
    ).to_arrow_table()
    if table.num_rows:
        # by position: DuckDB renames columns whose names differ only in case, the snapshot does not
        pq.write_table(table.rename_columns(schema.names).cast(schema), out)
    return table.num_rows


def _connection(job: BucketJob) -> duckdb.DuckDBPyConnection:
    """One DuckDB database per process (connecting took about a quarter second here), a cursor per job."""
    global _database
    if _database is None or _database[0] != os.getpid():
        _database = (os.getpid(), duckdb.connect())
    con = _database[1].cursor()
    con.execute(f"SET threads = {int(job.threads)}")
    con.execute("SET memory_limit = '" + job.memory_limit.replace("'", "''") + "'")
    return con


def settle_bucket(job: BucketJob) -> BucketOutcome:
    """Stages (b) and (c) for a group of buckets (see the module docstring)."""
    files = job.files_a or job.files_b
    schema_a = pq.read_schema(job.files_a[0]) if job.files_a else pq.read_schema(files[0])
    schema_b = pq.read_schema(job.files_b[0]) if job.files_b else pq.read_schema(files[0])
    con = _connection(job)
    try:
        narrow_a = _narrow(job.files_a, job.key_a, job.with_partition, schema_a)
        narrow_b = _narrow(job.files_b, job.key_b, job.with_partition, schema_b)
        keys = candidate_keys(con, narrow_a, narrow_b)
        del narrow_a, narrow_b
        if not keys.num_rows:
            return BucketOutcome(job.buckets, 0, 0, 0)
        con.register("keys", keys)
        rows_a = _copy_rows(con, job.files_a, job.key_a, schema_a, job.out_a)
        rows_b = _copy_rows(con, job.files_b, job.key_b, schema_b, job.out_b)
        return BucketOutcome(job.buckets, keys.num_rows, rows_a, rows_b)
    finally:
        con.close()


def empty_file(schema: pa.Schema, out: Path) -> Path:
    """A part with no rows, so a side whose every bucket is settled still has a file to open."""
    pq.write_table(pa.Table.from_batches([], schema=schema), out)  # not empty_table(): it imports pandas
    return out
