"""Journal arbitration: a verdict for every differing key, from a journal snapshot or the LMDB journal."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_compare_truth import (
    BIG_KEY,
    DUPLICATED_IN_A,
    DUPLICATED_IN_B,
    SPEC,
    build_tables,
    digests_of,
    write_journal,
    write_snapshot,
)

from milvusdiff.compare import compare
from milvusdiff.errors import CompareError
from milvusdiff.services.journal import Journal

ENGINES = ["duckdb", "polars"]
WRONG_DIGEST = b"\x01" * 16


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Milvus (A) and PostgreSQL (B) snapshots, and what the journal intended for each case."""
    tmp = tmp_path_factory.mktemp("arbitrate")
    a, b, truth = build_tables()
    da, db = digests_of(a, [10, 11, 20, DUPLICATED_IN_A]), digests_of(b, [1000, 21, DUPLICATED_IN_B])
    cases = {  # key -> (journal state, digest, expected verdict)
        10: ("DELETED", None, "a_wrong"),  # deleted, but Milvus still holds it
        11: ("EXISTS", da[11], "b_wrong"),  # written, PostgreSQL lacks it
        12: ("IN_DOUBT", None, "in_doubt"),
        1000: ("EXISTS", db[1000], "a_wrong"),  # written, Milvus lacks it
        1001: ("DELETED", None, "b_wrong"),
        20: ("EXISTS", da[20], "b_wrong"),  # Milvus holds what was written
        21: ("EXISTS", db[21], "a_wrong"),  # PostgreSQL holds what was written
        22: ("EXISTS", WRONG_DIGEST, "both_wrong"),  # neither does
        DUPLICATED_IN_A: ("EXISTS", da[DUPLICATED_IN_A], "a_wrong"),  # two rows where one was written
        DUPLICATED_IN_B: ("EXISTS", db[DUPLICATED_IN_B], "b_wrong"),
    }
    return {
        "a": write_snapshot(a, tmp / "milvus", "milvus"),
        "b": write_snapshot(b, tmp / "pg", "pg"),
        "journal": write_journal(tmp / "journal", {k: (s, d) for k, (s, d, _) in cases.items()}),
        "cases": cases,
        "differing": len(truth.classes),
        "tables": (a, b),
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_verdict_per_case_from_journal_snapshot(snapshots: dict, tmp_path: Path, engine: str) -> None:
    result = compare(snapshots["a"], snapshots["b"], engine=engine, journal=snapshots["journal"], out=tmp_path / "o")
    verdicts = {r["id"]: r["verdict"] for r in pq.read_table(result.diff_path).to_pylist()}
    cases = snapshots["cases"]
    assert {k: verdicts[k] for k in cases} == {k: v for k, (_, _, v) in cases.items()}
    unknown = {k for k, v in verdicts.items() if k not in cases}
    assert unknown and all(verdicts[k] == "unknown" for k in unknown)  # no journal record
    assert BIG_KEY in unknown
    counts = result.summary.verdicts
    assert counts == {
        "a_wrong": 4,
        "b_wrong": 4,
        "both_wrong": 1,
        "in_doubt": 1,
        "unknown": snapshots["differing"] - len(cases),
    }


def test_reports_name_the_stores(snapshots: dict, tmp_path: Path) -> None:
    result = compare(snapshots["a"], snapshots["b"], journal=snapshots["journal"], out=tmp_path / "o")
    assert result.summary.verdict_labels["a_wrong"] == "milvus wrong"
    assert result.summary.verdict_labels["b_wrong"] == "pg wrong"
    report = (tmp_path / "o" / "report.md").read_text()
    assert "| milvus wrong | 4 |" in report and "| pg wrong | 4 |" in report
    sample_line = next(line for line in report.splitlines() if line.startswith("| 21 | changed |"))
    assert sample_line.endswith("| milvus wrong |")
    assert "milvus wrong" in (tmp_path / "o" / "report.html").read_text()
    assert "s3cr3t" not in (tmp_path / "o" / "summary.json").read_text()


def test_verdicts_from_the_lmdb_journal(snapshots: dict, tmp_path: Path) -> None:
    a, b = snapshots["tables"]
    da, db = digests_of(a, [11, 20]), digests_of(b, [21])
    with Journal(tmp_path / "journal") as journal:
        journal.register_collection(SPEC)
        journal.commit(journal.begin(SPEC.name, "insert", [11, 20, 21], [da[11], da[20], db[21]]))
        journal.commit(journal.begin(SPEC.name, "delete", [10]))
        journal.mark_in_doubt(journal.begin(SPEC.name, "upsert", [12], [WRONG_DIGEST]), "timeout")
    result = compare(snapshots["a"], snapshots["b"], journal=tmp_path / "journal", out=tmp_path / "o")
    verdicts = {r["id"]: r["verdict"] for r in pq.read_table(result.diff_path).to_pylist()}
    assert {k: verdicts[k] for k in (10, 11, 12, 20, 21, 22)} == {
        10: "a_wrong",
        11: "b_wrong",
        12: "in_doubt",
        20: "b_wrong",
        21: "a_wrong",
        22: "unknown",
    }


def test_journal_that_is_neither_snapshot_nor_lmdb_is_trouble(snapshots: dict, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompareError, match="not a journal snapshot"):
        compare(snapshots["a"], snapshots["b"], journal=tmp_path / "empty")
