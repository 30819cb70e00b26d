"""The differing keys every command prints: the smallest keys of diff.parquet, whole rows, in key order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from milvusdiff.compare.shown import first_differing


def _diff(path: Path, rows: int, seed: int) -> pa.Table:
    """A diff-like file: a composite key (tenant, doc) in random order, a vector, row groups of uneven size."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(rows)
    table = pa.table(
        {
            "tenant": pa.array([f"t{i % 7}" for i in order]),
            "doc": pa.array(order // 7, pa.int64()),
            "class": pa.array(["changed"] * rows),
            "vec__a": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(rows * 4, dtype=np.float32)), 4),
        }
    )
    with pq.ParquetWriter(path, table.schema) as writer:
        at = 0
        for size in (0, 3, 50, 1, 400):  # an empty group, then uneven ones
            writer.write_table(table.slice(at, size))
            at += size
        writer.write_table(table.slice(at))
    return table


@pytest.mark.parametrize(("rows", "limit"), [(1000, 10), (1000, 1), (6, 10), (0, 10)])
def test_first_differing_are_the_smallest_keys_as_whole_rows(tmp_path: Path, rows: int, limit: int) -> None:
    table = _diff(tmp_path / "diff.parquet", rows, seed=rows + limit)
    found, types = first_differing(tmp_path / "diff.parquet", ["tenant", "doc"], limit)
    expected = table.sort_by([("tenant", "ascending"), ("doc", "ascending")]).slice(0, limit).to_pylist()
    assert found == expected
    assert types["vec__a"] == pa.list_(pa.float32(), 4)
