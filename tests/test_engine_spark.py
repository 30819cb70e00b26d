"""The Spark engine gives exactly what the DuckDB engine gives: every type, every edge case, staged or not.

Its own lane (`make test-spark`, marker `spark`): PySpark is an optional extra and a session takes
10-20 s to start, so one local SparkSession serves the whole module. Inputs are the every-type truth
tables (every Milvus type, NaN, nulls, signed zero, reordered JSON, sparse vectors, partitions,
duplicate keys) and the comparator's edge-case table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers.agreement import table_values
from helpers.bucketed import write_bucketed
from test_comparator import TOL, _expected
from test_comparator import files as edge_files  # noqa: F401  (the module-scoped fixture)
from test_compare_truth import SPEC, build_tables, digests_of, write_journal, write_snapshot

from milvusdiff.compare import compare
from milvusdiff.compare.api import make_options

pytestmark = pytest.mark.spark

# What legitimately differs between two runs of the same comparison: timing, the engine, and the staged
# statistics (Spark runs the stages itself and reports none).
VOLATILE = ("elapsed_seconds", "engine", "staged")


@pytest.fixture(scope="module", autouse=True)
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="the spark extra is not installed (make test-spark installs it)")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH (make test-spark installs openjdk-17-jre-headless)")
    from milvusdiff.compare.engine_spark import session

    started = session()
    yield started
    started.stop()


def _outcome(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = {k: v for k, v in json.loads((out / "summary.json").read_text()).items() if k not in VOLATILE}
    diff = pq.read_table(out / "diff.parquet")
    return summary, table_values(diff.sort_by([("id", "ascending"), ("class", "ascending")]))


def _agree(a: Path, b: Path, tmp_path: Path, **options: Any) -> Any:
    local = compare(a, b, make_options(out=tmp_path / "duckdb", **options))
    distributed = compare(a, b, make_options(out=tmp_path / "spark", engine="spark", **options))
    assert distributed.summary.engine == "spark"
    assert _outcome(tmp_path / "spark") == _outcome(tmp_path / "duckdb")
    assert distributed.exit_code == local.exit_code
    return local


@pytest.mark.parametrize("tolerance", [{}, {"atol": 1e-3, "rtol": 1e-6}], ids=["exact", "tolerant"])
def test_spark_agrees_with_duckdb_on_every_type(tmp_path: Path, tolerance: dict[str, float]) -> None:
    a, b, truth = build_tables()
    side_a = write_snapshot(a, tmp_path / "a", "milvus")
    side_b = write_snapshot(b, tmp_path / "b", "pg")
    keys = sorted(truth.classes)
    digests = digests_of(a, keys)
    journal = write_journal(tmp_path / "journal", {k: ("EXISTS", digests.get(k)) for k in keys})
    local = _agree(side_a, side_b, tmp_path, journal=journal, **tolerance)
    assert local.summary.changed > 0 and local.summary.duplicate_a == 1 and local.summary.duplicate_b == 1
    assert sum(local.summary.verdicts.values()) > 0


def test_spark_runs_the_stages_on_bucketed_snapshots(tmp_path: Path) -> None:
    a, b, _ = build_tables()
    a, b = a.slice(0, a.num_rows - 1), b.slice(0, b.num_rows - 1)  # no duplicates, so buckets can settle
    side_a = write_bucketed(a, SPEC, tmp_path / "a", 16, "milvus")
    side_b = write_bucketed(b, SPEC, tmp_path / "b", 16, "pg")
    local = _agree(side_a, side_b, tmp_path)
    assert local.summary.changed > 0
    equal_b = write_bucketed(a.sort_by([("id", "descending")]), SPEC, tmp_path / "equal", 16, "pg")
    same = compare(side_a, equal_b, make_options(engine="spark"))
    assert same.exit_code == 0 and same.summary.unchanged == a.num_rows


@pytest.mark.parametrize("tolerant", [False, True], ids=["exact", "atol"])
def test_spark_decides_the_edge_case_table_like_the_comparator(
    edge_files: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    tolerant: bool,
) -> None:
    options = TOL if tolerant else {}
    compare(edge_files["a"], edge_files["b_reversed"], out=tmp_path / "out", engine="spark", **options)
    found = sorted(pq.read_table(tmp_path / "out" / "diff.parquet").column("id").to_pylist())
    assert found == _expected(tolerant)


def test_case_twins_stay_two_columns_in_spark(tmp_path: Path) -> None:
    import pyarrow as pa

    a = pa.table({"id": [1, 2, 3], "val": [1.0, 2.0, 3.0], "VAL": [10.0, 20.0, 30.0]})
    b = pa.table({"id": [1, 2, 3], "val": [1.0, 2.0, 3.0], "VAL": [10.0, 20.5, 30.0]})
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    result = compare(tmp_path / "a.parquet", tmp_path / "b.parquet", key="id", engine="spark")
    assert result.summary.changed == 1
    assert {name: c.mismatches for name, c in result.summary.columns.items()} == {"val": 0, "VAL": 1}


def test_missing_extra_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Without PySpark (here: an import that fails, as in an environment without the extra)."""
    blocker = tmp_path / "blocker"
    (blocker / "pyspark").mkdir(parents=True)
    (blocker / "pyspark" / "__init__.py").write_text("raise ImportError('No module named pyspark')\n")
    pq.write_table(build_tables()[0], tmp_path / "a.parquet")
    env = dict(os.environ, PYTHONPATH=str(blocker))
    milvusdiff = str(Path(sys.executable).with_name("milvusdiff"))
    done = subprocess.run(
        [milvusdiff, "compare", str(tmp_path / "a.parquet"), str(tmp_path / "a.parquet"), "--engine", "spark"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "milvusdiff: the spark engine needs PySpark: pip install 'milvusdiff[spark]'"
    ]
