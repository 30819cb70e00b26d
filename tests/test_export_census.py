"""The key census: exact counts whether or not the keys arrive in order (in order, DuckDB is skipped)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from milvusdiff.export.census import KeyCensus
from milvusdiff.export.manifest import KeyStats


@pytest.mark.parametrize(
    ("batches", "arrow_type", "expected", "ascending"),
    [
        ([[1, 2, 3], [], [4, 9]], pa.int64(), KeyStats(5, 0, 0, []), True),
        ([[1, 2, 3], [3, 5]], pa.int64(), KeyStats(4, 1, 1, [3]), False),  # a duplicate across batches
        ([[1, 1, 2]], pa.int64(), KeyStats(2, 1, 1, [1]), False),  # within a batch
        ([[1, 3, 2]], pa.int64(), KeyStats(3, 0, 0, []), False),  # out of order, still distinct
        ([["a", "b"], ["c", "é"]], pa.string(), KeyStats(4, 0, 0, []), True),
        ([["é"], ["z", "é"]], pa.string(), KeyStats(2, 1, 1, ["é"]), False),
    ],
)
def test_census_counts_exactly(
    tmp_path: Path, batches: list[list[object]], arrow_type: pa.DataType, expected: KeyStats, ascending: bool
) -> None:
    census = KeyCensus(tmp_path, pa.field("k", arrow_type))
    for batch in batches:
        census.add(pa.chunked_array([pa.array(batch, arrow_type)], type=arrow_type))
    assert census._ascending is ascending
    assert census.count() == expected
