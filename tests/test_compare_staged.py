"""Staged compare of bucketed snapshots gives exactly what an unbucketed compare of the same data gives.

The inputs are the every-type truth tables (every Milvus type, NaN, nulls, signed zero, reordered
JSON, sparse vectors, partitions, duplicate keys), written as `export --buckets N` writes them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers.agreement import table_values
from helpers.bucketed import write_bucketed
from test_compare_truth import DUPLICATED_IN_A, DUPLICATED_IN_B, SPEC, build_tables, digests_of, write_journal

from milvusdiff.compare import compare
from milvusdiff.compare.api import make_options

VOLATILE = ("elapsed_seconds", "staged")


def _without_duplicates(table: pa.Table) -> pa.Table:
    """The truth tables end with one duplicated row; drop it so whole buckets can be settled."""
    return table.slice(0, table.num_rows - 1)


def _outcome(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = {k: v for k, v in json.loads((out / "summary.json").read_text()).items() if k not in VOLATILE}
    diff = pq.read_table(out / "diff.parquet")
    return summary, table_values(diff.sort_by([("id", "ascending"), ("class", "ascending")]))


def _both(a: Path, b: Path, tmp_path: Path, **options: Any) -> tuple[Any, Any]:
    staged = compare(a, b, make_options(out=tmp_path / "staged", **options))
    plain = compare(a, b, dataclasses.replace(make_options(out=tmp_path / "plain", **options), staged=False))
    assert plain.summary.staged is None
    assert _outcome(tmp_path / "staged") == _outcome(tmp_path / "plain")
    return staged, plain


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
@pytest.mark.parametrize("tolerance", [{}, {"atol": 1e-3, "rtol": 1e-6}])
def test_staged_equals_unbucketed_on_every_type(tmp_path: Path, engine: str, tolerance: dict[str, float]) -> None:
    a, b, truth = build_tables()
    a, b = _without_duplicates(a), _without_duplicates(b)
    side_a = write_bucketed(a, SPEC, tmp_path / "a", 64, "milvus")
    side_b = write_bucketed(b, SPEC, tmp_path / "b", 64, "pg")
    staged, plain = _both(side_a, side_b, tmp_path, engine=engine, **tolerance)
    assert plain.summary.different and plain.summary.changed > 0
    stats = staged.summary.staged
    assert stats is not None and stats.buckets == 64
    assert stats.settled > 0 and stats.settled + stats.examined == 64  # some buckets decided from manifests
    differing = len(truth.classes) - 2  # the two duplicated keys were dropped
    assert stats.candidate_keys >= differing - len(truth.changed_columns) + plain.summary.changed
    assert stats.rows_read_a < a.num_rows and stats.rows_read_b < b.num_rows


def test_staged_with_duplicates_and_arbitration(tmp_path: Path) -> None:
    a, b, truth = build_tables()
    side_a = write_bucketed(a, SPEC, tmp_path / "a", 8, "milvus")
    side_b = write_bucketed(b, SPEC, tmp_path / "b", 8, "pg")
    keys = sorted(truth.classes)
    digests = digests_of(a, keys)
    journal = write_journal(tmp_path / "journal", {k: ("EXISTS", digests.get(k)) for k in keys})
    staged, plain = _both(side_a, side_b, tmp_path, journal=journal)
    assert plain.summary.duplicate_a == 1 and plain.summary.duplicate_b == 1
    assert staged.summary.verdicts == plain.summary.verdicts and sum(plain.summary.verdicts.values()) > 0
    assert staged.summary.staged is not None and staged.summary.staged.settled == 0  # duplicates settle nothing
    found = pq.read_table(tmp_path / "staged" / "diff.parquet").filter(
        pc.is_in(pc.field("id"), pa.array([DUPLICATED_IN_A, DUPLICATED_IN_B], pa.int64()))
    )
    assert found.num_rows == 2


def test_equal_snapshots_are_answered_from_manifests(tmp_path: Path) -> None:
    a, _, _ = build_tables()
    a = _without_duplicates(a)
    side_a = write_bucketed(a, SPEC, tmp_path / "a", 16, "milvus", batch_rows=7)
    side_b = write_bucketed(a.sort_by([("id", "descending")]), SPEC, tmp_path / "b", 16, "pg")
    staged, _ = _both(side_a, side_b, tmp_path)
    assert staged.exit_code == 0 and staged.summary.unchanged == a.num_rows
    stats = staged.summary.staged
    assert stats is not None and (stats.settled, stats.examined, stats.rows_read_a) == (16, 0, 0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"buckets_b": 8}, "bucket counts differ"),
        ({"rename": {"title": "title"}}, "renamed"),
    ],
)
def test_inputs_that_are_not_co_partitioned_take_the_full_compare(
    tmp_path: Path, change: dict[str, Any], reason: str
) -> None:
    a, b, _ = build_tables()
    side_a = write_bucketed(_without_duplicates(a), SPEC, tmp_path / "a", 16, "milvus")
    side_b = write_bucketed(_without_duplicates(b), SPEC, tmp_path / "b", change.get("buckets_b", 16), "pg")
    options = {k: v for k, v in change.items() if k != "buckets_b"}
    result = compare(side_a, side_b, make_options(**options))
    reference = compare(side_a, side_b, dataclasses.replace(make_options(**options), staged=False))
    assert result.summary.staged is None
    assert result.summary.changed == reference.summary.changed > 0
    from milvusdiff.compare.inputs import open_side
    from milvusdiff.compare.plan import build_plan
    from milvusdiff.compare.staged.layout import co_partitioned

    opts = make_options(**options)
    sides = open_side(side_a, "a"), open_side(side_b, "b")
    assert reason in str(co_partitioned(*sides, build_plan(*sides, opts), opts))


def test_jobs_give_the_same_result(tmp_path: Path) -> None:
    a, b, _ = build_tables()
    side_a = write_bucketed(a, SPEC, tmp_path / "a", 8, "milvus")
    side_b = write_bucketed(b, SPEC, tmp_path / "b", 8, "pg")
    one = compare(side_a, side_b, out=tmp_path / "one")
    two = compare(side_a, side_b, make_options(out=tmp_path / "two", jobs=2))
    assert two.summary.staged is not None and two.summary.staged.jobs == 2
    assert _outcome(tmp_path / "one") == _outcome(tmp_path / "two")
    assert one.summary.staged is not None and one.summary.staged.candidate_keys == two.summary.staged.candidate_keys


def test_reports_say_what_was_settled(tmp_path: Path) -> None:
    a, b, _ = build_tables()
    side_a = write_bucketed(_without_duplicates(a), SPEC, tmp_path / "a", 64, "milvus")
    side_b = write_bucketed(_without_duplicates(b), SPEC, tmp_path / "b", 64, "pg")
    result = compare(side_a, side_b, out=tmp_path / "out")
    assert result.summary.staged is not None
    settled = f"staged: {result.summary.staged.settled} of 64 buckets settled from the manifests"
    assert settled in (tmp_path / "out" / "report.md").read_text()
