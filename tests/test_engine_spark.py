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
import socket
import subprocess
import sys
import time
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

# The Spark Connect server's Java class; pyspark's jars ship it (start-connect-server.sh runs the same).
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"

pytestmark = pytest.mark.spark

# What legitimately differs between two runs of the same comparison: timing, the engine, and the staged
# statistics (Spark runs the stages itself and reports none).
VOLATILE = ("elapsed_seconds", "engine", "staged")


def _need_spark() -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed (make test-spark installs it)")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH (make test-spark installs openjdk-17-jre-headless)")


@pytest.fixture(scope="module", autouse=True)
def spark() -> Iterator[Any]:
    _need_spark()
    from milvusdiff.compare.engine_spark import session

    started = session()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server in a process of its own, as a cluster runs one, for the whole session.

    Its Python workers cannot import milvusdiff: a package of that name which raises on import comes
    first on their path, as on a cluster where milvusdiff is not installed. A compare over this server
    therefore passes only if the engine ships its own code with the job."""
    _need_spark()
    import pyspark

    home = Path(pyspark.__file__).parent
    work = tmp_path_factory.mktemp("connect")
    (work / "blocker" / "milvusdiff").mkdir(parents=True)
    (work / "blocker" / "milvusdiff" / "__init__.py").write_text(
        "raise ImportError('milvusdiff is not installed on this cluster')\n"
    )
    with socket.socket() as probe:  # a free port; nothing else here binds ports at random
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    local = ("spark.driver.host", "spark.driver.bindAddress", "spark.connect.grpc.binding.address")
    conf = {key: "127.0.0.1" for key in local}
    conf.update({"spark.connect.grpc.binding.port": str(port), "spark.ui.enabled": "false", "spark.log.level": "WARN"})
    conf["spark.sql.shuffle.partitions"] = "4"  # the server's own setting, as a cluster's admin sets it
    argv = [str(home / "bin" / "spark-submit"), "--class", CONNECT_SERVER, "--master", "local[2]"]
    argv += [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    env["PYTHONPATH"] = str(work / "blocker")
    log = work / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(server, port, log)
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=120)


def _wait_for_port(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the server accepts connections; fails with its log if it exits, or is not up in 5 minutes."""
    deadline = time.monotonic() + 300
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Spark Connect server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)


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


def test_spark_connect_client_agrees_with_duckdb(connect_url: str, tmp_path: Path) -> None:
    """The CLI as a Spark Connect client: no JVM on its side (JAVA_HOME leads nowhere, so any attempt to
    start one fails), the server's workers without milvusdiff, and still DuckDB's summary and rows."""
    a, b, _ = build_tables()
    side_a = write_snapshot(a, tmp_path / "a", "milvus")
    side_b = write_snapshot(b, tmp_path / "b", "pg")
    milvusdiff = str(Path(sys.executable).with_name("milvusdiff"))
    runs = {"duckdb": [], "spark": ["--spark-master", connect_url]}
    for engine, extra in runs.items():
        argv = [milvusdiff, "compare", str(side_a), str(side_b), "--engine", engine, "--out", str(tmp_path / engine)]
        env = dict(os.environ, JAVA_HOME=str(tmp_path / "no-java"))
        done = subprocess.run([*argv, *extra], env=env, capture_output=True, text=True)
        assert done.returncode == 1, done.stderr
    summary, rows = _outcome(tmp_path / "spark")
    assert (summary, rows) == _outcome(tmp_path / "duckdb")
    assert json.loads((tmp_path / "spark" / "summary.json").read_text())["engine"] == "spark"
    counts = {name: summary[name] for name in ("only_a", "only_b", "changed", "duplicate_a", "duplicate_b")}
    assert counts == {"only_a": 5, "only_b": 3, "changed": 24, "duplicate_a": 1, "duplicate_b": 1}
    differing_kinds = {c["kind"] for c in summary["columns"].values() if c["mismatches"]}
    assert differing_kinds >= {"exact", "float", "float_list", "json", "sparse"}


@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
def test_a_python_worker_failure_is_named_by_its_own_error(spark: Any) -> None:
    """What a cluster without numpy or pyarrow would show: the worker's error, not Spark's preamble."""
    from milvusdiff.compare.engine_spark import reason

    def fail(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            raise ImportError("No module named 'pyarrow'")
            yield batch

    with pytest.raises(Exception) as failed:
        spark.range(3).mapInArrow(fail, "id long").toArrow()
    assert reason(failed.value) == "a Python worker failed: ImportError: No module named 'pyarrow'"


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
