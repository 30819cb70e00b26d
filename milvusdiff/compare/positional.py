"""The fast path of the default engine for inputs sorted by key: no wide join at all.

When both sides hold a single integer key, non-null and strictly ascending in file order (Milvus
exports come out in key order), the matched rows form a merge: the key columns alone are read
(through DuckDB) and merged with numpy, which classifies every key and yields the matched
(row in A, row in B) pairs, both ascending. A second pass then streams the wide columns of both
files in order (DuckDB scans, one connection per side, decoded in background threads) and compares
them positionally with numpy: vectors as (n, dim) views of the fixed-size-list buffers, bit equality
first and the comparator's rule (comparator.py) only on rows whose bits differ. Nothing wide is
hashed, joined or copied but the differing rows.

It emits the same intermediate table as the SQL path (key, class, count_a, count_b, one mismatch
flag per column, values where flagged), every flag decided by the comparator (JSON flagged on differing
text, which the finishing pass parses). Inputs it
does not fit (unsorted, duplicate or null keys, composite or non-integer keys, nested column types
other than numeric vectors) take the SQL path.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pyarrow as pa

from milvusdiff.compare import comparator
from milvusdiff.compare.duck import ref, source
from milvusdiff.compare.inputs import Side
from milvusdiff.compare.pipeline import Prefetch
from milvusdiff.compare.plan import Column, Kind, Plan, a_col, b_col, flag_col

BATCH_ROWS = 65536


def _is_vector(arrow_type: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(arrow_type) and (
        pa.types.is_floating(arrow_type.value_type) or pa.types.is_integer(arrow_type.value_type)
    )


def _is_flat(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
        or pa.types.is_timestamp(arrow_type)
        or pa.types.is_date(arrow_type)
    )


def _fits(column: Column) -> bool:
    ta, tb = column.type_a, column.type_b
    if column.kind is Kind.FLOAT:
        return _is_flat(ta) and _is_flat(tb)
    if column.kind is Kind.JSON:
        return pa.types.is_string(ta) and pa.types.is_string(tb)
    if column.kind is Kind.FLOAT_LIST:
        return _is_vector(ta) and ta.equals(tb)
    if column.kind is Kind.EXACT:
        both_int = all(pa.types.is_signed_integer(t) or t.bit_width < 64 for t in (ta, tb) if pa.types.is_integer(t))
        both_int = both_int and pa.types.is_integer(ta) and pa.types.is_integer(tb)
        return _is_flat(ta) and _is_flat(tb) and (ta.equals(tb) or both_int)
    return False


def applies(plan: Plan) -> bool:
    return len(plan.keys) == 1 and pa.types.is_integer(plan.keys[0].arrow_type) and all(_fits(c) for c in plan.columns)


def sorted_keys(con: duckdb.DuckDBPyConnection, side: Side, name: str) -> np.ndarray | None:
    """The key column in file order as int64, or None unless non-null and strictly ascending."""
    table = con.sql(f"SELECT CAST({ref(side, name)} AS BIGINT) AS k FROM {source(side)}").fetch_arrow_table()
    keys = table.column(0)
    if keys.null_count:
        return None
    values = np.asarray(keys.to_numpy())
    if values.size > 1 and not bool((values[1:] > values[:-1]).all()):
        return None
    return values


def _select(plan: Plan, side: Side, label: str) -> str:
    parts = []
    for j, c in enumerate(plan.columns):
        name, arrow_type = (c.name, c.type_a) if label == "a" else (c.b_name, c.type_b)
        sql = ref(side, name)
        if _is_vector(arrow_type):
            element = {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}
            value_type = arrow_type.value_type
            if pa.types.is_floating(value_type):
                sql_type = "FLOAT" if value_type.bit_width == 32 else "DOUBLE"
            else:
                sql_type = ("U" if pa.types.is_unsigned_integer(value_type) else "") + element[value_type.bit_width]
            sql = f"CAST({sql} AS {sql_type}[{arrow_type.list_size}])"
        parts.append(f'{sql} AS "v{j}"')
    return ", ".join(parts) if parts else "1 AS __none"


def _scan(plan: Plan, side: Side, label: str, threads: int) -> Iterator[pa.RecordBatch]:
    """The compared columns of one side, in file order, as record batches (own connection)."""
    con = duckdb.connect(config={"threads": threads, "preserve_insertion_order": True})
    try:
        reader = con.sql(f"SELECT {_select(plan, side, label)} FROM {source(side)}").to_arrow_reader(BATCH_ROWS)
        yield from reader
    finally:
        con.close()


class _Window:
    """Consecutive record batches of one side, addressed by global row number."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self.batches = batches
        self.held: list[tuple[int, pa.RecordBatch]] = []
        self.end = 0

    def cover(self, last: int) -> None:
        while self.end <= last:
            batch = next(self.batches)
            self.held.append((self.end, batch))
            self.end += batch.num_rows

    def drop_before(self, first: int) -> None:
        while self.held and self.held[0][0] + self.held[0][1].num_rows <= first:
            self.held.pop(0)

    def take(self, column: int, rows: np.ndarray) -> pa.Array:
        """Rows (ascending global numbers, all held) of one column."""
        parts = []
        for start, batch in self.held:
            lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
            if hi > lo:
                local = rows[lo:hi] - start
                array = batch.column(column)
                if local[-1] - local[0] == hi - lo - 1:
                    parts.append(array.slice(int(local[0]), int(hi - lo)))
                else:
                    parts.append(array.take(pa.array(local)))
        if len(parts) == 1:
            return parts[0]
        return pa.concat_arrays(parts)

    def matrices(self, column: int) -> list[tuple[int, np.ndarray]] | None:
        """(first row, numpy view) of each held batch's column, or None if any has nulls or is not numeric."""
        views = []
        for start, batch in self.held:
            numbers = _numbers(batch.column(column))
            if numbers is None:
                return None
            views.append((start, numbers))
        return views

    def gather(self, column: int, rows: np.ndarray) -> np.ndarray | None:
        """Rows of one column as numpy (vectors as (n, dim) matrices), or None where it has nulls or is not numeric.
        Only the numpy gather copies: the batches' buffers are viewed, not converted."""
        parts = []
        for start, batch in self.held:
            lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
            if hi > lo:
                numbers = _numbers(batch.column(column))
                if numbers is None:
                    return None
                parts.append(numbers[rows[lo:hi] - start])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _numbers(array: pa.Array) -> np.ndarray | None:
    if array.null_count:
        return None
    if _is_vector(array.type):
        return None if array.values.null_count else _matrix(array)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        return np.asarray(array.to_numpy(zero_copy_only=True))
    return None


def _matrix(array: pa.FixedSizeListArray) -> np.ndarray:
    dim = array.type.list_size
    values = array.values.slice(array.offset * dim, len(array) * dim)
    return np.asarray(values.to_numpy(zero_copy_only=False)).reshape(len(array), dim)


_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _numpy_differs(column: Column, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The comparator's rule for null-free numpy columns (vectors as matrices)."""
    if x.ndim == 2:
        return ~comparator.vectors_equal(x, y, column.tolerance)
    if column.kind is Kind.FLOAT:
        return ~comparator.floats_equal(x, y, column.tolerance)
    return np.asarray(x != y)


_MAX_RUNS_SHARE = 32  # compare run by run while runs average at least this many rows, else gather


def _runs_differ(
    views_a: list[tuple[int, np.ndarray]], rows_a: np.ndarray, views_b: list[tuple[int, np.ndarray]], rows_b: np.ndarray
) -> np.ndarray | None:
    """Vectors compared in place, run by run where both sides advance together: no gathered copies, whose
    fresh pages cost more than the comparison. None when the runs are too short for that to pay."""
    cuts = [np.flatnonzero((np.diff(rows_a) != 1) | (np.diff(rows_b) != 1)) + 1]
    for views, rows in ((views_a, rows_a), (views_b, rows_b)):
        cuts.append(np.searchsorted(rows, [start for start, _ in views[1:]]))
    bounds = np.unique(np.concatenate([[0, len(rows_a)], *cuts]))
    if (len(bounds) - 1) * _MAX_RUNS_SHARE > len(rows_a):
        return None
    differs = np.empty(len(rows_a), dtype=bool)
    unsigned = _UINT[views_a[0][1].dtype.itemsize]
    which_a = np.searchsorted([start for start, _ in views_a], rows_a[bounds[:-1]], side="right") - 1
    which_b = np.searchsorted([start for start, _ in views_b], rows_b[bounds[:-1]], side="right") - 1
    for run, (lo, hi) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
        start_a, x = views_a[which_a[run]]
        start_b, y = views_b[which_b[run]]
        first_a, first_b = int(rows_a[lo]) - start_a, int(rows_b[lo]) - start_b
        xs, ys = x[first_a : first_a + hi - lo], y[first_b : first_b + hi - lo]
        differs[lo:hi] = (xs.view(unsigned) != ys.view(unsigned)).any(axis=1)
    return differs


def _normalise(array: pa.Array, target: pa.DataType) -> pa.Array:
    """DuckDB's Arrow types to the inputs' (vectors keep DuckDB's child name: the finisher casts them)."""
    if array.type.equals(target):
        return array
    if _is_vector(target) and array.type.value_type.equals(target.value_type):
        return array.view(target)  # DuckDB names the child field differently: same layout
    return array.cast(target)


class _Merge:
    def __init__(self, plan: Plan, keys_a: np.ndarray, keys_b: np.ndarray) -> None:
        self.plan = plan
        self.keys_a, self.keys_b = keys_a, keys_b
        pos = np.searchsorted(keys_b, keys_a)
        found = pos < len(keys_b)
        found[found] = keys_b[pos[found]] == keys_a[found]
        self.rows_a = np.flatnonzero(found)
        self.rows_b = pos[found]
        self.matched_a = found
        self.matched_b = np.zeros(len(keys_b), dtype=bool)
        self.matched_b[self.rows_b] = True
        self.key_type = plan.keys[0].arrow_type

    def _key(self, values: np.ndarray) -> pa.Array:
        return pa.array(values).cast(self.key_type)

    def changed(self, window_a: _Window, window_b: _Window, lo: int, hi: int) -> pa.RecordBatch | None:
        rows_a, rows_b = self.rows_a[lo:hi], self.rows_b[lo:hi]
        window_a.cover(int(rows_a[-1]))
        window_b.cover(int(rows_b[-1]))
        window_b.drop_before(int(rows_b[0]))
        columns = self.plan.columns
        flags = np.zeros((len(rows_a), len(columns)), dtype=bool)
        for i, column in enumerate(columns):
            if column.kind is Kind.FLOAT_LIST:
                views_a, views_b = window_a.matrices(i), window_b.matrices(i)
                if views_a and views_b and views_a[0][1].dtype == views_b[0][1].dtype:
                    runs = _runs_differ(views_a, rows_a, views_b, rows_b)
                    if runs is not None:
                        if runs.any():
                            found = np.flatnonzero(runs)
                            xs, ys = window_a.gather(i, rows_a[found]), window_b.gather(i, rows_b[found])
                            assert xs is not None and ys is not None
                            runs[found] = ~comparator.vectors_equal(xs, ys, column.tolerance)
                        flags[:, i] = runs
                        continue
            x, y = window_a.gather(i, rows_a), window_b.gather(i, rows_b)
            if x is not None and y is not None and (x.ndim == 1 or x.dtype == y.dtype):
                flags[:, i] = _numpy_differs(column, x, y)
            else:
                a = _normalise(window_a.take(i, rows_a), column.type_a)
                b = _normalise(window_b.take(i, rows_b), column.type_b)
                flags[:, i] = comparator.differs(column.kind, a, b, column.tolerance)
        keep = np.flatnonzero(flags.any(axis=1))
        if not keep.size:
            return None
        n = len(keep)
        arrays: dict[str, pa.Array] = {
            self.plan.key_names[0]: self._key(self.keys_a[rows_a[keep]]),
            "class": pa.array(["changed"] * n, pa.string()),
            "count_a": pa.array(np.ones(n, dtype=np.int64)),
            "count_b": pa.array(np.ones(n, dtype=np.int64)),
        }
        for i, column in enumerate(columns):
            flag = flags[keep, i]
            arrays[flag_col(column.name)] = pa.array(flag)
            pick = pa.array(np.arange(n), mask=~flag)  # a null index takes a null: values only where flagged
            for window, rows, name, target in (
                (window_a, rows_a, a_col(column.name), column.type_a),
                (window_b, rows_b, b_col(column.name), column.type_b),
            ):
                arrays[name] = _normalise(window.take(i, rows[keep]), target).take(pick)
        return pa.RecordBatch.from_pydict(arrays)

    def only(self, label: str) -> Iterator[pa.RecordBatch]:
        keys = self.keys_a[~self.matched_a] if label == "a" else self.keys_b[~self.matched_b]
        for start in range(0, len(keys), BATCH_ROWS):
            part = keys[start : start + BATCH_ROWS]
            n = len(part)
            arrays: dict[str, pa.Array] = {
                self.plan.key_names[0]: self._key(part),
                "class": pa.array([f"only_{label}"] * n, pa.string()),
                "count_a": pa.array(np.full(n, int(label == "a"), dtype=np.int64)),
                "count_b": pa.array(np.full(n, int(label == "b"), dtype=np.int64)),
            }
            for column in self.plan.columns:
                arrays[flag_col(column.name)] = pa.nulls(n, pa.bool_())
                arrays[a_col(column.name)] = pa.nulls(n, column.type_a)
                arrays[b_col(column.name)] = pa.nulls(n, column.type_b)
            yield pa.RecordBatch.from_pydict(arrays)


class Scans:
    """Both sides' compared columns, decoded in background threads from the moment this is made (while
    the keys are read), one single-threaded DuckDB connection each: two scans fill two cores."""

    def __init__(self, plan: Plan, side_a: Side, side_b: Side) -> None:
        self.a = Prefetch(_scan(plan, side_a, "a", 1), depth=2)
        self.b = Prefetch(_scan(plan, side_b, "b", 1), depth=2)

    def close(self) -> None:
        self.a.close()
        self.b.close()


def _changed_batches(merge: _Merge, scans: Scans) -> Iterator[pa.RecordBatch]:
    if not len(merge.rows_a) or not merge.plan.columns:
        return
    window_a, window_b = _Window(scans.a), _Window(scans.b)
    start = 0
    for batch in scans.a:
        window_a.held, window_a.end = [(start, batch)], start + batch.num_rows
        lo, hi = np.searchsorted(merge.rows_a, [start, window_a.end])
        start = window_a.end
        if hi > lo:
            found = merge.changed(window_a, window_b, int(lo), int(hi))
            if found is not None:
                yield found


def stream(
    plan: Plan, keys_a: np.ndarray, keys_b: np.ndarray, scans: Scans, limit: int | None
) -> Iterator[pa.RecordBatch]:
    """The differing rows: changed ones in key order, then only_a, then only_b. Closes `scans`."""
    try:
        merge = _Merge(plan, keys_a, keys_b)
        left = limit
        for source in (_changed_batches(merge, scans), merge.only("a"), merge.only("b")):
            for batch in source:
                if left is not None:
                    batch = batch.slice(0, left)
                    left -= batch.num_rows
                if batch.num_rows:
                    yield batch
                if left == 0:
                    return
    finally:
        scans.close()
