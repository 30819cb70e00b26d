"""The fast path of the default engine for inputs sorted by key: no wide join at all.

When both sides hold a single integer key, non-null and strictly ascending in file order (Milvus
exports come out in key order), the matched rows form a merge: the key columns alone are read
(through DuckDB) and merged with numpy, which classifies every key and yields the matched
(row in A, row in B) pairs, both ascending. A second pass then streams the wide columns of both
files in order (DuckDB scans, one connection per side, decoded in background threads; float vectors
straight from their Parquet pages, see vector_pages.py) and compares them positionally with numpy:
vectors as (n, dim) views of the fixed-size-list buffers, bit equality first and the comparator's
rule (comparator.py) only on rows whose bits differ. Nothing wide is hashed or joined, and nothing
copied but the differing rows. One side may be in any order (a sorted Milvus export against a
foreign file): it is loaded whole and put in key order, its vectors placed at their key's rank as
they load.

It emits the same intermediate table as the SQL path (key, class, count_a, count_b, one mismatch
flag per column, values where flagged), every flag decided by the comparator (JSON flagged on differing
text, which the finishing pass parses). Inputs it
does not fit (unsorted, duplicate or null keys, composite or non-integer keys, nested column types
other than numeric vectors) take the SQL path.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import TypeAlias

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.compare import comparator, vector_pages
from milvusdiff.compare.duck import ref, source
from milvusdiff.compare.inputs import Side
from milvusdiff.compare.pipeline import Prefetch
from milvusdiff.compare.plan import Column, Kind, Plan, a_col, b_col, flag_col

BATCH_ROWS = 65536
BATCH_VECTOR_BYTES = 16 << 20
# Parts of vector pages decoded ahead of the batch that needs them (vector_pages.PART_BYTES each): a batch
# spans 16 of them, and with fewer the decoding thread idled while the batch before was placed or compared.
PARTS_AHEAD = 32
AWAITED_LOAD_BYTES = 64 << 20  # a smaller side loaded whole loads in well under a second (see Scans)


def batch_rows(plan: Plan) -> int:
    """Rows per scanned batch: fewer for wide vectors, so that a batch holds about BATCH_VECTOR_BYTES of
    them. Every batch in flight (decoded ahead, held by the merge window, put in key order, finished) is
    alive on top of a side loaded whole: at 65536 rows x 128 dims they made a fifth of the peak (1M rows,
    one side shuffled: 1.58 -> 1.29 GB at 32768 rows, for about 5% more time; 16384 rows saved 80 MB more
    for 15%). Below 32 MiB a vector buffer also comes back from the C allocator's free memory: at or above
    it glibc maps fresh pages for every batch and unmaps them on release, and faulting them in cost a
    third of the CPU time of two sorted 1M-row sides (65536 -> 32768 rows: 545k -> 360k page faults,
    1.98 -> 1.70 s, 1.05 -> 0.93 GB)."""
    width = sum(c.type_a.list_size * c.type_a.value_type.bit_width // 8 for c in plan.columns if _is_vector(c.type_a))
    return min(BATCH_ROWS, max(4096, BATCH_VECTOR_BYTES // width)) if width else BATCH_ROWS


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
    """Whether the positional path may apply: a single integer key and columns it handles."""
    return len(plan.keys) == 1 and pa.types.is_integer(plan.keys[0].arrow_type) and all(_fits(c) for c in plan.columns)


def stats_order(side: Side, name: str) -> bool | None:
    """What the Parquet row-group statistics of the key column say about its order in file order: False
    when two row groups overlap or go backwards (certainly not ascending: the SQL path, with nothing read),
    True when each group's range starts after the previous one's (likely; layout() still checks the rows
    inside each group), None when a group has no statistics or there is only one group (its range says
    nothing about the order inside it: a guess there cost a cancelled scan). Footers only: milliseconds."""
    previous: object = None
    groups = 0
    for file in side.files:
        meta = pq.ParquetFile(file).metadata
        leaves = [j for j in range(meta.num_columns) if meta.schema.column(j).path == name]
        if len(leaves) != 1:
            return None
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(leaves[0]).statistics
            if meta.row_group(group).num_rows == 0:
                continue
            if stats is None or not stats.has_min_max or stats.null_count:
                return None
            if previous is not None and not stats.min > previous:
                return False
            previous = stats.max
            groups += 1
    return True if groups > 1 else None


def read_keys(con: duckdb.DuckDBPyConnection, side: Side, name: str) -> np.ndarray | None:
    """The key column in file order as int64, or None when it holds nulls."""
    table = con.sql(f"SELECT CAST({ref(side, name)} AS BIGINT) AS k FROM {source(side)}").fetch_arrow_table()
    keys = table.column(0)
    if keys.null_count:
        return None
    return np.asarray(keys.to_numpy())


def _ascending(keys: np.ndarray) -> bool:
    return keys.size < 2 or bool((keys[1:] > keys[:-1]).all())


def load_bytes(plan: Plan, side: Side, label: str) -> int:
    """Decoded size of a side's compared columns, from the Parquet footers (uncompressed page sizes)."""
    wanted = {c.on(label)[0] for c in plan.columns}
    total = 0
    for file in side.files:
        meta = pq.ParquetFile(file).metadata
        paths = [meta.schema.column(j).path for j in range(meta.num_columns)]
        # A leaf belongs to a column when its path is the name or starts with it (nested), which may count a
        # few bytes too many for names with dots: the estimate errs towards the SQL path.
        leaves = [j for j, path in enumerate(paths) if any(path == n or path.startswith(n + ".") for n in wanted)]
        for group in range(meta.num_row_groups):
            total += sum(meta.row_group(group).column(j).total_uncompressed_size for j in leaves)
    return total


@dataclass(frozen=True)
class Layout:
    """Both sides' keys in the order their rows are scanned (strictly ascending), and for a side whose file
    is not in key order, the permutation that puts it in key order (that side is then loaded whole)."""

    keys_a: np.ndarray
    keys_b: np.ndarray
    order_a: np.ndarray | None = None
    order_b: np.ndarray | None = None


def layout(con: duckdb.DuckDBPyConnection, plan: Plan, side_a: Side, side_b: Side, budget: int) -> Layout | None:
    """The positional layout of two inputs, or None when the SQL path must take them: null or duplicate
    keys, both sides out of key order, or the one out of order too big to hold (`budget` bytes decoded).

    One side in any order is enough: its compared columns are loaded whole and put in key order, so the
    merge never joins wide rows (a sorted Milvus export against a shuffled foreign file)."""
    key = plan.keys[0]
    keys = {"a": read_keys(con, side_a, key.name), "b": read_keys(con, side_b, key.b_name)}
    orders: dict[str, np.ndarray | None] = {"a": None, "b": None}
    unsorted = [label for label, k in keys.items() if k is None or not _ascending(k)]
    if len(unsorted) > 1 or any(k is None for k in keys.values()):
        return None
    for label in unsorted:
        side = side_a if label == "a" else side_b
        if load_bytes(plan, side, label) > budget:
            return None
        values = keys[label]
        assert values is not None
        order = np.argsort(values)  # unstable is 3x faster: equal keys send the inputs to the SQL path anyway
        if not _ascending(values[order]):  # duplicate keys: the SQL path counts them
            return None
        keys[label], orders[label] = values[order], order
    keys_a, keys_b = keys["a"], keys["b"]
    assert keys_a is not None and keys_b is not None
    return Layout(keys_a, keys_b, orders["a"], orders["b"])


def _select(plan: Plan, side: Side, label: str, direct: Container[int]) -> str:
    parts = []
    for j, c in enumerate(plan.columns):
        if j in direct:
            continue
        name, arrow_type = c.on(label)
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


class _Columns:
    """The compared columns of one side in file order, as record batches of `rows` rows (fields v0, v1,
    ...). Float vectors are decoded from their pages (vector_pages.py), each in a thread of its own; the
    rest comes from DuckDB on `con`, a cursor of the engine's database (a new database costs about 80 ms,
    a cursor nothing), which keeps preserve_insertion_order on for this path."""

    def __init__(self, con: duckdb.DuckDBPyConnection, plan: Plan, side: Side, label: str, rows: int) -> None:
        columns = [c.on(label) for c in plan.columns]  # (name, type) in this input
        direct = [j for j, (name, type_) in enumerate(columns) if vector_pages.readable(side.files, name, type_)]
        con.execute("SET enable_progress_bar = false")  # printed on stdout past 2 s: it would corrupt --format json
        self.reader = con.sql(f"SELECT {_select(plan, side, label, direct)} FROM {source(side)}").to_arrow_reader(rows)
        self.pages = {
            j: Prefetch(vector_pages.VectorPages(side.files, *columns[j], label), depth=PARTS_AHEAD) for j in direct
        }
        self.vectors = {j: vector_pages.VectorRows(pages, columns[j][1]) for j, pages in self.pages.items()}
        fields = {name: self.reader.schema.field(name) for name in self.reader.schema.names}
        self.schema = pa.schema([fields.get(f"v{j}") or pa.field(f"v{j}", t) for j, (_, t) in enumerate(columns)])

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self.reader:
            arrays = [
                self.vectors[j].take(batch.num_rows) if j in self.vectors else batch.column(field.name)
                for j, field in enumerate(self.schema)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def close(self) -> None:
        for pages in self.pages.values():
            pages.close()


def _scan(
    con: duckdb.DuckDBPyConnection, plan: Plan, side: Side, label: str, after: Order | None
) -> Iterator[pa.RecordBatch]:
    """The compared columns of one side, in file order, as record batches, once the other side is loaded
    whole if it is (closes `con`). Then on one thread: the merge keeps the other core busy, and a scan on
    two threads only decoded ahead of it, holding more memory (1M rows: 1.48 -> 1.30 GB peak)."""
    columns: _Columns | None = None
    try:
        if after is not None:
            if not after.wait_loaded():
                return  # cancelled: the positional path does not run
            con.execute("SET threads = 1")  # the database's setting; the load, its other query, has ended
        columns = _Columns(con, plan, side, label, batch_rows(plan))
        yield from columns
    finally:
        if columns is not None:
            columns.close()
        con.close()


class _Placed:
    """One column of a side loaded whole, put in key order. Null-free vectors are placed at their rows'
    ranks in one matrix as their batch arrives (held as views of DuckDB's batches, their gather in key
    order cost fresh pages and a fifth of the CPU; the batch is released once placed); anything else is
    copied out of its batch (a view would keep the batch alive, its vectors included) and taken in key
    order at the end."""

    def __init__(self, arrow_type: pa.DataType) -> None:
        self.type = arrow_type
        self.matrix: np.ndarray | None = None
        self.placed = _is_matrix(arrow_type)  # False: held as Arrow parts in file order
        self.parts: list[pa.Array] = []
        self.filled = 0

    def add(self, array: pa.Array, ranks: np.ndarray) -> None:
        """Hold one batch's array; `ranks` are the key ranks of every row of the side in file order."""
        if self.placed and (array.null_count or array.values.null_count):
            self._unplace(ranks)  # a null vector: hold this column as Arrow from here on
        if self.placed:
            if self.matrix is None:
                self.matrix = _fresh((len(ranks), self.type.list_size), _DTYPES[self.type.value_type])
            whole = np.dtype((np.void, self.matrix.shape[1] * self.matrix.itemsize))
            target = self.matrix.view(whole).reshape(-1)
            target[ranks[self.filled : self.filled + len(array)]] = _matrix(array).view(whole).reshape(-1)
        else:
            self.parts.append(pa.concat_arrays([array]))
        self.filled += len(array)

    def _unplace(self, ranks: np.ndarray) -> None:
        """The rows placed so far, back in file order as one Arrow array."""
        if self.matrix is not None:
            held = self.matrix[ranks[: self.filled]]
            self.parts = [pa.FixedSizeListArray.from_arrays(pa.array(held.reshape(-1)), type=self.type)]
        self.matrix, self.placed = None, False

    def finish(self) -> None:
        if not self.placed:
            self.parts = [pa.concat_arrays(self.parts) if self.parts else pa.array([], self.type)]

    def in_key_order(self, order: np.ndarray, lo: int, hi: int) -> pa.Array:
        """Rows of key ranks lo..hi: a view of the matrix, or taken from the Arrow array."""
        if not self.placed:
            return self.parts[0].take(pa.array(order[lo:hi]))
        if self.matrix is None:
            return pa.array([], self.type)
        flat = pa.array(self.matrix[lo:hi].reshape(-1), self.type.value_type)  # numpy's buffer, not a copy
        return pa.FixedSizeListArray.from_arrays(flat, type=self.type)


_DTYPES: dict[pa.DataType, type[np.generic]] = {
    pa.float32(): np.float32,
    pa.float64(): np.float64,
    pa.int8(): np.int8,
    pa.int16(): np.int16,
}


def _fresh(shape: tuple[int, int], dtype: type[np.generic]) -> np.ndarray:
    """An uninitialised array in plain pages of its own mapping. numpy's allocator advises huge pages for
    large arrays, and where the kernel compacts memory to find them (transparent_hugepage defrag "madvise",
    a common default) filling a 1M x 128 float32 matrix stalled for a second: 2.4 s of system time per
    compare instead of 1.1."""
    size = shape[0] * shape[1] * np.dtype(dtype).itemsize
    if not size or not hasattr(mmap, "MAP_ANONYMOUS"):  # not Linux or macOS: numpy's allocator
        return np.empty(shape, dtype)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    return np.frombuffer(mmap.mmap(-1, size, flags=flags), dtype).reshape(shape)


def _is_matrix(arrow_type: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(arrow_type) and arrow_type.value_type in _DTYPES


class Order:
    """The row order a side loaded whole is put in, known only once both sides' keys are read: the
    load starts before (it is the longest step) and waits here for it, or for cancel() when the keys rule
    the positional path out. The other side's scan waits for the load to end (`loaded`): started with it,
    it only buffered decoded rows nobody could consume yet, and competed with the load for the cores (a
    load under AWAITED_LOAD_BYTES is not waited for: there both scans together end sooner)."""

    def __init__(self, rows: np.ndarray | None = None) -> None:
        self._rows = rows
        self._known = threading.Event()
        self._loaded = threading.Event()
        self._cancelled = False
        if rows is not None:
            self._known.set()

    def give(self, rows: np.ndarray) -> None:
        self._rows = rows
        self._known.set()

    def cancel(self) -> None:
        self._cancelled = True
        self._known.set()
        self._loaded.set()

    def known(self) -> bool:
        return self._known.is_set()

    def wait(self) -> np.ndarray | None:
        self._known.wait()
        return None if self._cancelled else self._rows

    def load_ended(self) -> None:
        self._loaded.set()

    def wait_loaded(self) -> bool:
        """False when cancelled: the scan waiting for it has nothing to do."""
        self._loaded.wait()
        return not self._cancelled


def _reordered(
    con: duckdb.DuckDBPyConnection, plan: Plan, side: Side, label: str, order: Order
) -> Iterator[pa.RecordBatch]:
    """The compared columns of one side in the key order `order`, batch by batch: the side is read whole
    (bounded by layout()'s budget) and its vectors placed in key order as they arrive; batches that arrive
    before the order is known (the keys are read meanwhile) wait for it. Nothing when the order is
    cancelled (closes `con`)."""
    reader: _Columns | None = None
    try:
        reader = _Columns(con, plan, side, label, batch_rows(plan))
        schema = reader.schema
        columns = [_Placed(field.type) for field in schema]
        waiting: list[pa.RecordBatch] = []
        ranks: np.ndarray | None = None
        for batch in reader:
            waiting.append(batch)
            if ranks is None and order.known():
                known = order.wait()
                if known is None:
                    return  # cancelled
                ranks = _ranks(known)
            if ranks is not None:
                _place(columns, waiting, ranks)
    finally:
        if reader is not None:
            reader.close()
        con.close()
        order.load_ended()
    rows_order = order.wait()
    if rows_order is None:
        return
    _place(columns, waiting, _ranks(rows_order) if ranks is None else ranks)
    for column in columns:
        column.finish()
    rows = batch_rows(plan)
    for lo in range(0, len(rows_order), rows):
        hi = min(lo + rows, len(rows_order))
        yield pa.RecordBatch.from_arrays([c.in_key_order(rows_order, lo, hi) for c in columns], schema=schema)


def _place(columns: list[_Placed], batches: list[pa.RecordBatch], ranks: np.ndarray) -> None:
    """Hand each batch's columns to their holders, in file order, and let the batches go."""
    for batch in batches:
        for column, array in zip(columns, batch.columns, strict=True):
            column.add(array, ranks)
    batches.clear()


def _ranks(order: np.ndarray) -> np.ndarray:
    """Each row's rank in key order, from the rows in key order."""
    ranks = np.empty_like(order)
    ranks[order] = np.arange(len(order))
    return ranks


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


Values: TypeAlias = np.ndarray | pa.Array  # one side's values of one column at the merged rows, as compared


def _flagged(values: Values, keep: np.ndarray, target: pa.DataType, flag: np.ndarray) -> pa.Array:
    """The `keep` rows of one side's values (as compared: numpy or Arrow), null where `flag` is not set.
    Masking numpy before it becomes Arrow, or one take with null indices, instead of a take of the rows
    and a second one for the mask: on fixed-size lists those takes cost more than the merge."""
    if isinstance(values, pa.Array):
        return values.take(pa.array(keep, mask=~flag))  # a null index takes a null
    chosen = values[keep]
    if chosen.ndim == 2:
        flat = pa.array(chosen.reshape(-1))
        return _normalise(pa.FixedSizeListArray.from_arrays(flat, chosen.shape[1], mask=pa.array(~flag)), target)
    return _normalise(pa.array(chosen, mask=~flag), target)


def _flagged_values(window: _Window, column: int, rows: np.ndarray, target: pa.DataType, flag: np.ndarray) -> pa.Array:
    """As _flagged, for a column whose values were not taken whole (vectors compared run by run in place)."""
    values = window.gather(column, rows) if _is_vector(target) else None
    if values is None:
        values = _normalise(window.take(column, rows), target)
    return _flagged(values, np.arange(len(rows)), target, flag)


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
        aligned: dict[int, tuple[Values, Values]] = {}  # both sides' values at rows_a/rows_b, where they were taken
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
                aligned[i] = (x, y)
            else:
                a = _normalise(window_a.take(i, rows_a), column.type_a)
                b = _normalise(window_b.take(i, rows_b), column.type_b)
                # JSON is flagged on differing text here and parsed once, by the finishing pass.
                kind = Kind.EXACT if column.kind is Kind.JSON else column.kind
                flags[:, i] = comparator.differs(kind, a, b, column.tolerance)
                aligned[i] = (a, b)
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
            sides = (
                (window_a, rows_a, a_col(column.name), column.type_a),
                (window_b, rows_b, b_col(column.name), column.type_b),
            )
            for side, (window, rows, name, target) in enumerate(sides):
                if i in aligned:
                    arrays[name] = _flagged(aligned[i][side], keep, target, flag)
                else:
                    arrays[name] = _flagged_values(window, i, rows[keep], target, flag)
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
    the keys are read), on cursors of the engine's database `con`, which must keep
    preserve_insertion_order on while they run. A side with an `Order` is loaded whole at once and
    put in that order when it is given (see layout())."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        plan: Plan,
        side_a: Side,
        side_b: Side,
        order_a: Order | None = None,
        order_b: Order | None = None,
    ) -> None:
        sources = []
        sides = ((side_a, "a", order_a), (side_b, "b", order_b))
        # A load too small to keep both cores busy for long is not waited for: both scans run at once.
        awaited = [
            order if order is not None and load_bytes(plan, side, label) > AWAITED_LOAD_BYTES else None
            for side, label, order in sides
        ]
        for (side, label, order), other in zip(sides, reversed(awaited), strict=True):
            cursor = con.cursor()
            if order is None:
                scan = _scan(cursor, plan, side, label, after=other)
            else:
                scan = _reordered(cursor, plan, side, label, order)
            sources.append(Prefetch(scan, depth=2))
        self.a, self.b = sources
        self.orders = (order_a, order_b)
        self.layout: Layout | None = None  # set by the engine once the keys are read

    def take(self, found: Layout) -> bool:
        """Adopt the layout the keys gave, if these scans read the sides as it needs them."""
        for order, rows in zip(self.orders, (found.order_a, found.order_b), strict=True):
            if (order is None) != (rows is None):
                return False
        for order, rows in zip(self.orders, (found.order_a, found.order_b), strict=True):
            if order is not None and rows is not None:
                order.give(rows)
        self.layout = found
        return True

    def close(self) -> None:
        for order in self.orders:
            if order is not None:
                order.cancel()  # a load waiting for its order stops instead of blocking close()
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
