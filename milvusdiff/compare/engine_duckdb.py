"""The default engine: one FULL OUTER JOIN in DuckDB, differing rows streamed out as Arrow batches.

Only the compared columns are read; the per-column mismatch booleans are computed in the join's
projection and nothing but the differing rows ever leaves DuckDB, which spills to its temp directory
when the join does not fit in `memory_limit`.

Inputs keyed by a single integer, at least one side in key order (every Milvus export), skip the wide
join: DuckDB reads the key columns and both sides' compared columns in file order (a side out of order
is loaded whole and put in key order), the keys are merged and the wide columns compared
positionally with numpy (positional.py). Same intermediate table; every flag is a pre-filter that the
comparator (comparator.py) decides in the finishing pass.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from milvusdiff.compare import positional
from milvusdiff.compare.comparator import is_list
from milvusdiff.compare.duck import lit, q, ref, source
from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.pipeline import Concurrent
from milvusdiff.compare.plan import Column, Kind, Plan, a_col, b_col, flag_col
from milvusdiff.errors import CompareError

BATCH_ROWS = 8192


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


# Internal names inside the SQL (DuckDB names are case-insensitive, user names are not); the batches
# leaving DuckDB are renamed to the plan's names (see _public_names).
def _k(i: int) -> str:
    return q(f"k{i}")


def _a(j: int) -> str:
    return q(f"a{j}")


def _b(j: int) -> str:
    return q(f"b{j}")


def _f(j: int) -> str:
    return q(f"f{j}")


def _key_select(plan: Plan, side: Side, label: str) -> str:
    parts = []
    for i, key in enumerate(plan.keys):
        source = ref(side, key.name if label == "a" else key.b_name)
        sql_type = _sql_type(key.arrow_type)
        parts.append(f"CAST({source} AS {sql_type}) AS {_k(i)}" if sql_type else f"{source} AS {_k(i)}")
    return ", ".join(parts)


def _on(left: str, right: str, plan: Plan) -> str:
    return " AND ".join(f"{left}.{_k(i)} IS NOT DISTINCT FROM {right}.{_k(i)}" for i in range(len(plan.keys)))


def _zero_signs_differ(x: str, y: str) -> str:
    """For float lists equal by value: whether a zero differs in sign (DuckDB and IEEE call -0.0 = 0.0,
    the comparator does not). Only lists holding a zero pay for the per-element look."""
    signs = "list_transform({}, lambda e: signbit(e))"
    return f"CASE WHEN list_contains({x}, 0) THEN {signs.format(x)} IS DISTINCT FROM {signs.format(y)} ELSE false END"


def _floating_values(arrow_type: pa.DataType) -> bool:
    return is_list(arrow_type) and pa.types.is_floating(arrow_type.value_type)


def _mismatch(column: Column, j: int) -> str:
    """A pre-filter for the comparator (comparator.py): it may flag more rows than the rule, never fewer;
    the finishing pass decides every flagged row."""
    x, y = _a(j), _b(j)
    tol = column.tolerance
    if column.kind is not Kind.FLOAT:
        x, y = _as_array(x, column.type_a), _as_array(y, column.type_b)
        distinct = f"{x} IS DISTINCT FROM {y}"
        if not tol.exact:
            return distinct
        if column.kind is Kind.FLOAT_LIST and _floating_values(column.type_a):
            return f"CASE WHEN {distinct} THEN true ELSE {_zero_signs_differ(x, y)} END"
        if column.kind is Kind.SPARSE:
            xv, yv = f"struct_extract({x}, 'values')", f"struct_extract({y}, 'values')"
            return f"CASE WHEN {distinct} THEN true ELSE coalesce({_zero_signs_differ(xv, yv)}, false) END"
        return distinct
    x, y = f"{x}::DOUBLE", f"{y}::DOUBLE"
    # IS DISTINCT FROM calls -0.0 and 0.0 the same and NaN equal to NaN: the sign bit tells zeros apart.
    differs = f"({x} IS DISTINCT FROM {y} OR coalesce(signbit({x}) <> signbit({y}), false))"
    if tol.exact:
        return differs
    # Infinities and NaN stay out of the formula: abs(0 - inf) <= rtol * inf would hold.
    within = f"isfinite({x}) AND isfinite({y}) AND abs({x} - {y}) <= {tol.atol!r} + {tol.rtol!r} * abs({y})"
    return f"({differs} AND NOT coalesce({within}, false))"


def public_names(plan: Plan) -> list[str]:
    """The columns of build_sql's result, in order, under the names of the intermediate table."""
    names = [*plan.key_names, "class", "count_a", "count_b", *(flag_col(c.name) for c in plan.columns)]
    return names + [name for c in plan.columns for name in (a_col(c.name), b_col(c.name))]


def build_sql(plan: Plan, side_a: Side, side_b: Side, has_dups: bool, limit: int | None) -> str:
    keys = ", ".join(_k(i) for i in range(len(plan.keys)))
    cols_a = "".join(f", {ref(side_a, c.name)} AS {_a(j)}" for j, c in enumerate(plan.columns))
    cols_b = "".join(f", {ref(side_b, c.b_name)} AS {_b(j)}" for j, c in enumerate(plan.columns))
    anti = " ANTI JOIN dups ON {}".format(_on("s", "dups", plan)) if has_dups else ""
    pick_key = ", ".join(
        f"CASE WHEN a.__in THEN a.{_k(i)} ELSE b.{_k(i)} END AS {_k(i)}" for i in range(len(plan.keys))
    )
    flags = "".join(
        f", CASE WHEN a.__in AND b.__in THEN {_mismatch(c, j)} END AS {_f(j)}" for j, c in enumerate(plan.columns)
    )
    values = "".join(
        f", CASE WHEN {_f(j)} THEN {_as_array(name, arrow_type)} END AS {name}"
        for j, c in enumerate(plan.columns)
        for name, arrow_type in ((_a(j), c.type_a), (_b(j), c.type_b))
    )
    any_flag = "".join(f" OR {_f(j)}" for j in range(len(plan.columns)))
    carried = "".join(f", a.{_a(j)}, b.{_b(j)}" for j in range(len(plan.columns)))
    sql = f"""
    WITH a AS (SELECT * FROM (SELECT {_key_select(plan, side_a, "a")}{cols_a}, TRUE AS __in FROM A) s{anti}),
         b AS (SELECT * FROM (SELECT {_key_select(plan, side_b, "b")}{cols_b}, TRUE AS __in FROM B) s{anti}),
         j AS (SELECT {pick_key}, a.__in AS __in_a, b.__in AS __in_b{flags}{carried}
               FROM a FULL OUTER JOIN b ON {_on("a", "b", plan)})
    SELECT {keys},
           CASE WHEN __in_b IS NULL THEN 'only_a' WHEN __in_a IS NULL THEN 'only_b' ELSE 'changed' END AS class,
           CASE WHEN __in_a THEN 1 ELSE 0 END::BIGINT AS count_a,
           CASE WHEN __in_b THEN 1 ELSE 0 END::BIGINT AS count_b
           {"".join(f", {_f(j)}" for j in range(len(plan.columns)))}{values}
    FROM j WHERE __in_a IS NULL OR __in_b IS NULL{any_flag}
    """
    if limit is not None:
        sql = f"SELECT * FROM ({sql}) LIMIT {int(limit)}"
    if has_dups:
        sql = f"""({sql}) UNION ALL BY NAME (
            SELECT {keys}, CASE WHEN sum(ina) > 1 THEN 'duplicate_a' ELSE 'duplicate_b' END AS class,
                   sum(ina)::BIGINT AS count_a, sum(inb)::BIGINT AS count_b
            FROM (SELECT {_key_select(plan, side_a, "a")}, 1 AS ina, 0 AS inb FROM A
                  UNION ALL SELECT {_key_select(plan, side_b, "b")}, 0, 1 FROM B) s
            SEMI JOIN dups ON {_on("s", "dups", plan)}
            GROUP BY ALL)"""
    return f"SELECT {', '.join(public_order(plan))} FROM ({sql})"


def public_order(plan: Plan) -> list[str]:
    """build_sql's internal names in the order of public_names (UNION BY NAME may reorder columns)."""
    n = len(plan.columns)
    names = [_k(i) for i in range(len(plan.keys))] + ["class", "count_a", "count_b"] + [_f(j) for j in range(n)]
    return names + [name for j in range(n) for name in (_a(j), _b(j))]


def _find_duplicates(con: duckdb.DuckDBPyConnection, plan: Plan, side_a: Side, side_b: Side) -> bool:
    """Fill table `dups` with the keys held more than once on either side. A count of distinct keys,
    about twice as fast as grouping, first says whether there can be any (it also fires for NULL keys)."""
    keys = ", ".join(_k(i) for i in range(len(plan.keys)))
    distinct = f"count(DISTINCT ({keys}))" if len(plan.keys) > 1 else f"count(DISTINCT {keys})"
    excess = con.execute(
        f"SELECT (SELECT count(*) - {distinct} FROM (SELECT {_key_select(plan, side_a, 'a')} FROM A)),"
        f" (SELECT count(*) - {distinct} FROM (SELECT {_key_select(plan, side_b, 'b')} FROM B))"
    ).fetchall()[0]
    if not any(excess):
        return False
    con.execute(
        f"""CREATE TEMP TABLE dups AS
        SELECT {keys} FROM (SELECT {_key_select(plan, side_a, "a")} FROM A) GROUP BY ALL HAVING count(*) > 1
        UNION SELECT {keys} FROM (SELECT {_key_select(plan, side_b, "b")} FROM B) GROUP BY ALL HAVING count(*) > 1"""
    )
    return bool(con.execute("SELECT count(*) FROM dups").fetchall()[0][0])


def _trouble(exc: duckdb.Error, inputs: str) -> CompareError:
    """DuckDB's message without its multi-line advice: the CLI prints one line. Its messages about
    undecodable data (a corrupt page) name no file, so the line names the inputs."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.OutOfMemoryException):
        return CompareError(f"DuckDB: {first} (raise `memory_limit` or free disk for `temp_dir`)")
    return CompareError(f"DuckDB: {first} (reading {inputs})")


def _inputs(side_a: Side, side_b: Side) -> str:
    return f"A {side_a.path} and B {side_b.path}"


def _batches(reader: Iterable[pa.RecordBatch], inputs: str, names: list[str] | None) -> Iterator[pa.RecordBatch]:
    """The batches, under the plan's names when they come from build_sql's internal ones."""
    try:
        for batch in reader:
            yield batch if names is None else pa.RecordBatch.from_arrays(batch.columns, names=names)
    except duckdb.Error as exc:
        raise _trouble(exc, inputs) from exc


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def load_budget(memory_limit: str) -> int:
    """Bytes one side may take when loaded whole for the positional path: half of --memory-limit (the
    other half is DuckDB's and the other side's stream). An unreadable limit allows 1 GB."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", memory_limit)
    if not match or match.group(2).lower() not in _UNITS:
        return 10**9
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()] / 2)


def _positional(
    con: duckdb.DuckDBPyConnection, plan: Plan, side_a: Side, side_b: Side, options: CompareOptions
) -> positional.Scans | None:
    """The scans of the positional path and its layout, or None for the SQL path (see positional.py).

    Key statistics that show both sides out of order rule it out before anything is read. The wide
    columns start decoding while the keys are checked: both sides in file order when the statistics show
    both in order, or the side they show out of order loaded whole (the longest step: the merge waits for
    it) beside the other in file order."""
    key = plan.keys[0]
    orders = (positional.stats_order(side_a, key.name), positional.stats_order(side_b, key.b_name))
    if orders == (False, False):
        return None
    budget = load_budget(options.memory_limit)
    whole = {"a": orders[0] is False, "b": orders[1] is False}
    for label, side in (("a", side_a), ("b", side_b)):
        if whole[label] and positional.load_bytes(plan, side, label) > budget:
            return None
    con.execute("SET preserve_insertion_order = true")
    # Both sides in file order: one thread a scan, two scans fill two cores (an ordered scan on several
    # threads would buffer whatever its threads decode ahead of the order). A side loaded whole has the
    # merge waiting for it: every core.
    con.execute(f"SET threads = {int(options.threads) if any(whole.values()) else 1}")
    early: positional.Scans | None = None
    if None not in orders:
        early = positional.Scans(
            con, plan, side_a, side_b, *(positional.Order() if whole[label] else None for label in ("a", "b"))
        )
    try:
        found = positional.layout(con, plan, side_a, side_b, budget)
    except BaseException:
        if early is not None:
            early.close()
        raise
    if early is not None and (found is None or not early.take(found)):
        early.close()
        early = None
    if found is None:
        con.execute("SET preserve_insertion_order = false")  # the SQL path's join needs no order
        con.execute(f"SET threads = {int(options.threads)}")
        return None
    if early is not None:
        return early
    if found.order_a is not None or found.order_b is not None:
        con.execute(f"SET threads = {int(options.threads)}")
    given = (None if rows is None else positional.Order(rows) for rows in (found.order_a, found.order_b))
    scans = positional.Scans(con, plan, side_a, side_b, *given)
    scans.layout = found
    return scans


@contextlib.contextmanager
def stream(
    plan: Plan, side_a: Side, side_b: Side, options: CompareOptions, scratch: Path
) -> Iterator[Iterable[pa.RecordBatch]]:
    """The differing rows, in no particular order: sorting wide rows costs more than the join itself."""
    # One Parquet scan job read ahead of decoding, not DuckDB's automatic backlog: the compare decodes as fast as
    # it reads, and each job held ahead is a row group's column chunks in fresh pages. 1M rows (interleaved, three
    # runs each): peak 1.18 -> 1.08 GB one side shuffled, 0.80 -> 0.67 GB foreign files in key order, 0.89 ->
    # 0.76 GB snapshot shape, time within noise; a bare scan read from a cold page cache was faster (2.9 -> 2.2 s).
    con = duckdb.connect(config={"threads": options.threads, "preserve_insertion_order": False, "read_ahead_depth": 1})
    scans: positional.Scans | None = None
    try:
        con.execute("SET enable_progress_bar = false")  # printed on stdout past 2 s: it would corrupt --format json
        con.execute(f"SET temp_directory = {lit(str(options.temp_dir or scratch / 'duckdb.tmp'))}")
        con.execute(f"SET memory_limit = {lit(options.memory_limit)}")
        scans = _positional(con, plan, side_a, side_b, options) if positional.applies(plan) else None
        names: list[str] | None = None
        if scans is not None and scans.layout is not None:
            keys = (scans.layout.keys_a, scans.layout.keys_b)
            found: Iterable[pa.RecordBatch] = positional.stream(plan, *keys, scans, options.max_diffs)
        else:
            for name, side in (("A", side_a), ("B", side_b)):  # what the join's SQL reads
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source(side)}")
            has_dups = _find_duplicates(con, plan, side_a, side_b)
            sql = build_sql(plan, side_a, side_b, has_dups, options.max_diffs)
            found, names = con.sql(sql).to_arrow_reader(BATCH_ROWS), public_names(plan)
    except duckdb.Error as exc:
        if scans is not None:
            scans.close()
        con.close()
        raise _trouble(exc, _inputs(side_a, side_b)) from exc
    try:
        batches = _batches(found, _inputs(side_a, side_b), names)
        yield batches if scans is None or scans.layout is None else Concurrent(batches)
    finally:
        if scans is not None:
            scans.close()
        con.close()
