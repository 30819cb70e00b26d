"""`$digest` describes a row, it is not part of it: compare never reports it as a column or a change."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_compare_truth import SPEC, build_tables, write_snapshot

from milvusdiff.compare import compare
from milvusdiff.errors import CompareError
from milvusdiff.snapshot_format import DIGEST_COLUMN
from milvusdiff.types.digest import row_digests

COUNTS = ("only_a", "only_b", "changed", "unchanged", "duplicate_a", "duplicate_b", "different")


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_digest_column_is_never_compared(tmp_path: Path, engine: str) -> None:
    a, b, _ = build_tables()
    plain = compare(write_snapshot(a, tmp_path / "a", "milvus"), write_snapshot(b, tmp_path / "b", "pg"), engine=engine)
    # A carries true digests, B all-zero ones: were `$digest` data, every row of B would differ
    with_digest_a = a.append_column(DIGEST_COLUMN, row_digests(a, SPEC))
    zeros = pa.array([b"\x00" * 16] * b.num_rows, pa.binary(16))
    with_digest_b = b.append_column(DIGEST_COLUMN, zeros)
    found = compare(
        write_snapshot(with_digest_a, tmp_path / "da", "milvus"),
        write_snapshot(with_digest_b, tmp_path / "db", "pg"),
        engine=engine,
        out=tmp_path / "out",
    )
    assert {k: getattr(found.summary, k) for k in COUNTS} == {k: getattr(plain.summary, k) for k in COUNTS}
    assert DIGEST_COLUMN not in found.summary.columns
    assert not any(name.startswith(DIGEST_COLUMN) for name in pq.read_schema(tmp_path / "out" / "diff.parquet").names)
    # only one side carrying digests is not a schema difference either
    one_sided = compare(write_snapshot(with_digest_a, tmp_path / "oa", "milvus"), tmp_path / "b", engine=engine)
    assert {k: getattr(one_sided.summary, k) for k in COUNTS} == {k: getattr(plain.summary, k) for k in COUNTS}
    assert one_sided.summary.columns_only_a == []


def test_digest_column_cannot_be_named_for_comparison(tmp_path: Path) -> None:
    a, _, _ = build_tables()
    side = write_snapshot(a.append_column(DIGEST_COLUMN, row_digests(a, SPEC)), tmp_path / "a", "milvus")
    with pytest.raises(CompareError, match=r"\$digest"):
        compare(side, side, columns=[DIGEST_COLUMN])
