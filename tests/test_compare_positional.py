"""The default engine's positional path (inputs sorted by key) against its SQL path and the Polars engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_compare_engine import comparable
from test_compare_truth import DUPLICATED_IN_A, DUPLICATED_IN_B, build_tables, write_snapshot

from milvusdiff.compare import compare, engine_duckdb, positional


def _fits(field: pa.Field) -> bool:
    t = field.type
    flat = not (pa.types.is_nested(t) or pa.types.is_dictionary(t))
    return flat or (pa.types.is_fixed_size_list(t) and not pa.types.is_nested(t.value_type))


def _prepare(table: pa.Table, reverse: bool = False) -> pa.Table:
    table = table.filter(pc.invert(pc.is_in(table.column("id"), pa.array([DUPLICATED_IN_A, DUPLICATED_IN_B]))))
    table = table.select([f.name for f in table.schema if _fits(f)])
    return table.sort_by([("id", "descending" if reverse else "ascending")])


@pytest.fixture(scope="module")
def sorted_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    a, b, _ = build_tables()
    tmp = tmp_path_factory.mktemp("sorted")
    return write_snapshot(_prepare(a), tmp / "a", "milvus"), write_snapshot(_prepare(b), tmp / "b", "pg")


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each use of the positional path."""
    used: list[int] = []
    original = positional.stream

    def spying(*args: Any) -> Any:
        used.append(1)
        return original(*args)

    monkeypatch.setattr(positional, "stream", spying)
    return used


def _run(a: Path, b: Path, out: Path, engine: str, **options: Any) -> tuple[list[Any], str]:
    result = compare(a, b, engine=engine, out=out, **options)
    assert result.diff_path is not None
    table = pq.read_table(result.diff_path).sort_by("id")
    sample = (out / "report.md").read_text().split("## Sample of differences")[1]
    return comparable(table.to_pylist()), sample


@pytest.mark.parametrize("options", [{}, {"atol": 1e-6}, {"tol": {"f": 0.5}}, {"max_diffs": 5}])
def test_positional_path_equals_sql_path_and_polars(
    sorted_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    a, b = sorted_pair
    used = _spy(monkeypatch)
    fast = _run(a, b, tmp_path / "fast", "duckdb", **options)
    assert used, "the positional path did not apply to sorted inputs"
    slow_polars = _run(a, b, tmp_path / "polars", "polars", **options)
    monkeypatch.setattr(positional, "applies", lambda plan: False)
    slow_sql = _run(a, b, tmp_path / "sql", "duckdb", **options)
    if "max_diffs" in options:  # any N differing keys: only the count is defined
        assert len(fast[0]) == len(slow_sql[0]) == len(slow_polars[0])
        return
    assert fast[0], "the pair has differences"
    assert fast == slow_sql == slow_polars


@pytest.mark.parametrize("share", [1, 10**9])
def test_vectors_compared_run_by_run_or_gathered_alike(
    sorted_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: int
) -> None:
    """Run-by-run comparison in place (share 1: always) and gathered copies (share 10**9: always)."""
    a, b = sorted_pair
    reference = _run(a, b, tmp_path / "polars", "polars")
    monkeypatch.setattr(positional, "_MAX_RUNS_SHARE", share)
    assert _run(a, b, tmp_path / "fast", "duckdb") == reference


def test_unsorted_inputs_take_the_sql_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, _ = build_tables()
    pa_dir = write_snapshot(_prepare(a, reverse=True), tmp_path / "a", "milvus")
    pb_dir = write_snapshot(_prepare(b, reverse=True), tmp_path / "b", "pg")
    used = _spy(monkeypatch)
    duck = _run(pa_dir, pb_dir, tmp_path / "duck", "duckdb")
    assert not used
    assert duck == _run(pa_dir, pb_dir, tmp_path / "polars", "polars")


def test_null_vectors_nan_and_negative_zero(tmp_path: Path) -> None:
    nan = float("nan")
    vector = pa.list_(pa.float32(), 2)
    schema = pa.schema([("id", pa.int64()), ("v", vector)], metadata={"milvusdiff.key": '["id"]'})
    rows_a = [[0.0, 1.0], None, [nan, 1.0], [1.0, 2.0], None, [1.0, nan]]
    rows_b = [[-0.0, 1.0], None, [nan, 1.0], None, [1.0, 2.0], [1.0, 2.0]]
    for name, rows in (("a", rows_a), ("b", rows_b)):
        pq.write_table(
            pa.table({"id": range(6), "v": pa.array(rows, vector)}, schema=schema), tmp_path / f"{name}.parquet"
        )
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    fast = _run(a, b, tmp_path / "fast", "duckdb")
    # Exact means the same bits: -0.0 differs from 0.0 (as in the row digest); NaN equals NaN.
    assert [row["id"] for row in fast[0]] == [0, 3, 4, 5]
    assert fast == _run(a, b, tmp_path / "polars", "polars")


def _shuffled(table: pa.Table, seed: int) -> pa.Table:
    import numpy as np

    return table.take(pa.array(np.random.default_rng(seed).permutation(table.num_rows)))


def test_one_side_in_any_order_takes_the_positional_path(
    sorted_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sorted export against a shuffled foreign file: the shuffled side is loaded and put in key order,
    with the same result as the SQL path (which takes it when the side is over the memory budget)."""
    a, b = sorted_pair
    table_b = pa.concat_tables(pq.read_table(part) for part in sorted(b.glob("part-*.parquet")))
    shuffled = tmp_path / "b_shuffled.parquet"
    pq.write_table(_shuffled(table_b, 1), shuffled, row_group_size=max(1, table_b.num_rows // 4))
    used = _spy(monkeypatch)
    fast = _run(a, shuffled, tmp_path / "fast", "duckdb")
    assert used
    used.clear()
    assert (engine_duckdb.load_budget("2GB"), engine_duckdb.load_budget("1.5 GiB")) == (10**9, 3 * 2**28)
    monkeypatch.setattr(engine_duckdb, "load_budget", lambda limit: 0)  # B no longer fits: SQL path
    slow = _run(a, shuffled, tmp_path / "slow", "duckdb")
    assert not used
    assert fast == slow == _run(a, b, tmp_path / "sorted", "duckdb")
    # both sides out of order: the SQL path
    shuffled_a = tmp_path / "a_shuffled.parquet"
    table_a = pa.concat_tables(pq.read_table(part) for part in sorted(a.glob("part-*.parquet")))
    pq.write_table(_shuffled(table_a, 2), shuffled_a)
    used.clear()
    assert _run(shuffled_a, shuffled, tmp_path / "both", "duckdb") == fast
    assert not used


def test_row_group_statistics_rule_out_the_positional_path_before_reading(tmp_path: Path) -> None:
    """Overlapping row groups mean not sorted (False); ordered ones mean maybe sorted (True); none, or one
    group whose range says nothing about the order inside it: None."""
    from milvusdiff.compare.inputs import open_side

    table = pa.table({"id": pa.array(range(100), pa.int64())})
    pq.write_table(table, tmp_path / "sorted.parquet", row_group_size=10)
    pq.write_table(_shuffled(table, 3), tmp_path / "shuffled.parquet", row_group_size=10)
    pq.write_table(table, tmp_path / "bare.parquet", row_group_size=10, write_statistics=False)
    pq.write_table(_shuffled(table, 3), tmp_path / "one_group.parquet")
    orders = {
        name: positional.stats_order(open_side(tmp_path / f"{name}.parquet", "a"), "id")
        for name in ("sorted", "shuffled", "bare", "one_group")
    }
    assert orders == {"sorted": True, "shuffled": False, "bare": None, "one_group": None}


@pytest.mark.parametrize("duplicate", [False, True])
def test_shuffled_side_with_null_vectors_or_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, duplicate: bool
) -> None:
    """The side loaded whole while the keys are read: vectors placed in key order until a null vector turns
    the column into Arrow parts; duplicate keys found after the load started cancel it (SQL
    path). Either way the same rows as Polars."""
    import numpy as np

    rows = 3000
    vector = pa.list_(pa.float32(), 4)
    values = np.random.default_rng(5).random((rows, 4), dtype=np.float32)
    table_a = pa.table({"id": pa.array(range(rows), pa.int64()), "v": pa.array(list(values), vector)})
    changed = values.copy()
    changed[::7, 1] += 1
    b_vectors = pa.array([None if i % 500 == 499 else list(row) for i, row in enumerate(changed)], vector)
    table_b = pa.table({"id": pa.array(range(rows), pa.int64()), "v": b_vectors})
    if duplicate:
        table_b = pa.concat_tables([table_b, table_b.slice(10, 1)])
    pq.write_table(table_a, tmp_path / "a.parquet", row_group_size=1000)
    pq.write_table(_shuffled(table_b, 9), tmp_path / "b.parquet", row_group_size=1000)
    used = _spy(monkeypatch)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    fast = _run(a, b, tmp_path / "fast", "duckdb", key="id")
    assert bool(used) is not duplicate
    classes = [row["class"] for row in fast[0]]
    assert classes.count("changed") == len(range(0, rows, 7)) + len(range(499, rows, 500)) - 1  # 2499 is both
    assert classes.count("duplicate_b") == int(duplicate)
    assert fast == _run(a, b, tmp_path / "polars", "polars", key="id")


@pytest.mark.parametrize(("null_at", "order_late"), [(None, False), (9000, False), (None, True), (9000, True)])
def test_shuffled_side_placed_in_key_order_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, null_at: int | None, order_late: bool
) -> None:
    """A loaded side in several batches: its vectors are placed at their key's rank as each batch arrives,
    and go back to file order as Arrow parts once a null vector (here in a later batch) turns up; its
    strings are copied out of each batch. Batches that arrive before the key order is known wait for it
    (forced here for every batch). Either way the rows are the rows Polars finds."""
    import numpy as np

    rows = 12_000  # three batches of DuckDB's export at the least batch size (4096 rows)
    vector = pa.list_(pa.float32(), 4)
    values = np.random.default_rng(8).random((rows, 4), dtype=np.float32)
    names = pa.array([f"név-{i}" for i in range(rows)])
    table_a = pa.table({"id": pa.array(range(rows), pa.int64()), "v": pa.array(list(values), vector), "s": names})
    changed = values.copy()
    changed[::7, 2] += 1
    texts = names.to_pylist()
    for i in range(0, rows, 11):
        texts[i] += "!"
    table_b = _shuffled(pa.table({"id": table_a["id"], "v": pa.array(list(changed), vector), "s": texts}), 4)
    if null_at is not None:  # in file order, past the first two batches
        nulled = table_b.column("v").to_pylist()
        nulled[null_at] = None
        table_b = table_b.set_column(1, "v", pa.array(nulled, vector))
    pq.write_table(table_a, tmp_path / "a.parquet", row_group_size=3000)
    pq.write_table(table_b, tmp_path / "b.parquet", row_group_size=3000)
    monkeypatch.setattr(positional, "BATCH_VECTOR_BYTES", 1)
    if order_late:  # the key order seen only once the whole side is read
        monkeypatch.setattr(positional.Order, "known", lambda self: False)
    used = _spy(monkeypatch)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    fast = _run(a, b, tmp_path / "fast", "duckdb", key="id")
    assert used
    changed_keys = set(range(0, rows, 7)) | set(range(0, rows, 11))
    if null_at is not None:
        changed_keys.add(table_b.column("id")[null_at].as_py())
    assert {row["id"] for row in fast[0]} == changed_keys
    assert fast == _run(a, b, tmp_path / "polars", "polars", key="id")


def test_a_scan_failing_mid_merge_is_one_error_and_no_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sorted_pair: tuple[Path, Path]
) -> None:
    """The merge runs on the caller's thread (its scans have threads of their own): a DuckDB error from a
    scan after the first batches (a page that does not decode, injected) ends the compare as one
    CompareError naming the inputs, with no diff.parquet and no thread left decoding."""
    import threading

    import duckdb

    from milvusdiff.errors import CompareError

    a, b = sorted_pair
    calls: list[int] = []
    original = positional._Merge.changed

    def failing(self: Any, *args: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise duckdb.IOException("Corrupt page in column v")
        return original(self, *args)

    monkeypatch.setattr(positional, "BATCH_VECTOR_BYTES", 1)
    monkeypatch.setattr(positional, "BATCH_ROWS", 64)  # several batches of the small fixture
    monkeypatch.setattr(positional._Merge, "changed", failing)
    out = tmp_path / "out"
    with pytest.raises(CompareError, match=r"^DuckDB: .*Corrupt page in column v \(reading A .* and B .*\)$"):
        compare(a, b, engine="duckdb", out=out)
    assert len(calls) == 2
    assert not (out / "diff.parquet").exists()
    assert not [t for t in threading.enumerate() if t.name == "milvusdiff-prefetch"]
