"""The default engine: one FULL OUTER JOIN in DuckDB, differing rows streamed out as Arrow batches.

Only the compared columns are read; the per-column mismatch booleans are computed in the join's
projection and nothing but the differing rows ever leaves DuckDB, which spills to its temp directory
when the join does not fit in `memory_limit`.

Inputs sorted by a single integer key (every Milvus export) skip the wide join: DuckDB reads the
key columns and both sides' compared columns in file order, the keys are merged and the wide columns
compared positionally with numpy (positional.py). Same intermediate table, same formulas.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from milvusdiff.compare import positional
from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan import Column, Kind, Plan, a_col, b_col, flag_col
from milvusdiff.errors import CompareError

BATCH_ROWS = 8192


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_type(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_string(arrow_type):
        return "VARCHAR"
    if pa.types.is_binary(arrow_type):
        return "BLOB"
    return None


_ELEMENT_TYPES = {
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
}


def _as_array(sql: str, arrow_type: pa.DataType) -> str:
    """Parquet has no fixed-size lists, DuckDB reads vectors as T[]; as T[dim] they compare faster and
    leave DuckDB as Arrow's fixed_size_list, so the finishing pass needs no cast."""
    if pa.types.is_fixed_size_list(arrow_type) and arrow_type.value_type in _ELEMENT_TYPES:
        return f"CAST({sql} AS {_ELEMENT_TYPES[arrow_type.value_type]}[{arrow_type.list_size}])"
    return sql


def _key_select(plan: Plan, side: str) -> str:
    parts = []
    for key in plan.keys:
        source = q(key.name if side == "a" else key.b_name)
        sql_type = _sql_type(key.arrow_type)
        parts.append(f"CAST({source} AS {sql_type}) AS {q(key.name)}" if sql_type else f"{source} AS {q(key.name)}")
    return ", ".join(parts)


def _on(left: str, right: str, plan: Plan) -> str:
    return " AND ".join(f"{left}.{q(k)} IS NOT DISTINCT FROM {right}.{q(k)}" for k in plan.key_names)


def _mismatch(column: Column) -> str:
    x, y = q(a_col(column.name)), q(b_col(column.name))
    if column.kind is not Kind.FLOAT:
        # Fixed-size arrays compare faster than the lists Parquet vectors are read as.
        return f"{_as_array(x, column.type_a)} IS DISTINCT FROM {_as_array(y, column.type_b)}"
    x, y = f"{x}::DOUBLE", f"{y}::DOUBLE"
    tol = column.tolerance
    if tol.exact:
        return f"{x} IS DISTINCT FROM {y}"
    # DuckDB orders NaN above everything and equal to itself, so NaN <= NaN holds: keep NaN out of the formula.
    within = f"NOT isnan({x}) AND NOT isnan({y}) AND abs({x} - {y}) <= {tol.atol!r} + {tol.rtol!r} * abs({y})"
    return f"({x} IS DISTINCT FROM {y} AND NOT coalesce({within}, false))"


def build_sql(plan: Plan, has_dups: bool, limit: int | None) -> str:
    keys = ", ".join(q(k) for k in plan.key_names)
    cols_a = "".join(f", {q(c.name)} AS {q(a_col(c.name))}" for c in plan.columns)
    cols_b = "".join(f", {q(c.b_name)} AS {q(b_col(c.name))}" for c in plan.columns)
    anti = " ANTI JOIN dups ON {}".format(_on("s", "dups", plan)) if has_dups else ""
    pick_key = ", ".join(f"CASE WHEN a.__in THEN a.{q(k)} ELSE b.{q(k)} END AS {q(k)}" for k in plan.key_names)
    flags = "".join(
        f", CASE WHEN a.__in AND b.__in THEN {_mismatch(c)} END AS {q(flag_col(c.name))}" for c in plan.columns
    )
    values = "".join(
        f", CASE WHEN {q(flag_col(c.name))} THEN {_as_array(q(name), arrow_type)} END AS {q(name)}"
        for c in plan.columns
        for name, arrow_type in ((a_col(c.name), c.type_a), (b_col(c.name), c.type_b))
    )
    any_flag = "".join(f" OR {q(flag_col(c.name))}" for c in plan.columns)
    sql = f"""
    WITH a AS (SELECT * FROM (SELECT {_key_select(plan, "a")}{cols_a}, TRUE AS __in FROM A) s{anti}),
         b AS (SELECT * FROM (SELECT {_key_select(plan, "b")}{cols_b}, TRUE AS __in FROM B) s{anti}),
         j AS (SELECT {pick_key}, a.__in AS __in_a, b.__in AS __in_b{flags}
                      {"".join(f", a.{q(a_col(c.name))}, b.{q(b_col(c.name))}" for c in plan.columns)}
               FROM a FULL OUTER JOIN b ON {_on("a", "b", plan)})
    SELECT {keys},
           CASE WHEN __in_b IS NULL THEN 'only_a' WHEN __in_a IS NULL THEN 'only_b' ELSE 'changed' END AS class,
           CASE WHEN __in_a THEN 1 ELSE 0 END::BIGINT AS count_a,
           CASE WHEN __in_b THEN 1 ELSE 0 END::BIGINT AS count_b
           {"".join(f", {q(flag_col(c.name))}" for c in plan.columns)}{values}
    FROM j WHERE __in_a IS NULL OR __in_b IS NULL{any_flag}
    """
    if limit is not None:
        sql = f"SELECT * FROM ({sql}) LIMIT {int(limit)}"
    if has_dups:
        sql = f"""({sql}) UNION ALL BY NAME (
            SELECT {keys}, CASE WHEN sum(ina) > 1 THEN 'duplicate_a' ELSE 'duplicate_b' END AS class,
                   sum(ina)::BIGINT AS count_a, sum(inb)::BIGINT AS count_b
            FROM (SELECT {_key_select(plan, "a")}, 1 AS ina, 0 AS inb FROM A
                  UNION ALL SELECT {_key_select(plan, "b")}, 0, 1 FROM B) s
            SEMI JOIN dups ON {_on("s", "dups", plan)}
            GROUP BY ALL)"""
    return sql


def _find_duplicates(con: duckdb.DuckDBPyConnection, plan: Plan) -> bool:
    """Fill table `dups` with the keys held more than once on either side. A count of distinct keys,
    about twice as fast as grouping, first says whether there can be any (it also fires for NULL keys)."""
    keys = ", ".join(q(k) for k in plan.key_names)
    distinct = f"count(DISTINCT ({keys}))" if len(plan.keys) > 1 else f"count(DISTINCT {keys})"
    excess = con.execute(
        f"SELECT (SELECT count(*) - {distinct} FROM (SELECT {_key_select(plan, 'a')} FROM A)),"
        f" (SELECT count(*) - {distinct} FROM (SELECT {_key_select(plan, 'b')} FROM B))"
    ).fetchall()[0]
    if not any(excess):
        return False
    con.execute(
        f"""CREATE TEMP TABLE dups AS
        SELECT {keys} FROM (SELECT {_key_select(plan, "a")} FROM A) GROUP BY ALL HAVING count(*) > 1
        UNION SELECT {keys} FROM (SELECT {_key_select(plan, "b")} FROM B) GROUP BY ALL HAVING count(*) > 1"""
    )
    return bool(con.execute("SELECT count(*) FROM dups").fetchall()[0][0])


def _trouble(exc: duckdb.Error, inputs: str) -> CompareError:
    """DuckDB's message without its multi-line advice: the CLI prints one line. Its messages about
    undecodable data (a corrupt page) name no file, so the line names the inputs."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.OutOfMemoryException):
        return CompareError(f"DuckDB: {first} (raise --memory-limit or free disk for --temp-dir)")
    return CompareError(f"DuckDB: {first} (reading {inputs})")


def _inputs(side_a: Side, side_b: Side) -> str:
    return f"A {side_a.path} and B {side_b.path}"


def _batches(reader: Iterable[pa.RecordBatch], inputs: str) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except duckdb.Error as exc:
        raise _trouble(exc, inputs) from exc


def _sorted_keys(
    con: duckdb.DuckDBPyConnection, plan: Plan, side_a: Side, side_b: Side
) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sides' keys when the positional path applies (see positional.py), else None."""
    con.execute("SET preserve_insertion_order = true")  # the keys in file order
    keys_a = positional.sorted_keys(con, side_a, plan.keys[0].name)
    keys_b = positional.sorted_keys(con, side_b, plan.keys[0].b_name) if keys_a is not None else None
    con.execute("SET preserve_insertion_order = false")
    return (keys_a, keys_b) if keys_a is not None and keys_b is not None else None


@contextlib.contextmanager
def stream(
    plan: Plan, side_a: Side, side_b: Side, options: CompareOptions, scratch: Path
) -> Iterator[Iterator[pa.RecordBatch]]:
    """The differing rows, in no particular order: sorting wide rows costs more than the join itself."""
    con = duckdb.connect(config={"threads": options.threads, "preserve_insertion_order": False})
    scans: positional.Scans | None = None
    try:
        con.execute(f"SET temp_directory = {lit(str(options.temp_dir or scratch / 'duckdb.tmp'))}")
        con.execute(f"SET memory_limit = {lit(options.memory_limit)}")
        for name, side in (("A", side_a), ("B", side_b)):
            files = ", ".join(lit(f) for f in side.file_list)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{files}])")
        # Sorted inputs (see positional.py) start decoding their wide columns while the keys are read.
        scans = positional.Scans(plan, side_a, side_b) if positional.applies(plan) else None
        sorted_keys = _sorted_keys(con, plan, side_a, side_b) if scans is not None else None
        if scans is not None and sorted_keys is not None:
            found: Iterable[pa.RecordBatch] = positional.stream(plan, *sorted_keys, scans, options.max_diffs)
        else:
            if scans is not None:
                scans.close()
            has_dups = _find_duplicates(con, plan)
            found = con.sql(build_sql(plan, has_dups, options.max_diffs)).to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        if scans is not None:
            scans.close()
        con.close()
        raise _trouble(exc, _inputs(side_a, side_b)) from exc
    try:
        yield _batches(found, _inputs(side_a, side_b))
    finally:
        if scans is not None:
            scans.close()
        con.close()
