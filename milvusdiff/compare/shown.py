"""The differing keys validate and compare print: each with its class, what differs and the verdict.

The rows are the ones reports and the demo print (report.key_row), so a key reads the same wherever
it appears. Keys come from diff.parquet in key order by a top-N over its key columns: the diff is never
sorted or loaded whole, and only the row groups holding the few rows shown are read with their values
(pyarrow: a DuckDB database costs more to open than this takes on a small diff).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from milvusdiff.compare.report import Section, key_headers, key_row
from milvusdiff.compare.summary import Summary

DEFAULT_SHOWN = 10


def first_differing(diff: Path, key: Sequence[str], limit: int) -> tuple[list[dict[str, Any]], dict[str, pa.DataType]]:
    """The `limit` smallest differing keys of a diff.parquet as whole rows, and the diff's column types."""
    with pq.ParquetFile(diff) as file:
        types = {field.name: field.type for field in file.schema_arrow}
        keys = file.read(columns=list(key))
        if not keys.num_rows or limit <= 0:
            return [], types
        order = [(name, "ascending") for name in key]
        chosen = np.asarray(pc.select_k_unstable(keys, min(limit, keys.num_rows), order)).astype(np.int64)
        starts = np.cumsum([0] + [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)])
        group_of = np.searchsorted(starts, chosen, side="right") - 1
        groups = np.unique(group_of)
        held = file.read_row_groups(groups.tolist())
    sizes = starts[groups + 1] - starts[groups]
    base = np.cumsum(sizes) - sizes  # where each group read starts in `held`
    rows = held.take(pa.array(chosen - starts[group_of] + base[np.searchsorted(groups, group_of)]))
    return rows.take(pc.sort_indices(rows, order)).to_pylist(), types


def differing_keys_section(diff: Path, summary: Summary, shown: int = DEFAULT_SHOWN) -> Section | None:
    """Up to `shown` differing keys in key order; None when no key differs or `shown` is 0."""
    total = summary.differences
    if shown <= 0 or not total:
        return None
    rows, types = first_differing(diff, summary.key, shown)
    lines = [key_row(row, summary, types) for row in rows]
    return keys_table(key_headers(summary), lines, total, lower_bound=summary.lower_bound)


def keys_table(headers: list[str], rows: list[list[str]], total: int, *, lower_bound: bool = False) -> Section:
    """The table every command prints its differing keys in (validate, compare, demo, query-check)."""
    more = [f"… and {total - len(rows)} more in diff.parquet"] if total > len(rows) else []
    of = f"≥ {total}" if lower_bound else str(total)
    return Section(f"Differing keys (first {len(rows)} of {of})", headers, rows, more)


def one_line(row: Mapping[str, Any], summary: Summary, types: Mapping[str, pa.DataType]) -> str:
    """`changed: title: null → * -> pg wrong`: a key_row without its key, for a line of prose."""
    _, cls, what, verdict = key_row(row, summary, types)
    return f"{cls}: {what} -> {verdict}"
