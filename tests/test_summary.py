"""The typed Summary and what compare() returns, as a Python caller uses them.

Real Parquet files are compared; summary.json is read back with Summary.read and must equal the
object compare() returned, and the differing rows come back as a Polars frame with or without `out`.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from milvusdiff.compare import compare
from milvusdiff.compare.summary import ColumnFinding, Summary


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Keys 0..99; B lacks key 3, adds key 100, and changes x of keys 10 and 20 (one by 0.5, one to NaN)."""
    ids = np.arange(100)
    x = np.linspace(0, 1, 100)
    a = pa.table({"id": ids, "x": x, "s": [f"s{i}" for i in ids]})
    x_b = x.copy()
    x_b[10] += 0.5
    x_b[20] = np.nan
    b = pa.table({"id": ids, "x": x_b, "s": [f"s{i}" for i in ids]}).filter(pa.array(ids != 3))
    b = pa.concat_tables([b, pa.table({"id": [100], "x": [0.0], "s": ["new"]})])
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    return tmp_path / "a.parquet", tmp_path / "b.parquet"


def test_summary_json_reads_back_as_the_summary_compare_returned(pair: tuple[Path, Path], tmp_path: Path) -> None:
    result = compare(*pair, key="id", out=tmp_path / "out")
    summary = result.summary
    assert (summary.only_a, summary.only_b, summary.changed, summary.unchanged) == (1, 1, 2, 97)
    assert summary.columns["x"].mismatches == 2 and summary.columns["s"] == ColumnFinding("s", "exact", 0)
    assert summary.exit_code == result.exit_code == 1 and summary.differences == 4
    assert Summary.read(tmp_path / "out") == summary
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk == summary.to_dict() and on_disk["columns"]["x"]["mismatches"] == 2


def test_a_summary_keeps_what_it_does_not_know_and_loads_older_files() -> None:
    newer = {
        "rows_a": 2,
        "rows_b": 2,
        "only_a": 0,
        "only_b": 0,
        "changed": 1,
        "unchanged": 1,
        "duplicate_a": 0,
        "duplicate_b": 0,
        "different": True,
        "key": ["id"],
        "inputs": {"a": {"path": "a.parquet", "files": 1}, "b": {"path": "b.parquet", "files": 1}},
        "columns": {"x": {"b_name": "x", "kind": "float", "mismatches": 1, "max_deviation": 0.5}},
        "query_check": {"filter": "id > 0"},  # a section another command adds
    }
    summary = Summary.from_dict(newer)  # no store_warnings, deviations, tolerances...: written before them
    assert summary.store_warnings == [] and summary.columns["x"].deviations is None
    assert summary.extra == {"query_check": {"filter": "id > 0"}}
    assert summary.to_dict()["query_check"] == {"filter": "id > 0"}
    assert Summary.from_dict(json.loads(summary.to_json())) == summary


def test_diff_without_out_is_a_polars_frame_that_outlives_its_result(pair: tuple[Path, Path]) -> None:
    frame = compare(*pair, key="id").diff()  # the result is gone before the frame is collected
    gc.collect()
    rows = frame.sort("id").collect()
    assert rows["id"].to_list() == [3, 10, 20, 100]
    assert rows["class"].to_list() == ["only_a", "changed", "changed", "only_b"]

    result = compare(*pair, key="id")
    kept = result.diff_path
    assert kept is not None and kept.is_file() and result.out is None
    del result
    gc.collect()
    assert not kept.parent.exists()  # the diff kept for diff() goes with its result


def test_diff_with_out_scans_the_output_file(pair: tuple[Path, Path], tmp_path: Path) -> None:
    result = compare(*pair, key="id", out=tmp_path / "out")
    changed = result.diff().filter(pl.col("class") == "changed").select("id", "x__a", "x__b").sort("id").collect()
    assert changed["id"].to_list() == [10, 20] and np.isnan(changed["x__b"][1])
