"""The differing keys validate and compare print: each with its class, what differs and the verdict.

The rows are the ones reports and the demo print (report.key_row), so a key reads the same wherever
it appears. Keys come from diff.parquet in key order with a DuckDB top-N: the diff is never sorted or
loaded whole, and only the few rows shown are read with their values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from milvusdiff.compare.report import Section, key_headers, key_row
from milvusdiff.compare.summary import Summary

DEFAULT_SHOWN = 10


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def first_differing(diff: Path, key: Sequence[str], limit: int) -> tuple[list[dict[str, Any]], dict[str, pa.DataType]]:
    """The `limit` smallest differing keys of a diff.parquet as whole rows, and the diff's column types."""
    order = ", ".join(_quote(k) for k in key)
    with duckdb.connect() as con:
        query = f"SELECT * FROM read_parquet($diff) ORDER BY {order} LIMIT {int(limit)}"
        table = con.sql(query, params={"diff": str(diff)}).fetch_arrow_table()
    return table.to_pylist(), {name: table.schema.field(name).type for name in table.schema.names}


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
