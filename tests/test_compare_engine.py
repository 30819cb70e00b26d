"""The compare engines against ground truth: every kind of difference, every snapshot type, both engines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_compare_truth import (
    BIG_KEY,
    DIM,
    REORDERED_JSON_KEYS,
    ULP_KEY,
    Truth,
    build_tables,
    make_pair,
    write_snapshot,
)

from milvusdiff.compare import CompareResult, Tolerance, compare

ENGINES = ["duckdb", "polars"]
COUNTS = ("only_a", "only_b", "changed", "duplicate_a", "duplicate_b")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Truth]:
    return make_pair(tmp_path_factory.mktemp("pair"))


def diff_rows(result: CompareResult) -> dict[Any, dict[str, Any]]:
    assert result.diff_path is not None
    rows = pq.read_table(result.diff_path).to_pylist()
    keys = result.summary.key
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def comparable(value: Any) -> Any:
    """NaN != NaN in Python; diff rows are compared across engines with NaN as a marker."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("engine", ENGINES)
def test_counts_classes_and_changed_columns_match_ground_truth(
    pair: tuple[Path, Path, Truth], tmp_path: Path, engine: str
) -> None:
    a, b, truth = pair
    result = compare(a, b, engine=engine, out=tmp_path / "out")
    summary = result.summary
    assert (summary.rows_a, summary.rows_b) == (truth.rows_a, truth.rows_b)
    assert {name: getattr(summary, name) for name in COUNTS} == {name: truth.count(name) for name in COUNTS}
    assert summary.unchanged == truth.unchanged
    assert summary.different and result.exit_code == 1 and not summary.lower_bound
    rows = diff_rows(result)
    assert {k: r["class"] for k, r in rows.items()} == truth.classes
    assert {k: r["changed_columns"] for k, r in rows.items() if r["class"] == "changed"} == truth.changed_columns
    for key in REORDERED_JSON_KEYS:
        assert key not in rows
    per_column = {name: info.mismatches for name, info in summary.columns.items()}
    expected = {name: 0 for name in per_column}
    for columns in truth.changed_columns.values():
        for name in columns:
            expected[name] += 1
    assert per_column == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_changed_rows_carry_both_values_and_vector_metrics(
    pair: tuple[Path, Path, Truth], tmp_path: Path, engine: str
) -> None:
    a, b, _ = pair
    rows = diff_rows(compare(a, b, engine=engine, out=tmp_path / "out"))
    big = rows[BIG_KEY]
    deviation = np.array(big["vec__b"], dtype=np.float64) - np.array(big["vec__a"], dtype=np.float64)
    assert big["vec__max_abs"] == pytest.approx(np.abs(deviation).max())
    assert big["vec__l2"] == pytest.approx(np.linalg.norm(deviation))
    assert 0 < big["vec__cosine"] < 1
    assert big["title__a"] is None and big["title__b"] is None  # unchanged columns stay empty
    ulp = rows[ULP_KEY]
    assert 0 < ulp["vec__max_abs"] < 1e-6
    assert rows[20]["title__a"] == "title 20" and rows[20]["title__b"] == "another title"
    assert math.isnan(rows[24]["f__b"]) and rows[24]["f__a"] == pytest.approx(24 / 7)
    assert rows[25]["title__b"] is None and rows[25]["changed_columns"] == ["title"]
    assert rows[60]["count_a"] == 2 and rows[61]["count_b"] == 2


def test_both_engines_write_identical_diffs(pair: tuple[Path, Path, Truth], tmp_path: Path) -> None:
    """Same rows and types (engines stream in no fixed order) and the same report sample."""
    a, b, _ = pair
    results = [compare(a, b, engine=e, out=tmp_path / e) for e in ENGINES]
    tables = [pq.read_table(r.diff_path).sort_by("id") for r in results]
    assert tables[0].schema == tables[1].schema
    assert comparable(tables[0].to_pylist()) == comparable(tables[1].to_pylist())
    samples = [(tmp_path / e / "report.md").read_text().split("## Sample of differences")[1] for e in ENGINES]
    assert samples[0] == samples[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_tolerance_absorbs_one_ulp_but_not_a_large_change(
    pair: tuple[Path, Path, Truth], tmp_path: Path, engine: str
) -> None:
    a, b, truth = pair
    rows = diff_rows(compare(a, b, engine=engine, atol=1e-6, out=tmp_path / "out"))
    assert ULP_KEY not in rows
    assert rows[BIG_KEY]["changed_columns"] == ["vec"]
    assert rows[24]["changed_columns"] == ["f"]  # value vs NaN is never within tolerance
    assert len(rows) == len(truth.classes) - 1


@pytest.mark.parametrize("engine", ENGINES)
def test_per_column_tolerance_and_ignore(pair: tuple[Path, Path, Truth], tmp_path: Path, engine: str) -> None:
    a, b, truth = pair
    result = compare(a, b, engine=engine, tol={"d": (2e9, 0.0)}, ignore=["title", "vec"], out=tmp_path / "out")
    rows = diff_rows(result)
    assert 22 not in rows  # d within its own tolerance
    assert 20 not in rows and BIG_KEY not in rows and ULP_KEY not in rows
    assert 25 not in rows  # title only
    assert result.summary.columns_ignored == ["title", "vec"]
    assert result.summary.tolerances.per_column == {"d": Tolerance(2e9, 0.0)}
    assert result.summary.changed == truth.count("changed") - 5


@pytest.mark.parametrize("engine", ENGINES)
def test_columns_restricts_the_comparison(pair: tuple[Path, Path, Truth], tmp_path: Path, engine: str) -> None:
    a, b, truth = pair
    result = compare(a, b, engine=engine, columns=["title", "vec"], out=tmp_path / "out")
    changed = {k for k, r in diff_rows(result).items() if r["class"] == "changed"}
    assert changed == {k for k, cols in truth.changed_columns.items() if cols[0] in ("title", "vec")}
    assert list(result.summary.columns) == ["title", "vec"]
    assert result.summary.only_a == truth.count("only_a")


@pytest.mark.parametrize("engine", ENGINES)
def test_relative_tolerance_scales_with_b(tmp_path: Path, engine: str) -> None:
    a = _foreign(tmp_path / "a.parquet", {"id": [1, 2, 3], "x": [100.0, 1.0, 0.0]})
    b = _foreign(tmp_path / "b.parquet", {"id": [1, 2, 3], "x": [100.5, 1.5, 0.0]})
    rows = diff_rows(compare(a, b, key="id", rtol=0.01, engine=engine, out=tmp_path / "out"))
    assert set(rows) == {2}  # |100 - 100.5| <= 0.01 * 100.5, |1 - 1.5| > 0.015


@pytest.mark.parametrize("engine", ENGINES)
def test_identical_snapshots_exit_zero(tmp_path: Path, engine: str) -> None:
    a_only, _, _ = build_tables()
    deduplicated = a_only.slice(0, a_only.num_rows - 1)
    left = write_snapshot(deduplicated, tmp_path / "left", "milvus")
    right = write_snapshot(deduplicated, tmp_path / "right", "pg", parts=3)
    result = compare(left, right, engine=engine, out=tmp_path / "out")
    assert result.exit_code == 0 and not result.summary.different
    assert result.summary.unchanged == deduplicated.num_rows
    assert pq.read_table(result.diff_path).num_rows == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_max_diffs_reports_lower_bounds(pair: tuple[Path, Path, Truth], tmp_path: Path, engine: str) -> None:
    a, b, _ = pair
    summary = compare(a, b, engine=engine, max_diffs=5, out=tmp_path / "out").summary
    assert summary.lower_bound and summary.unchanged is None
    assert summary.only_a + summary.only_b + summary.changed <= 5
    assert "lower bounds" in (tmp_path / "out" / "report.md").read_text()


def _foreign(path: Path, columns: dict[str, Any], schema: pa.Schema | None = None) -> Path:
    pq.write_table(pa.table(columns, schema=schema), path)
    return path


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_inputs(tmp_path: Path, engine: str) -> None:
    a, b, _ = build_tables()
    empty = write_snapshot(a.slice(0, 0), tmp_path / "empty_a", "milvus", parts=1)
    other_empty = write_snapshot(b.slice(0, 0), tmp_path / "empty_b", "pg", parts=1)
    result = compare(empty, other_empty, engine=engine, out=tmp_path / "o1")
    assert result.exit_code == 0
    assert {n: getattr(result.summary, n) for n in (*COUNTS, "unchanged")} == dict.fromkeys((*COUNTS, "unchanged"), 0)
    full = write_snapshot(b.slice(0, 10), tmp_path / "full", "pg", parts=1)
    result = compare(empty, full, engine=engine, out=tmp_path / "o2")
    assert result.summary.only_b == 10 and result.exit_code == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_mismatched_schemas_are_reported(tmp_path: Path, engine: str) -> None:
    a = _foreign(tmp_path / "a.parquet", {"id": [1, 2], "same": [1, 2], "kept": ["x", "y"], "typed": [1, 2]})
    b = _foreign(tmp_path / "b.parquet", {"id": [1, 2], "same": [1, 2], "added": [0.5, 0.5], "typed": ["1", "2"]})
    result = compare(a, b, key=["id"], engine=engine, out=tmp_path / "out")
    summary = result.summary
    assert summary.columns_only_a == ["kept"] and summary.columns_only_b == ["added"]
    assert summary.columns_incomparable == {"typed": "int64 vs string"}
    assert summary.changed == 0 and summary.unchanged == 2
    assert result.exit_code == 1  # the schemas differ


@pytest.mark.parametrize("engine", ENGINES)
def test_composite_keys_and_renamed_columns(tmp_path: Path, engine: str) -> None:
    a = _foreign(
        tmp_path / "a.parquet",
        {"tenant": ["t1", "t1", "t2", "t2"], "doc": [1, 2, 1, 3], "text": ["a", "b", "c", "d"]},
    )
    b = _foreign(
        tmp_path / "b.parquet",
        {"tenant": ["t1", "t1", "t2", "t2"], "doc": [1, 2, 1, 4], "body": ["a", "B", "c", "d"]},
        pa.schema([("tenant", pa.string()), ("doc", pa.int32()), ("body", pa.string())]),
    )
    result = compare(a, b, key=["tenant", "doc"], rename={"text": "body"}, engine=engine, out=tmp_path / "out")
    rows = diff_rows(result)
    assert {k: r["class"] for k, r in rows.items()} == {
        ("t1", 2): "changed",
        ("t2", 3): "only_a",
        ("t2", 4): "only_b",
    }
    assert rows[("t1", 2)]["text__a"] == "b" and rows[("t1", 2)]["text__b"] == "B"
    assert result.summary.unchanged == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_foreign_json_text_is_compared_as_text_but_spec_json_semantically(tmp_path: Path, engine: str) -> None:
    """Without metadata a string is a string; with `milvusdiff.type=JSON` on either side it is JSON."""
    text_a = ['{"a":1,"b":2}', '{"n":1}', None, "not json"]
    text_b = ['{"b": 2, "a": 1}', '{"n":1.0}', "{}", "not json "]
    ids = [1, 2, 3, 4]
    a = _foreign(tmp_path / "a.parquet", {"id": ids, "j": text_a})
    b = _foreign(tmp_path / "b.parquet", {"id": ids, "j": text_b})
    assert compare(a, b, key="id", engine=engine).summary.changed == 4
    json_field = pa.field("j", pa.string(), metadata={"milvusdiff.type": "JSON"})
    typed = _foreign(tmp_path / "typed.parquet", {"id": ids, "j": text_b}, pa.schema([("id", pa.int64()), json_field]))
    rows = diff_rows(compare(a, typed, key="id", engine=engine, out=tmp_path / "out"))
    assert set(rows) == {3, 4}  # null against a value; text that is not JSON equals only itself


@pytest.mark.parametrize("engine", ENGINES)
def test_float_widths_and_nan_null_semantics(tmp_path: Path, engine: str) -> None:
    nan = float("nan")
    a = _foreign(
        tmp_path / "a.parquet",
        {"id": [1, 2, 3, 4, 5], "x": [nan, None, 1.0, nan, 0.1]},
        pa.schema([("id", pa.int64()), ("x", pa.float32())]),
    )
    b = _foreign(tmp_path / "b.parquet", {"id": [1, 2, 3, 4, 5], "x": [nan, None, None, 1.0, 0.1]})
    rows = diff_rows(compare(a, b, key="id", engine=engine, out=tmp_path / "out"))
    assert set(rows) == {3, 4, 5}  # null vs value, NaN vs value, float32(0.1) vs 0.1


@pytest.mark.parametrize("engine", ENGINES)
def test_vectors_arrays_and_sparse_within_tolerance(tmp_path: Path, engine: str) -> None:
    vec = pa.list_(pa.float32(), 2)
    sparse = pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))])
    schema = pa.schema([("id", pa.int64()), ("v", vec), ("arr", pa.list_(pa.float64())), ("sp", sparse)])
    a = _foreign(
        tmp_path / "a.parquet",
        {
            "id": [1, 2, 3, 4],
            "v": [[1.0, 2.0], [1.0, 2.0], [float("nan"), 0.0], None],
            "arr": [[1.0], [1.0, 2.0], [], [0.0]],
            "sp": [{"indices": [1], "values": [0.5]}] * 3 + [{"indices": [1, 2], "values": [0.5, 0.5]}],
        },
        schema,
    )
    b = _foreign(
        tmp_path / "b.parquet",
        {
            "id": [1, 2, 3, 4],
            "v": [[1.05, 2.0], [1.0, 2.5], [float("nan"), 0.0], [0.0, 0.0]],
            "arr": [[1.05], [1.0, 2.0, 3.0], [], [0.05]],
            "sp": [{"indices": [1], "values": [0.55]}] * 3 + [{"indices": [1, 3], "values": [0.5, 0.5]}],
        },
        schema,
    )
    rows = diff_rows(compare(a, b, key="id", atol=0.1, engine=engine, out=tmp_path / "out"))
    assert {k: r["changed_columns"] for k, r in rows.items()} == {2: ["v", "arr"], 4: ["v", "sp"]}
    rows = diff_rows(compare(a, b, key="id", engine=engine, out=tmp_path / "exact"))
    assert {k: r["changed_columns"] for k, r in rows.items()} == {
        1: ["v", "arr", "sp"],
        2: ["v", "arr", "sp"],
        3: ["sp"],
        4: ["v", "arr", "sp"],
    }


def test_vector_dimensions_must_agree(tmp_path: Path) -> None:
    from milvusdiff.errors import CompareError

    a = _foreign(tmp_path / "a.parquet", {"id": [1]}, None)
    pq.write_table(pa.table({"id": [1], "v": pa.array([[1.0] * DIM], pa.list_(pa.float32(), DIM))}), a)
    b = tmp_path / "b.parquet"
    pq.write_table(pa.table({"id": [1], "v": pa.array([[1.0] * 4], pa.list_(pa.float32(), 4))}), b)
    with pytest.raises(CompareError, match="dimension mismatch, 8 in A vs 4 in B"):
        compare(a, b, key="id")


def test_duckdb_spills_when_the_join_exceeds_its_memory_limit(tmp_path: Path) -> None:
    """About 100 MB of vectors against a 60 MB limit: DuckDB spills to --temp-dir and stays exact."""
    rows, dim = 200_000, 64
    vectors = np.random.default_rng(1).random((rows, dim), dtype=np.float32)
    changed = vectors.copy()
    changed[::10, 0] += 1
    for name, matrix in (("a", vectors), ("b", changed)):
        column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim)
        pq.write_table(
            pa.table({"id": np.arange(rows), "v": column}), tmp_path / f"{name}.parquet", row_group_size=20_000
        )
    summary = compare(
        tmp_path / "a.parquet",
        tmp_path / "b.parquet",
        key="id",
        memory_limit="60MB",
        threads=1,
        temp_dir=tmp_path / "spill",
    ).summary
    assert summary.changed == rows // 10 and summary.unchanged == rows - rows // 10


def test_out_of_memory_is_one_clear_error(tmp_path: Path) -> None:
    from milvusdiff.errors import CompareError

    a, _, _ = build_tables()
    left = write_snapshot(a, tmp_path / "left", "milvus")
    with pytest.raises(CompareError, match=r"^DuckDB: Out of Memory Error.*`memory_limit`"):
        compare(left, left, memory_limit="1MB", threads=1)
