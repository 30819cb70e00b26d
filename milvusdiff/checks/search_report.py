"""search-check's report: the same sections in report.md, report.html and on the terminal."""

from __future__ import annotations

from typing import Any

from milvusdiff.compare.report import Section
from milvusdiff.compare.values import fmt

REPORT_QUERIES = 50
_FLAGS = (
    ("deleted_returned", "deleted (journal), returned by search"),
    ("absent_returned", "not in the shadow, returned by search"),
    ("excluded_returned", "excluded by the filter, returned by search"),
)


def report_sections(summary: dict[str, Any]) -> list[Section]:
    notes = [
        f"collection: {summary['collection']} · field {summary['field']}"
        f" · {summary['metric']} ({summary['index_type']})",
        f"{summary['nq']} queries ({summary['queries']}, seed {summary['seed']}), top {summary['k']}"
        + (f", filter: {summary['filter']}" if summary["filter"] else ""),
        f"exact answer: brute force over {summary['candidates']} shadow rows",
        f"recall@{summary['k']}: {summary['recall']:.4f}"
        + (f" (minimum {summary['min_recall']})" if summary["min_recall"] else ""),
        f"returned keys the shadow contradicts: {summary['flagged']}",
        "result: " + ("PROBLEMS FOUND" if summary["different"] else "no problems"),
    ]
    queries = summary["per_query"]
    rows = [
        [
            str(q["query"]),
            str(q["returned"]),
            str(q["expected"]),
            str(q["hits"]),
            f"{q['recall']:.3f}",
            fmt(q["kth_distance"]),
            ", ".join(fmt(k) for k in q["missed"][:5]),
        ]
        for q in queries[:REPORT_QUERIES]
    ]
    more = [f"… {len(queries) - REPORT_QUERIES} more queries in summary.json and queries.parquet"]
    headers = ["query", "returned", "expected", "hits", "recall", "k-th distance", "missed (first 5)"]
    sections = [
        Section("milvusdiff search-check", notes=notes),
        Section("Recall per query", headers, rows, more if len(queries) > REPORT_QUERIES else []),
    ]
    flagged = [
        [fmt(item["key"]), label, item["journal"] or "no record", ", ".join(map(str, item["queries"][:10]))]
        for name, label in _FLAGS
        for item in summary[name]
    ]
    if flagged:
        sections.append(Section("Returned keys that should not be", ["key", "what", "journal", "queries"], flagged))
    return sections
